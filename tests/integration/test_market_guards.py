"""Market-data guards on a live server: implausible updates are INVALID_ARGUMENT naming the
field and change nothing (some were INTERNAL before); override_guards applies them, and
the audit record of the call carries the flag and the principal."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from riskgate.server.app import RiskGateServer
from riskgate.server.auth import token_sha256
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import server_settings, serving

T = 10.0
TOKEN = f"tok-feed-{secrets.token_hex(16)}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RiskGateServer, Any, list]]:
    auth = Path(tmp_path_factory.mktemp("auth")) / "auth.toml"
    auth.write_text(
        f'[[principal]]\nname = "feed"\ntoken_sha256 = "{token_sha256(TOKEN)}"\n'
        'roles = ["market"]\n'
    )
    settings = server_settings(demo_accounts=2, log_level="error", auth_file=str(auth))
    with serving(settings, grace_s=0) as srv:
        records: list[dict[str, Any]] = []
        assert srv.access is not None
        srv.access.sinks.append(records.append)
        channel = grpc.insecure_channel(srv.address)
        try:
            yield srv, riskgate_pb2_grpc.RiskGateStub(channel), records
        finally:
            channel.close()


def _update(stub: Any, **fields: Any) -> Any:
    return stub.UpdateMarket(
        pb.UpdateMarketRequest(**fields),
        timeout=T,
        metadata=(("authorization", f"Bearer {TOKEN}"),),
    )


def _current(srv: RiskGateServer) -> Any:
    market = srv.engine.market
    assert market is not None
    return market


def _refused(srv: RiskGateServer, stub: Any, **fields: Any) -> str:
    version = _current(srv).version
    with pytest.raises(grpc.RpcError) as err:
        _update(stub, **fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    assert _current(srv).version == version
    return err.value.details()


def test_each_guard_refuses_naming_the_field(env: tuple[RiskGateServer, Any, list]) -> None:
    srv, stub, _ = env
    snap = _current(srv).snapshot
    btc = snap.index_usd["BTC"]
    option = next(iter(snap.ivs))
    for fields, field in (
        ({"index_usd": {"BTC": btc * 1.3}}, "index_usd[BTC]: "),
        ({"marks_usd": {"BTC-PERPETUAL": btc * 3}}, "marks_usd[BTC-PERPETUAL]: "),
        ({"ivs": {option: 9.0}}, f"ivs[{option}]: "),
        ({"rate": 2.0}, "rate: "),
        # these were INTERNAL errors before the guards
        ({"full_snapshot": True, "valuation_time": pb.UpdateMarketRequest().valuation_time},
         "index_usd: a full snapshot needs index prices"),
        ({"rate": 1e9}, "rate: "),
        ({"rate": -789426.8}, "rate: "),
        ({"marks_usd": {"BTC-PERPETUAL": 1e-300}}, "marks_usd[BTC-PERPETUAL]: "),
    ):  # fmt: skip
        assert _refused(srv, stub, **fields).startswith(field)


def test_the_override_applies_implausible_data_and_is_audited(
    env: tuple[RiskGateServer, Any, list],
) -> None:
    srv, stub, records = env
    btc = _current(srv).snapshot.index_usd["BTC"]
    version = _current(srv).version
    assert "override_guards" in _refused(srv, stub, index_usd={"BTC": btc * 0.6})
    assert records[-1]["outcome"] == "INVALID_ARGUMENT" and records[-1]["principal"] == "feed"
    resp = _update(stub, index_usd={"BTC": btc * 0.6}, override_guards=True)
    assert resp.market_version == version + 1
    assert _current(srv).snapshot.index_usd["BTC"] == pytest.approx(btc * 0.6)
    assert records[-1] == {
        "principal": "feed", "method": "UpdateMarket", "outcome": "OK", "override_guards": True,
    }  # fmt: skip
    # data that is never valid stays refused with the override
    assert _refused(srv, stub, rate=1e9, override_guards=True).startswith("rate: ")
    assert _update(stub, index_usd={"BTC": btc}, override_guards=True).market_version == version + 2
