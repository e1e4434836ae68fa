"""Attribution: each leg's P&L in the worst scenario, plus the model's aggregation, sums to
−worst_case; per coin the legs add up to the naive reference's scenario P&L at the cell the
model binds on, and the aggregation is what the reference's model adds beyond that sum."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskgate.domain.instruments import parse_symbol
from riskgate.report import compute_report
from tests.reference.naive_margin import naive_margin
from tests.unit.test_margin_vs_naive import random_portfolio

MODELS = ("deribit", "span", "tims")
TOL = 1e-9


def _coin(symbol: str) -> str:
    if symbol.startswith("collateral:"):
        return symbol.split(":", 1)[1]
    return parse_symbol(symbol).underlying


def _near(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, scale)


def _first_worst(vec: list[float]) -> int:
    """The kernels' cell: the first with the largest loss, 0 when nothing loses."""
    worst, cell = 0.0, 0
    for c, v in enumerate(vec):
        if -v > worst:
            worst, cell = -v, c
    return cell


def check_against_reference(portfolio: dict, model: str, params_path=None) -> None:
    params = None
    if params_path is not None:
        import tomllib

        params = tomllib.loads(Path(params_path).read_text())
    got = compute_report(portfolio, model=model, params_path=params_path)["pools"]
    ref = naive_margin(portfolio, model, params=params)["pools"]
    for ccy, pool in got.items():
        pm = pool["portfolio"]
        entries = pm["attribution"]
        assert entries[-1]["symbol"] == "aggregation"
        legs, agg = entries[:-1], entries[-1]["pnl"]
        pnls = [e["pnl"] for e in legs]
        scale = pm["worst_case"] + math.fsum(abs(p) for p in pnls)
        # the entries sum to minus the worst case
        assert _near(math.fsum([*pnls, agg]), -pm["worst_case"], scale)
        assert pnls == sorted(pnls)  # largest loss first
        if ccy not in ref:
            continue
        want = ref[ccy]
        per_coin = want["details"]["per_coin"]
        by_coin: dict[str, float] = {}
        for e in legs:
            by_coin[_coin(e["symbol"])] = by_coin.get(_coin(e["symbol"]), 0.0) + e["pnl"]
        expected_sum = 0.0
        for coin, d in per_coin.items():
            vec = d["vector"]
            cell = want["worst_cell"] if model == "deribit" else _first_worst(vec)
            assert _near(by_coin.get(coin, 0.0), vec[cell], scale), (ccy, coin)
            expected_sum += vec[cell]
        # what the model adds beyond the legs' sum, from the reference's own numbers
        assert _near(agg, -want["worst_case"] - expected_sum, scale), (ccy, agg)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", range(6))
def test_attribution_matches_reference(model: str, seed: int) -> None:
    check_against_reference(
        random_portfolio(7103 * seed + 1, ("cross", "segregated")[seed % 2]), model
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    model=st.sampled_from(MODELS),
    pool=st.sampled_from(["cross", "segregated"]),
)
def test_attribution_sums_to_minus_worst_case(seed: int, model: str, pool: str) -> None:
    check_against_reference(random_portfolio(seed, pool), model)


@pytest.mark.parametrize("seed", range(4))
def test_attribution_with_the_dampener_and_offsets_on(tmp_path: Path, seed: int) -> None:
    # deribit's extended-cell dampener and a BTC gain offset go into the aggregation
    from tests.unit.test_margin_vs_naive import (
        DERIBIT_CHANGES,
        DERIBIT_DAMPENER,
        PARAMS_DIR,
        _override,
        _with_near_wings,
    )

    path = tmp_path / "deribit.toml"
    changes = {**DERIBIT_CHANGES, **DERIBIT_DAMPENER}
    path.write_text(_override((PARAMS_DIR / "deribit.toml").read_text(), changes))
    book = _with_near_wings(random_portfolio(7919 * seed + 3, "cross"), 8.0)
    check_against_reference(book, "deribit", path)


def test_deribit_aggregation_is_the_gain_offset() -> None:
    # long ETH spot gains in the crash cell that BTC loses in: under deribit only
    # pnl_offset (0.6) of ETH's gain counts, and the aggregation says by how much
    portfolio = {
        "valuation_time": "2026-11-21T08:00:00Z",
        "pool": "cross",
        "market": {"index": {"BTC": 70000.0, "ETH": 3500.0}, "marks": {}, "ivs": {}},
        "positions": {"BTC_USDC": 1.0, "ETH_USDC": -10.0},
        "collateral": {"USD": 0.0},
    }
    pool = compute_report(portfolio, model="deribit")["pools"]["USD"]["portfolio"]
    legs = {e["symbol"]: e["pnl"] for e in pool["attribution"]}
    # worst cell: BTC and ETH both down 16 % / 18 % (cell 1): BTC -11,200, short ETH +6,300
    assert legs["BTC_USDC"] == pytest.approx(-70000.0 * 0.16)
    assert legs["ETH_USDC"] == pytest.approx(10 * 3500.0 * 0.18)
    assert legs["aggregation"] == pytest.approx(-(1 - 0.6) * 6300.0)
    assert pool["worst_case"] == pytest.approx(11200.0 - 0.6 * 6300.0)


