"""Property tests of rules-based margin (docs/architecture.md §5) on random portfolios.

The per-leg standard is compared with a naive reference written here from the published
formulas (pricing with the plain-Python Black-76 twin); the strategy flavour is checked for
its invariants: never above per-leg, never above leaving every leg unpaired, non-negative,
independent of leg order, every position fully accounted for, and linear in quantity for
options-only books.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.domain.instruments import Kind, parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.kernels.black76 import black76_price_py
from riskgate.models.rules import load_rules_params, per_leg_margin, strategy_margin

VALUATION_TIME = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
INDEX_USD = {"BTC": 10_000.0, "ETH": 500.0}
PARAMS = load_rules_params()

BTC_OPTIONS = [
    f"{head}-{expiry}-{strike}-{cp}"
    for head in ("BTC", "BTC_USDC")
    for expiry in ("25DEC26", "26MAR27")
    for strike in (8000, 9000, 10000, 11000, 12000)
    for cp in ("C", "P")
]
ETH_OPTIONS = [f"ETH-25DEC26-{k}-{cp}" for k in (450, 500, 550) for cp in ("C", "P")]
OPTIONS = BTC_OPTIONS + ETH_OPTIONS
# the dated future expires on a date no option uses, so every option's forward is the index
DELTA_ONE = ["BTC-PERPETUAL", "BTC-25JUN27", "BTC_USDC", "ETH-PERPETUAL", "ETH_USDC"]
MARKS_USD = {"BTC-PERPETUAL": 10_020.0, "BTC-25JUN27": 10_300.0, "ETH-PERPETUAL": 501.0}
IVS = {
    sym: 0.45 + 0.4 * abs(math.log(parse_symbol(sym).strike_usd / INDEX_USD[sym[:3]]))
    for sym in OPTIONS
}
SNAP = MarketSnapshot(VALUATION_TIME, INDEX_USD, MARKS_USD, IVS, rate=0.0)
FUTURES_RATES = {"BTC": (0.02, 0.01, 0.00005), "ETH": (0.02, 0.01, 0.000004)}

quantities = st.integers(-500, 500).filter(lambda q: q != 0).map(lambda q: q / 100.0)


def portfolios(symbols: list[str], max_size: int = 10):
    return st.lists(
        st.tuples(st.sampled_from(symbols), quantities),
        min_size=1,
        max_size=max_size,
        unique_by=lambda p: p[0],
    )


def positions_of(book):
    return [(parse_symbol(sym), qty) for sym, qty in book]


# ---- naive reference (published formulas, plain Python) --------------------------------------


def option_mark_usd(symbol: str) -> float:
    inst = parse_symbol(symbol)
    tte_years = (inst.expiry - VALUATION_TIME).total_seconds() / (365 * 86400)
    fwd_usd = INDEX_USD[inst.underlying]  # rate 0, no future of the same expiry
    return black76_price_py(
        fwd_usd, inst.strike_usd, tte_years, IVS[symbol], 0.0, inst.kind == Kind.CALL
    )


def reference_leg_usd(symbol: str, qty: float) -> tuple[float, float, float]:
    """(per-leg IM, per-leg MM, strategy-flavour standalone cost), USD, for the position."""
    inst = parse_symbol(symbol)
    s = INDEX_USD[inst.underlying]
    size = abs(qty)
    if inst.is_option:
        mark = option_mark_usd(symbol)
        if qty > 0:
            return size * mark, size * mark, size * mark
        k = inst.strike_usd
        otm = max(k - s, 0.0) if inst.kind == Kind.CALL else max(s - k, 0.0)
        im = max(0.15 - otm / s, 0.10) * s + mark
        if inst.kind == Kind.CALL:
            mm = 0.075 * s + mark
        else:
            mm = max(0.075, 0.075 * mark / s) * s + mark
            im = max(im, mm)
        naked = mark + max(0.20 * s - otm, 0.10 * s)
        return size * im, size * mm, size * naked
    if inst.kind == Kind.SPOT and qty > 0:
        return 0.0, 0.0, 0.0
    price = s if inst.kind == Kind.SPOT else MARKS_USD[symbol]
    im_rate, mm_rate, size_rate = FUTURES_RATES[inst.underlying]
    im = (im_rate + size_rate * size) * size * price
    return im, (mm_rate + size_rate * size) * size * price, im


# ---- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(portfolios(OPTIONS + DELTA_ONE))
def test_per_leg_matches_naive_reference_and_sum_of_legs(book):
    res = per_leg_margin(positions_of(book), SNAP, "USD", PARAMS)
    refs = [reference_leg_usd(sym, qty) for sym, qty in book]
    assert res.initial_margin == pytest.approx(sum(r[0] for r in refs), rel=1e-9)
    assert res.maintenance_margin == pytest.approx(sum(r[1] for r in refs), rel=1e-9)
    for leg, ref in zip(res.legs, refs, strict=True):
        assert leg.initial_margin == pytest.approx(ref[0], rel=1e-9, abs=1e-9)
        assert 0.0 <= leg.maintenance_margin <= leg.initial_margin + 1e-9


@settings(max_examples=60, deadline=None)
@given(portfolios(OPTIONS + DELTA_ONE, max_size=12))
def test_strategy_between_zero_and_per_leg_and_never_worse_than_unpaired(book):
    positions = positions_of(book)
    per_leg = per_leg_margin(positions, SNAP, "USD", PARAMS)
    strat = strategy_margin(positions, SNAP, "USD", PARAMS)
    assert strat.initial_margin >= 0.0
    assert strat.maintenance_margin >= 0.0
    assert strat.maintenance_margin <= strat.initial_margin * (1 + 1e-12)
    assert strat.initial_margin <= per_leg.initial_margin * (1 + 1e-12)
    # the LP pairing (sum of the reported strategies) never costs more than leaving every
    # leg unpaired (standalone costs from the naive reference)
    unpaired_usd = sum(reference_leg_usd(sym, qty)[2] for sym, qty in book)
    lp_usd = sum(s.initial_margin for s in strat.strategies)
    assert lp_usd <= unpaired_usd * (1 + 1e-9) + 1e-6
    assert all(s.initial_margin >= 0.0 and s.units > 0.0 for s in strat.strategies)
    # uncapped, the IM is the LP total; capped, the per-leg sum of some underlying was lower
    if strat.capped_at_per_leg:
        assert strat.initial_margin < lp_usd
    else:
        assert strat.initial_margin == pytest.approx(lp_usd, rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(portfolios(OPTIONS + DELTA_ONE, max_size=12))
def test_strategies_use_every_position_exactly_once(book):
    strat = strategy_margin(positions_of(book), SNAP, "USD", PARAMS)
    used: dict[str, float] = {}
    for s in strat.strategies:
        for sym, qty in s.legs:
            used[sym] = used.get(sym, 0.0) + qty
    assert set(used) == {sym for sym, _ in book}
    for sym, qty in book:
        assert used[sym] == pytest.approx(qty, rel=1e-7, abs=1e-7)
        # a leg is only used with its own sign
        for s in strat.strategies:
            for leg_sym, leg_qty in s.legs:
                if leg_sym == sym:
                    assert leg_qty * qty > 0.0


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_order_of_legs_is_irrelevant(data):
    book = data.draw(portfolios(OPTIONS + DELTA_ONE, max_size=12))
    shuffled = data.draw(st.permutations(book))
    a, b = positions_of(book), positions_of(shuffled)
    for fn in (per_leg_margin, strategy_margin):
        ra, rb = fn(a, SNAP, "USD", PARAMS), fn(b, SNAP, "USD", PARAMS)
        assert ra.initial_margin == pytest.approx(rb.initial_margin, rel=1e-9, abs=1e-9)
        assert ra.maintenance_margin == pytest.approx(rb.maintenance_margin, rel=1e-9, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(portfolios([*OPTIONS, "BTC_USDC", "ETH_USDC"]), st.floats(0.1, 10.0))
def test_options_scale_linearly(book, k):
    # without futures and short spot (whose rate has a size term) both flavours are
    # homogeneous of degree 1; spot is kept long (free, but it covers calls)
    base = [(inst, abs(q) if inst.kind == Kind.SPOT else q) for inst, q in positions_of(book)]
    scaled = [(inst, k * qty) for inst, qty in base]
    p1 = per_leg_margin(base, SNAP, "USD", PARAMS)
    pk = per_leg_margin(scaled, SNAP, "USD", PARAMS)
    assert pk.initial_margin == pytest.approx(k * p1.initial_margin, rel=1e-9, abs=1e-9)
    assert pk.maintenance_margin == pytest.approx(k * p1.maintenance_margin, rel=1e-9, abs=1e-9)
    s1 = strategy_margin(base, SNAP, "USD", PARAMS)
    sk = strategy_margin(scaled, SNAP, "USD", PARAMS)
    assert sk.initial_margin == pytest.approx(k * s1.initial_margin, rel=1e-7, abs=1e-7)


@settings(max_examples=40, deadline=None)
@given(portfolios([s for s in OPTIONS if s.startswith("BTC-")] + ["BTC-PERPETUAL", "BTC-25JUN27"]))
def test_coin_pool_is_usd_over_index(book):
    positions = positions_of(book)
    for fn in (per_leg_margin, strategy_margin):
        usd = fn(positions, SNAP, "USD", PARAMS)
        btc = fn(positions, SNAP, "BTC", PARAMS)
        assert btc.initial_margin == pytest.approx(usd.initial_margin / 10_000.0, rel=1e-9)
        assert btc.maintenance_margin == pytest.approx(usd.maintenance_margin / 10_000.0, rel=1e-9)
