"""A server with a data directory keeps its state across restarts and crashes.

A crash is taken as the bytes on disk at the moment of a reply: the data directory is
copied while the server runs (every acknowledged event has been written with one
``os.write``, which a killed process cannot take back), and a new server recovers from the
copy. The chaos command (``python -m loadtest.chaos``) does the same with real kill -9s.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest

from riskgate.cli import main as cli_main
from riskgate.engine.journal import codec
from riskgate.server.app import RiskGateServer, ServeError, _describe
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import create_account, server_settings, serving

T = 10.0
PERP = "BTC-PERPETUAL"


def _settings(**overrides: object):
    # a generous budget: these tests check what is kept, and a loaded machine must not
    # turn their accepts into latency rejects
    return server_settings(decision_budget_us=1e6, **overrides)


def _stub(server: RiskGateServer) -> tuple[grpc.Channel, riskgate_pb2_grpc.RiskGateStub]:
    channel = grpc.insecure_channel(server.address)
    return channel, riskgate_pb2_grpc.RiskGateStub(channel)


def _order(coid: str, qty: float = 0.01, account: str = "acct-1") -> pb.CheckOrderRequest:
    return pb.CheckOrderRequest(
        order=pb.Order(
            account_id=account, client_order_id=coid, symbol=PERP, side=pb.SIDE_BUY,
            order_type=pb.ORDER_TYPE_LIMIT, quantity=qty, price=70_000.0,
        )
    )  # fmt: skip


def _trade(stub: riskgate_pb2_grpc.RiskGateStub) -> dict[str, pb.Decision]:
    """The newcomer's scenario: an account, 20 accepted orders, 10 fills, a halt."""
    create_account(stub, "acct-1", 1_000_000.0)
    create_account(stub, "acct-2", 50_000.0)
    decisions = {}
    for k in range(20):
        d = stub.CheckOrder(_order(f"o{k}"), timeout=T)
        assert d.accepted, d
        decisions[f"o{k}"] = d
    for k in range(10):
        stub.ReportOrderEvent(
            pb.OrderEvent(
                account_id="acct-1", client_order_id=f"o{k}",
                filled=pb.Filled(fill_quantity=0.01, fill_price=69_990.0, fill_id=f"f{k}"),
            ),
            timeout=T,
        )  # fmt: skip
    stub.SetTradingState(
        pb.SetTradingStateRequest(
            account_id="acct-2", state=pb.TRADING_STATE_HALTED, reason="desk"
        ),
        timeout=T,
    )
    return decisions


def _views(stub: riskgate_pb2_grpc.RiskGateStub) -> list[pb.AccountView]:
    out = []
    for a in ("acct-1", "acct-2"):
        v = stub.GetAccount(pb.GetAccountRequest(account_id=a), timeout=T)
        out.append(v)
    return out


def _check_recovered(
    stub: riskgate_pb2_grpc.RiskGateStub, before: list[pb.AccountView], decisions: dict
) -> None:
    after = _views(stub)
    assert after == before
    one, two = after
    assert len(one.working_orders) == 10 and {p.symbol for p in one.positions} == {PERP}
    assert two.trading_state == pb.TRADING_STATE_HALTED
    for coid in ("o1", "o15"):
        retry = stub.CheckOrder(_order(coid), timeout=T)
        original = decisions[coid]
        assert retry.duplicate and retry.accepted
        assert retry.initial_margin_after == original.initial_margin_after
        assert retry.compute_ns == original.compute_ns  # the very decision, not a new one
    assert len(_views(stub)[0].working_orders) == 10  # nothing reserved twice
    d = stub.CheckOrder(_order("x1", account="acct-2"), timeout=T)
    assert not d.accepted and d.reason == pb.REJECT_REASON_ACCOUNT_HALTED


def test_restart_keeps_accounts_orders_fills_halts_and_decisions(tmp_path: Path) -> None:
    settings = _settings(data_dir=str(tmp_path / "data"), demo=True)
    with serving(settings) as srv:
        channel, stub = _stub(srv)
        with channel:
            decisions = _trade(stub)
            before = _views(stub)
            live_hash = codec.state_hash(srv.engine.book)
        assert "fsync batch" in _describe(srv)
    with serving(settings) as srv:
        rec = srv.durability.recovery
        assert rec is not None and rec.snapshot_seq == rec.last_seq  # the shutdown snapshot
        assert rec.state_hash == live_hash
        assert srv.demo_accounts == []  # state was there: no demo accounts loaded again
        assert "demo-1" in srv.engine.accounts  # ... but the first start's are kept
        channel, stub = _stub(srv)
        with channel:
            _check_recovered(stub, before, decisions)


def test_a_crash_loses_no_acknowledged_change(tmp_path: Path) -> None:
    data, crashed = tmp_path / "data", tmp_path / "crashed"
    with serving(_settings(data_dir=str(data), demo=False)) as srv:
        channel, stub = _stub(srv)
        with channel:
            stub.UpdateMarket(_market_request(srv), timeout=T)
            decisions = _trade(stub)
            before = _views(stub)
        shutil.copytree(data, crashed)  # the disk as a kill -9 right now would leave it
    (crashed / "journal" / "LOCK").unlink(missing_ok=True)
    shutil.rmtree(crashed / "snapshots")  # no snapshot at all: the journal alone
    with serving(_settings(data_dir=str(crashed), demo=False)) as srv:
        rec = srv.durability.recovery
        assert rec.snapshot_seq == 0 and rec.events_replayed == rec.last_seq > 30
        channel, stub = _stub(srv)
        with channel:
            _check_recovered(stub, before, decisions)


