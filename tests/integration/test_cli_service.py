"""The service commands a person types (``riskgate check``, ``cancel``, ``ack``, ``fill``,
``account`` ...) against a real server on a free local port: what they print and what they
leave behind in the service."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from riskgate.cli import main
from riskgate.client import RiskGateClient
from riskgate.server.app import RiskGateServer
from tests.reference.servers import server_settings, serving

PERP = "BTC-PERPETUAL"


@pytest.fixture(scope="module")
def server() -> Iterator[RiskGateServer]:
    # no latency-budget rejects on a loaded machine
    settings = server_settings(demo_accounts=4, decision_budget_us=2_000_000.0)
    with serving(settings) as srv:
        yield srv


@pytest.fixture
def target(server: RiskGateServer) -> list[str]:
    return ["--target", server.address]


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, list[str]]:
    """Exit code, stdout, and the command's stderr lines (the in-process server's JSON log
    lines left out)."""
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, [ln for ln in cap.err.splitlines() if not ln.startswith("{")]


def _im_usd(server: RiskGateServer, account: str) -> float:
    with RiskGateClient(server.address) as c:
        return c.get_account(account).initial_margin_usd


def _working(server: RiskGateServer, account: str) -> dict[str, float]:
    with RiskGateClient(server.address) as c:
        view = c.get_account(account)
    return {o.client_order_id: o.working_quantity for o in view.working_orders}


# ---- check, then the order's lifecycle ----------------------------------------------------


def test_whatif_reserves_nothing_and_says_so(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    before = _im_usd(server, "demo-1")
    code, out, err = _run(capsys, "check", "demo-1", PERP, "buy", "1", "70000", "--whatif", *target)
    assert (code, err) == (0, [])
    assert "what-if: nothing reserved" in out
    assert "release with" not in out
    assert _im_usd(server, "demo-1") == before


def test_accepted_check_prints_how_to_release_it_and_cancel_does(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    before = _im_usd(server, "demo-1")
    code, out, err = _run(capsys, "check", "demo-1", PERP, "buy", "1", "70000", *target)
    assert (code, err) == (0, [])
    # the generated client order id, in a command that can be run as printed
    m = re.search(
        r"reserved — release with: riskgate cancel demo-1 (cli-[0-9a-f]+)(.*)$", out, re.M
    )
    assert m, out
    coid, flags = m.group(1), m.group(2).split()
    assert flags == target  # a non-default target is part of the printed command
    assert f"client order id {coid}" in out
    assert _working(server, "demo-1")[coid] == 1.0
    assert _im_usd(server, "demo-1") > before

    code, out, err = _run(capsys, "cancel", "demo-1", coid, *flags)
    assert (code, err) == (0, [])
    assert out.startswith(f"CANCELLED  demo-1  {coid}  BUY {PERP} 1 BTC @ 70,000.00 USD")
    assert "reservation of its unfilled rest is released" in out
    assert coid not in _working(server, "demo-1")
    assert _im_usd(server, "demo-1") == pytest.approx(before, rel=1e-12)

    # a second cancel is a duplicate: nothing changes, still exit 0
    code, out, err = _run(capsys, "cancel", "demo-1", coid, *flags)
    assert (code, err) == (0, [])
    assert "already applied: nothing changed" in out


def test_ack_then_fills(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    argv = ["check", "demo-3", "ETH_USDC", "buy", "0.5", "3600", "--client-order-id", "life-1"]
    assert _run(capsys, *argv, *target)[0] == 0

    code, out, err = _run(capsys, "ack", "demo-3", "life-1", "--venue-order-id", "v-9", *target)
    assert (code, err) == (0, [])
    assert out.startswith("OPEN  demo-3  life-1  BUY ETH_USDC 0.5 ETH @ 3,600.00 USD")
    assert "no longer expires" in out

    code, out, err = _run(
        capsys, "fill", "demo-3", "life-1", "0.2", "3599.5", "--fill-id", "t1", *target
    )
    assert (code, err) == (0, [])
    assert out.startswith("PARTIALLY_FILLED  demo-3  life-1")
    assert "filled   0.2 ETH" in out and "working  0.3 ETH (reserving margin)" in out
    # the same trade id again changes nothing
    code, out, _ = _run(
        capsys, "fill", "demo-3", "life-1", "0.2", "3599.5", "--fill-id", "t1", *target
    )
    assert code == 0 and "already applied" in out
    assert _working(server, "demo-3")["life-1"] == pytest.approx(0.3)

    code, out, err = _run(capsys, "fill", "demo-3", "life-1", "0.3", "3600", "--json", *target)
    assert (code, err) == (0, [])
    assert '"order_status": "ORDER_STATUS_FILLED"' in out
    assert "life-1" not in _working(server, "demo-3")


def test_lifecycle_errors_are_one_line_exit_2(
    target: list[str], capsys: pytest.CaptureFixture
) -> None:
    code, out, err = _run(capsys, "cancel", "demo-1", "no-such-order", *target)
    assert code == 2 and out == ""
    assert len(err) == 1 and "NOT_FOUND" in err[0] and "no-such-order" in err[0]
    assert err[0].startswith("riskgate cancel: error:")

    # more than the working quantity: the order's state does not allow it
    code, out, _ = _run(capsys, "check", "demo-1", PERP, "sell", "0.1", "70000",
                        "--client-order-id", "over-1", *target)  # fmt: skip
    assert code == 0, out
    code, _, err = _run(capsys, "fill", "demo-1", "over-1", "0.2", "70000", *target)
    assert code == 2 and len(err) == 1 and "FAILED_PRECONDITION" in err[0]
    assert _run(capsys, "cancel", "demo-1", "over-1", *target)[0] == 0


# ---- units: every number a person reads carries its unit -----------------------------------

_AMOUNT = r"-?[\d,]+(\.\d+)?"


def test_account_positions_carry_units(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    # demo-2: coin-settled options (marks in coin), futures (marks in USD), segregated pools
    code, out, _ = _run(capsys, "account", "demo-2", *target)
    assert code == 0
    lines = out.splitlines()
    head = lines.index("positions (5)") + 1
    assert lines[head].split() == ["symbol", "qty", "avg", "price", "mark", "value", "pool"]
    rows = [ln.split() for ln in lines[head + 1 : head + 6]]
    for symbol, qty, qunit, avg, aunit, mark, munit, value, vunit, pool in rows:
        coin = symbol.split("-")[0].split("_")[0]
        quote = coin if symbol.endswith(("-C", "-P")) else "USD"
        assert re.fullmatch(_AMOUNT, qty) and qunit == coin, symbol
        # demo positions are entered at their mark: the average price is known
        assert re.fullmatch(_AMOUNT, avg) and aunit == quote, symbol
        assert re.fullmatch(_AMOUNT, mark) and munit == quote, symbol
        assert re.fullmatch(_AMOUNT, value) and vunit == pool, symbol
    assert "collateral          5 BTC, 40 ETH, 50,000 USDC" in out
    assert re.search(r"add-ons in BTC: .*roll_shock", out)


def test_check_help_names_the_price_and_quantity_units(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "USD per coin for spot, perpetuals and futures" in text
    assert "0.03 = 0.03 BTC per BTC" in text
    assert "quantity in coin of notional" in text


def test_decision_header_carries_units(target: list[str], capsys: pytest.CaptureFixture) -> None:
    argv = ["check", "demo-2", "BTC-11DEC26-70000-C", "buy", "1", "0.03", "--whatif", *target]
    # the demo market's expiries follow the clock: use the listed one nearest to it
    code, out, _ = _run(capsys, *argv)
    if code == 1 and "UNKNOWN_INSTRUMENT" in out:
        pytest.skip("no 11DEC26 expiry in today's demo market")
    assert "BUY BTC-11DEC26-70000-C 1 BTC @ 0.03 BTC" in out
    assert re.search(r"initial margin  [\d.,]+ BTC -> [\d.,]+ BTC", out)


# ---- rejects before the margin check: the reason and the field, not zeros ------------------


@pytest.mark.parametrize(
    ("argv", "reason", "field", "extra"),
    [
        (["demo-1", PERP, "buy", "-1", "70000"], "INVALID_ORDER", "quantity", "actual -1"),
        (["nobody", PERP, "buy", "1", "70000"], "UNKNOWN_ACCOUNT", "account_id", "nobody"),
        (["demo-1", "BTC-NOPE", "buy", "1", "1"], "UNKNOWN_INSTRUMENT", "symbol", "NOPE"),
        (["demo-1", PERP, "buy", "1"], "INVALID_ORDER", "price", "LIMIT order needs a price"),
    ],
)
def test_validation_reject_names_reason_and_field(
    argv: list[str],
    reason: str,
    field: str,
    extra: str,
    target: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    more = ["--type", "limit"] if len(argv) == 4 else []
    code, out, err = _run(capsys, "check", *argv, *more, *target)
    assert (code, err) == (1, [])
    rows = dict(re.findall(r"^  (\S.{0,14}?) +(.*)$", out, re.M))
    assert rows["reason"] == reason
    assert rows["field"] == field
    assert extra in out
    assert rows["margin"] == "not computed: rejected before the margin check"
    # no margin figures that look like a broke account, no market version 0
    body = out.split("\n", 1)[1]  # below the order line (whose price is 70,000.00 USD)
    assert not re.search(r"\b0\.00\b", body) and "market v0" not in out
    assert "initial margin" not in out and "equity" not in out
    assert "release with" not in out


def test_large_reject_amounts_are_not_in_scientific_notation(
    target: list[str], capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = _run(
        capsys, "check", "demo-1", PERP, "buy", "1000", "70000", "--whatif", *target
    )
    assert code == 1 and "INSUFFICIENT_MARGIN" in out
    assert not re.search(r"\d[eE][+-]\d", out), out  # Python writes 1.19e+07
    # the engine's detail and the context values: separators, cents, currency
    money = r"\d{1,3}(,\d{3})+\.\d\d USD"
    assert re.search(rf"initial margin after {money} exceeds equity {money}", out), out
    assert re.search(rf"values +limit {money}, actual {money}", out), out


def test_reject_prints_the_legs_behind_it_and_whatif_explains_on_request(
    target: list[str], capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = _run(
        capsys, "check", "demo-1", PERP, "buy", "1000", "70000", "--whatif", "--json", *target
    )
    d = json.loads(out)
    assert code == 1 and d["reason"] == "REJECT_REASON_INSUFFICIENT_MARGIN"
    legs = d["attribution"]
    assert legs[0]["symbol"] == PERP and legs[-1]["symbol"] == "aggregation"
    assert sum(a["pnl"] for a in legs) == pytest.approx(-d["worst_scenario"]["loss"], rel=1e-9)
    code, out, _ = _run(
        capsys, "check", "demo-1", PERP, "buy", "1000", "70000", "--whatif", *target
    )
    assert re.search(r"P&L by leg +-[\d,]+\.\d\d USD  BTC-PERPETUAL  \(\+[\d,.]+\)", out), out
    assert "aggregation" in out
    # an accept carries none, unless asked
    argv = ["check", "demo-1", PERP, "buy", "0.01", "70000", "--whatif", *target]
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "P&L by leg" not in out
    code, out, _ = _run(capsys, *argv, "--explain", "--json")
    assert code == 0 and json.loads(out)["attribution"][-1]["symbol"] == "aggregation"


# ---- the worst scenario names every coin its cell moves --------------------------------------


def _deribit_move(coin: str, cell: int) -> float:
    """The packaged deribit table, read here: 9 moves x 3 vols, then 8 extended moves."""
    params = tomllib.loads(
        (Path(__file__).resolve().parents[2] / "riskgate/models/params/deribit.toml").read_text()
    )
    if cell >= 27:
        return params["extended_moves"][cell - 27]
    rng = params["underlyings"][coin]["price_range"]
    return -rng + (cell // 3) * rng / 4


def test_cross_pool_worst_scenario_lists_every_coin(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    # demo-1: one USD pool holding BTC and ETH; an ETH order
    argv = ["check", "demo-1", "ETH_USDC-PERPETUAL", "buy", "100", "--type", "market"]
    code, out, _ = _run(capsys, *argv, "--whatif", *target)
    assert code == 0, out
    m = re.search(r"worst scenario  cell (\d+): BTC ([-+][\d.]+)%, ETH ([-+][\d.]+)%, vol", out)
    assert m, out
    cell = int(m.group(1)) - 1
    assert float(m.group(2)) / 100 == pytest.approx(_deribit_move("BTC", cell), abs=5e-4)
    assert float(m.group(3)) / 100 == pytest.approx(_deribit_move("ETH", cell), abs=5e-4)

    code, out, _ = _run(capsys, *argv, "--whatif", "--json", *target)
    ws = json.loads(out)["worst_scenario"]
    assert ws["index"] == cell
    assert set(ws["price_moves"]) == {"BTC", "ETH"}
    for coin, move in ws["price_moves"].items():
        assert move == pytest.approx(_deribit_move(coin, cell), abs=1e-12)
    assert ws["price_move_fraction"] == ws["price_moves"][ws["underlying"]]

    with RiskGateClient(server.address) as c:
        view = c.get_account("demo-1")
    assert set(view.worst_scenario.price_moves) == {"BTC", "ETH"}


def test_coin_pool_worst_scenario_names_its_coin(
    target: list[str], capsys: pytest.CaptureFixture
) -> None:
    # demo-2 is segregated: its ETH pool holds ETH only
    code, out, _ = _run(capsys, "account", "demo-2", "--json", *target)
    assert code == 0
    pools = {p["currency"]: p for p in json.loads(out)["pools"]}
    for coin in ("BTC", "ETH"):
        assert set(pools[coin]["worst_scenario"]["price_moves"]) == {coin}
    # the empty USD pool loses nothing in any scenario, and says so
    code, out, _ = _run(capsys, "account", "demo-2", *target)
    assert "USD: equity" in out and "worst scenario none: no scenario loses" in out


# ---- the instruments of the running service's market ---------------------------------------


def test_instruments_lists_the_market_with_filters(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    market = server.engine.market
    assert market is not None
    code, out, err = _run(capsys, "instruments", "--json", *target)
    assert (code, err) == (0, [])
    listed = json.loads(out)["instruments"]
    assert {i["symbol"] for i in listed} == set(market.instruments)
    assert int(json.loads(out)["market_version"]) == market.version

    code, out, _ = _run(capsys, "instruments", "--coin", "btc", "--kind", "future", *target)
    assert code == 0
    lines = out.splitlines()
    want = sorted(
        (i for i in market.instruments.values() if i.underlying == "BTC" and i.kind == 2),
        key=lambda i: (i.expiry, i.symbol),
    )
    assert lines[0].startswith(f"{len(want)} instruments  (market v{market.version}")
    rows = [ln.split() for ln in lines[2:]]
    assert [r[0] for r in rows] == [i.symbol for i in want]
    for r in rows:
        assert r[1] == "future" and r[-2] == "USD"  # mark in USD per coin
        assert r[-3] == f"{market.quotes[r[0]].mark:,.2f}"

    # options: the mark in each option's quote currency and its implied vol
    code, out, _ = _run(
        capsys, "instruments", "--coin", "ETH", "--kind", "option", "--json", *target
    )
    options = json.loads(out)["instruments"]
    assert options and {o["kind"] for o in options} == {
        "INSTRUMENT_KIND_CALL",
        "INSTRUMENT_KIND_PUT",
    }
    for o in options:
        inverse = o["settlement"] == "SETTLEMENT_INVERSE"
        assert o["quote_currency"] == ("ETH" if inverse else "USD")
        assert o["implied_vol"] == market.snapshot.ivs[o["symbol"]]
        assert o["mark_price"] == market.quotes[o["symbol"]].mark

    expiry = options[0]["symbol"].split("-")[1]
    code, out, _ = _run(capsys, "instruments", "--coin", "ETH", "--expiry", expiry.lower(), *target)
    symbols = [ln.split()[0] for ln in out.splitlines()[2:]]
    assert symbols and all(f"-{expiry}" in s for s in symbols)


def test_instruments_before_any_market_data(capsys: pytest.CaptureFixture) -> None:
    with serving(server_settings(demo=False)) as srv:
        code, out, err = _run(capsys, "instruments", "--target", srv.address)
    assert code == 2 and out == ""
    assert len(err) == 1 and "FAILED_PRECONDITION" in err[0] and "no market data" in err[0]


# ---- health: what a container's health check runs ------------------------------------------


def test_health_of_the_configured_address(
    server: RiskGateServer, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(capsys, "health", "--target", server.address)
    assert code == 0 and out.startswith(f"SERVING  riskgate.v1.RiskGate at {server.address}")
    # no --target: the service's own listen address, a wildcard host probed on loopback
    monkeypatch.setenv("RISKGATE_LISTEN_ADDRESS", f"0.0.0.0:{server.port}")
    monkeypatch.setenv("RISKGATE_ALLOW_UNAUTHENTICATED", "true")
    code, out, _ = _run(capsys, "health", "--quiet")
    assert (code, out) == (0, "")


def test_health_not_serving_and_unreachable(capsys: pytest.CaptureFixture) -> None:
    from grpc_health.v1 import health_pb2

    with serving(server_settings(demo=False)) as srv:
        srv.health.set("riskgate.v1.RiskGate", health_pb2.HealthCheckResponse.NOT_SERVING)
        code, out, _ = _run(capsys, "health", "--target", srv.address)
        assert code == 1 and out.startswith("NOT_SERVING")
        address = srv.address
    code, out, err = _run(capsys, "health", "--target", address, "--timeout", "1")
    assert code == 2 and out == "" and len(err) == 1


def test_the_readme_lifecycle_as_written(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    # README: check, then ack, a 0.4 fill at 70,010 and a cancel of the rest
    with RiskGateClient(server.address) as c:
        before_notional = {p.symbol: p.notional_usd for p in c.get_account("demo-1").positions}
    code, out, _ = _run(capsys, "check", "demo-1", PERP, "buy", "1", "70000", *target)
    assert code == 0
    coid = re.search(r"riskgate cancel demo-1 (\S+)", out).group(1)  # type: ignore[union-attr]
    steps = [
        (["ack", "demo-1", coid], "OPEN"),
        (["fill", "demo-1", coid, "0.4", "70010"], "PARTIALLY_FILLED"),
        (["cancel", "demo-1", coid], "CANCELLED"),
    ]
    for argv, status in steps:
        code, out, err = _run(capsys, *argv, *target)
        assert (code, err) == (0, []) and out.startswith(f"{status}  demo-1  {coid}"), out
    with RiskGateClient(server.address) as c:
        view = c.get_account("demo-1")
    after = {p.symbol: p.notional_usd for p in view.positions}
    # BTC-PERPETUAL is inverse: a fill of 0.4 BTC at 70,010 adds 0.4 x 70,010 USD of notional
    # (the coin quantity shown is that notional at the mark)
    assert after[PERP] == pytest.approx(before_notional[PERP] + 0.4 * 70_010.0)
    assert coid not in {o.client_order_id for o in view.working_orders}


# ---- a data directory: what the start-up line says after a restart --------------------------


def test_restart_from_a_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from riskgate.server.app import _describe

    settings = server_settings(
        demo_accounts=2, data_dir=str(tmp_path / "data"), decision_budget_us=2_000_000.0
    )
    with serving(settings) as srv:
        assert "demo accounts: demo-1, demo-2" in _describe(srv)
        argv = ["check", "demo-1", PERP, "buy", "0.5", "70000", "--client-order-id", "keep-1"]
        assert _run(capsys, *argv, "--target", srv.address)[0] == 0
    with serving(settings) as srv:
        line = _describe(srv)
        assert "2 accounts recovered" in line and "recovered to event" in line, line
        assert "no accounts" not in line and "demo accounts" not in line
        assert _working(srv, "demo-1") == {"keep-1": 0.5}  # the reservation survived


# ---- pre-trade controls -------------------------------------------------------------------


def test_controls_and_groups_from_the_command_line(
    server: RiskGateServer, target: list[str], capsys: pytest.CaptureFixture
) -> None:
    code, out, err = _run(
        capsys, "group", "set", "cli-desk", "--max-gross", "1000000", "--max-orders", "5", *target
    )
    assert (code, err) == (0, [])
    assert out.splitlines()[0].startswith("group cli-desk  parent -")
    assert _run(capsys, "group", "join", "demo-4", "cli-desk", *target)[1] == (
        "account demo-4: group cli-desk\n"
    )
    code, out, err = _run(
        capsys, "controls", "demo-4", "--max-orders", "1", "--orders-window-ms", "60000",
        "--class-max-qty", "option=2", *target,
    )  # fmt: skip
    assert (code, err) == (0, [])
    assert "  groups cli-desk  day's P&L 0 USD" in out
    assert re.search(r"account\s+orders\s+0 of\s+1 orders/60s", out)
    _run(capsys, "check", "demo-4", PERP, "buy", "0.1", "70000", *target)
    code, out, _ = _run(capsys, "check", "demo-4", PERP, "buy", "0.1", "70000", *target)
    assert "VELOCITY_LIMIT" in out
    code, out, _ = _run(capsys, "group", "show", "cli-desk", "--json", *target)
    view = json.loads(out)
    assert view["accounts"] == ["demo-4"]
    assert {u["limit"]: u["used"] for u in view["usage"]}["orders"] == 1
    # the static limits stay as they were; --clear removes the controls
    code, out, _ = _run(capsys, "controls", "demo-4", "--clear", "--json", *target)
    assert "controls" not in json.loads(out)["limits"]