# --------------------------------------------------------------------------- decisions


def _engine(model: str):
    from riskgate.engine.types import MarginMethod, PoolMode
    from tests.reference.engine_market import MODELS as ENGINE_MODELS
    from tests.reference.engine_market import make_engine

    if model not in ENGINE_MODELS:
        pytest.skip(f"{model}: not among the engine tests' models")
    eng = make_engine(model)
    eng.upsert_account(
        "A", collateral={"USD": 20_000.0, "BTC": 0.5}, pool_mode=PoolMode.CROSS,
        margin_method=MarginMethod.PORTFOLIO, limits=None,
    )  # fmt: skip
    eng.set_positions("A", [("BTC_USDC-PERPETUAL", 1.0, None), ("ETH_USDC-PERPETUAL", -3.0, None)])
    return eng


def _sums_to_loss(attribution, loss: float) -> None:
    pnls = [a[2] for a in attribution]
    assert attribution[-1][0] == "aggregation"
    assert math.fsum(pnls) == pytest.approx(-loss, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("model", ["deribit", "span"])
def test_margin_reject_carries_the_legs_and_accepts_do_not(model: str) -> None:
    from riskgate.engine.types import OrderRequest, Reason, Side
    from riskgate.server.convert import decision_to_proto

    eng = _engine(model)
    small = OrderRequest("A", "ok", "BTC_USDC-PERPETUAL", Side.BUY, 0.01, 70_000.0)
    d = eng.check_order(small)
    assert d.accepted and d.attribution == ()  # never on the accept path
    big = OrderRequest("A", "big", "BTC_USDC-PERPETUAL", Side.BUY, 50.0, 70_000.0)
    r = eng.check_order(big)
    assert r.reason is Reason.INSUFFICIENT_MARGIN
    assert r.worst_scenario is not None
    _sums_to_loss(r.attribution, r.worst_scenario.loss)
    assert r.attribution[0][0] == "BTC_USDC-PERPETUAL"  # the order's leg loses most
    assert r.attribution[0][1] == pytest.approx(51.01)  # position + working + the order
    msg = decision_to_proto(r)
    assert [(a.symbol, a.quantity, a.pnl) for a in msg.attribution] == list(r.attribution)
    # a retry gets the remembered reject back, attribution included
    again = eng.check_order(big)
    assert again.duplicate and again.attribution == r.attribution
    # ... and from a snapshot: the remembered decision keeps it, the state hash covers it
    from collections import deque

    from riskgate.engine.book import Book
    from riskgate.engine.journal import codec

    book = Book(eng.model, eng.rules_params, eng.config, status_changes=deque())
    codec.decode_snapshot(codec.encode_snapshot(eng.book, eng.seq), book)
    assert book.accounts["A"].decisions["big"][1].attribution == r.attribution
    assert codec.state_hash(book) == codec.state_hash(eng.book)


@pytest.mark.parametrize("model", ["deribit", "span"])
def test_whatif_explain_on_an_accept(model: str) -> None:
    from riskgate.engine.types import OrderRequest, Side

    eng = _engine(model)
    # more long BTC: the buy side binds
    order = OrderRequest("A", "", "BTC_USDC-PERPETUAL", Side.BUY, 0.5, 70_000.0)
    plain = eng.whatif(order)
    assert plain.accepted and plain.attribution == ()
    d = eng.whatif(order, explain=True)
    assert d.accepted and d.worst_scenario is not None
    _sums_to_loss(d.attribution, d.worst_scenario.loss)
    qty = {a[0]: a[1] for a in d.attribution}
    assert qty["BTC_USDC-PERPETUAL"] == pytest.approx(1.5)
    # selling BTC lowers the sell side: the buy side (the positions as they are) binds
    sell = eng.whatif(
        OrderRequest("A", "", "BTC_USDC-PERPETUAL", Side.SELL, 0.5, 70_000.0), explain=True
    )
    assert {a[0]: a[1] for a in sell.attribution}["BTC_USDC-PERPETUAL"] == pytest.approx(1.0)
    _sums_to_loss(sell.attribution, sell.worst_scenario.loss)
    assert qty["collateral:BTC"] == pytest.approx(0.5)


def test_max_quantity_probes_compute_no_attribution(monkeypatch: pytest.MonkeyPatch) -> None:
    from riskgate.engine import decide

    eng = _engine("deribit")
    calls = []
    real = decide.explain_side
    monkeypatch.setattr(decide, "explain_side", lambda *a: calls.append(1) or real(*a))
    result = eng.max_quantity("A", "BTC_USDC-PERPETUAL", 70_000.0)
    assert result.max_buy_quantity > 0 and calls == []
    # outside MaxQuantity a reject on the same thread still carries it
    from riskgate.engine.types import OrderRequest, Side

    r = eng.whatif(OrderRequest("A", "", "BTC_USDC-PERPETUAL", Side.BUY, 1e4, 70_000.0))
    assert not r.accepted and r.attribution and calls == [1]