def _market_request(srv: RiskGateServer) -> pb.UpdateMarketRequest:
    from riskgate.demo import demo_market
    from riskgate.server.convert import timestamp_from_ns

    snap = demo_market().snapshot
    return pb.UpdateMarketRequest(
        full_snapshot=True,
        valuation_time=timestamp_from_ns(int(snap.valuation_time.timestamp() * 1e9)),
        index_usd=dict(snap.index_usd), marks_usd=dict(snap.marks_usd), ivs=dict(snap.ivs),
    )  # fmt: skip


def _last_segment(data: Path) -> Path:
    return sorted((data / "journal").glob("journal-*.log"))[-1]


@pytest.fixture
def stopped_data_dir(tmp_path: Path) -> tuple[Path, int]:
    """A data directory with a few dozen events and no snapshot; its last seq."""
    data = tmp_path / "data"
    settings = _settings(data_dir=str(data), demo=True, snapshot_keep=1)
    with serving(settings) as srv:
        channel, stub = _stub(srv)
        with channel:
            _trade(stub)
        seq = srv.engine.seq
    shutil.rmtree(data / "snapshots")
    return data, seq


def test_a_torn_last_record_is_cut_and_the_rest_recovered(stopped_data_dir) -> None:
    data, seq = stopped_data_dir
    seg = _last_segment(data)
    seg.write_bytes(seg.read_bytes()[:-7])  # the last record half written
    with serving(_settings(data_dir=str(data), demo=True)) as srv:
        rec = srv.durability.recovery
        assert rec.last_seq == seq - 1 and rec.truncated_bytes > 0
        assert srv.demo_accounts == []


def test_a_corrupt_record_mid_journal_stops_start_up_naming_file_and_offset(
    stopped_data_dir,
) -> None:
    data, _ = stopped_data_dir
    seg = _last_segment(data)
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    seg.write_bytes(bytes(raw))
    srv = RiskGateServer(_settings(data_dir=str(data), demo=True))
    with pytest.raises(ServeError) as err:
        srv.start()
    assert seg.name in str(err.value) and "offset" in str(err.value)
    assert srv.engine.accounts == {}  # nothing half-loaded is served


def test_snapshots_let_old_segments_go_and_verify_checks_it_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    settings = _settings(data_dir=str(data), demo=True, journal_segment_mb=0.002, snapshot_keep=1)
    with serving(settings) as srv:
        channel, stub = _stub(srv)
        with channel:
            decisions = _trade(stub)
            segments_before = len(list((data / "journal").glob("*.log")))
            seq = srv.durability.snapshot()
            segments = sorted((data / "journal").glob("*.log"))
            for k in range(20, 30):
                stub.CheckOrder(_order(f"o{k}"), timeout=T)
            before = _views(stub)
    assert segments_before > 3 and len(segments) == 1  # covered ones deleted
    assert int(segments[0].stem.split("-")[1]) <= seq + 1
    with serving(settings) as srv:
        channel, stub = _stub(srv)
        with channel:
            assert _views(stub) == before
            assert stub.CheckOrder(_order("o3"), timeout=T).compute_ns == decisions["o3"].compute_ns
    assert cli_main(["journal", "verify", str(data)]) == 0
    out = capsys.readouterr().out
    assert "snapshot and tail" in out and out.strip().endswith("ok")


def test_journal_inspect_and_verify(stopped_data_dir, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    data, seq = stopped_data_dir
    assert cli_main(["journal", "inspect", str(data), "--account", "acct-2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["type"] for e in lines] == ["account_upserted", "trading_state_set"]
    assert all(e["account"] == "acct-2" for e in lines)
    assert cli_main(["journal", "inspect", str(data), "--type", "order_step", "--to", "40"]) == 0
    steps = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert steps and all(e["type"] == "order_step" and e["seq"] <= 40 for e in steps)
    assert {"filled"} <= set(steps[0])

    assert cli_main(["journal", "verify", str(data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["journal"]["last_seq"] == seq and summary["problems"] == []
    assert summary["events"]["order_accepted"] == 20 and summary["events"]["order_step"] == 10
    seg = _last_segment(data)
    raw = bytearray(seg.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    seg.write_bytes(bytes(raw))
    assert cli_main(["journal", "verify", str(data)]) == 1
    assert "offset" in capsys.readouterr().err
    assert cli_main(["journal", "verify", str(data / "nope")]) == 2


def test_without_a_data_dir_the_service_says_it_keeps_nothing() -> None:
    with serving(_settings(demo=False)) as srv:
        assert srv.durability is None
        assert "in memory" in _describe(srv)


def test_a_restart_with_other_stress_scenarios_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stress = Path(__file__).resolve().parents[2] / "examples" / "stress" / "illustrative.toml"
    data = tmp_path / "data"
    settings = _settings(data_dir=str(data), demo=True, stress_file=str(stress))
    with serving(settings) as srv:
        assert "stress scenarios" in _describe(srv)
        channel, stub = _stub(srv)
        with channel:
            create_account(stub, "acct-1", 1_000_000.0)
            d = stub.WhatIf(_order("w", qty=20.0), timeout=T)
            assert d.worst_scenario.name == "crypto crash"  # the service margins the stress
    # shut down: a snapshot recording the stressed model; the same file restarts
    with serving(settings) as srv:
        assert "acct-1" in srv.engine.accounts
    for other in (None, str(tmp_path / "other.toml")):
        if other is not None:
            Path(other).write_text('[[scenario]]\nname = "x"\nprice_move = { BTC = -0.2 }\n')
        srv = RiskGateServer(settings.replace(stress_file=other))
        with pytest.raises(ServeError, match=r"deribit\+stress:"):
            srv.start()
    assert cli_main(["journal", "verify", str(data)]) == 1
    assert "give the server's stress file with --stress" in capsys.readouterr().err
    assert cli_main(["journal", "verify", str(data), "--stress", str(stress)]) == 0
