"""Property tests of portfolio margin (issue 2, "How it is checked"), both models, both pool
modes, on random portfolios drawn from the embedded demo venue.

References are independent of the incremental path: a second load in another order, a
``full_revaluation`` from nothing but the inputs (dense matrix product, numpy aggregates),
the same book scaled by k, the same change applied for real, and the rules-based numbers
of the report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.demo import demo_market
from riskgate.domain.instruments import parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.state import PoolMargin, PortfolioState, build_tables
from riskgate.models import load_model
from riskgate.report import compute_report

VT = datetime(2026, 11, 21, 8, tzinfo=UTC)
MARKET = demo_market(VT, strikes_per_expiry=7)
SNAP = MARKET.snapshot
INSTS = MARKET.instruments
MODEL_NAMES = ("deribit", "span")
MODES = ("cross", "segregated")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STRESS = EXAMPLES / "stress" / "illustrative.toml"
MODELS = {name: load_model(name) for name in MODEL_NAMES}
# the incremental properties hold with stress cells appended too
MODELS |= {f"{name}+stress": load_model(name, stress_path=STRESS) for name in MODEL_NAMES}
TABLES = {
    (name, mode): build_tables(model, SNAP, INSTS, mode == "segregated")
    for name, model in MODELS.items()
    for mode in MODES
}
COMBOS = [pytest.param(name, mode, id=f"{name}-{mode}") for name in MODELS for mode in MODES]

HEDGES = ("short_put_spread.json", "iron_condor.json", "long_calendar.json", "hedged_straddle.json")

RTOL = 1e-9
ATOL = 1e-6
SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)

# ---- strategies -----------------------------------------------------------------------------

quantity = st.integers(-50, 50).filter(lambda k: k != 0).map(lambda k: k / 10.0) | st.floats(
    -7.0, 7.0, allow_nan=False, allow_infinity=False
).filter(lambda x: abs(x) > 1e-3)
positions_st = st.lists(
    st.tuples(st.integers(0, len(INSTS) - 1), quantity),
    min_size=1,
    max_size=12,
    unique_by=lambda t: t[0],
)
collateral_st = st.fixed_dictionaries(
    {
        "USD": st.floats(0.0, 1e6),
        "BTC": st.floats(0.0, 5.0),
        "ETH": st.floats(0.0, 50.0),
    }
)
usd_collateral_st = st.fixed_dictionaries({"USD": st.floats(0.0, 1e6)})


# ---- helpers ---------------------------------------------------------------------------------


def _state(combo: tuple[str, str], positions, collateral: dict[str, float]) -> PortfolioState:
    _name, mode = combo
    state = PortfolioState(TABLES[combo], mode == "segregated")
    for ccy, amount in collateral.items():
        state.set_collateral(ccy, amount)
    for idx, q in positions:
        state.set_position(INSTS[idx], q)
    return state


def _pool_ccy(inst, mode: str) -> str:
    """docs/architecture.md §2: segregated -> inverse instruments in their coin's pool, the rest in USD."""
    return inst.underlying if mode == "segregated" and inst.is_inverse else "USD"


def _close(a: float, b: float, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return abs(a - b) <= max(atol, rtol * max(abs(a), abs(b)))


def _assert_pool_equal(a: PoolMargin, b: PoolMargin, what: str) -> None:
    for key in ("initial_margin", "maintenance_margin", "worst_case", "equity"):
        va, vb = getattr(a, key), getattr(b, key)
        assert _close(va, vb), f"{what} {a.currency} {key}: {va!r} vs {vb!r}"


# ---- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(positions=positions_st, collateral=collateral_st)
def test_margin_is_non_negative(model, mode, positions, collateral) -> None:
    margins = _state((model, mode), positions, collateral).margin()
    assert margins
    for pm in margins.values():
        assert pm.initial_margin >= 0.0
        assert pm.maintenance_margin >= 0.0
        assert pm.worst_case >= 0.0
        for um in pm.underlyings.values():
            assert um.initial_margin >= 0.0
            assert um.maintenance_margin >= 0.0
        for name, v in pm.add_ons.items():
            if name != "inter_credit":
                assert v >= 0.0, name


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(positions=positions_st, collateral=collateral_st, data=st.data())
def test_order_of_positions_is_irrelevant(model, mode, positions, collateral, data) -> None:
    shuffled = data.draw(st.permutations(positions))
    a = _state((model, mode), positions, collateral)
    b = _state((model, mode), shuffled, collateral)
    ma, mb = a.margin(), b.margin()
    assert ma.keys() == mb.keys()
    for ccy in ma:
        _assert_pool_equal(ma[ccy], mb[ccy], "reordered")
        np.testing.assert_allclose(a.pools[ccy].pnl, b.pools[ccy].pnl, rtol=RTOL, atol=ATOL)


ops_st = st.lists(
    st.tuples(
        st.sampled_from(("add", "remove", "flip", "set")),
        st.integers(0, len(INSTS) - 1),
        quantity,
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(positions=positions_st, collateral=collateral_st, ops=ops_st, data=st.data())
def test_incremental_equals_full_revaluation(model, mode, positions, collateral, ops, data):
    combo = (model, mode)
    state = _state(combo, positions, collateral)
    book: dict[int, float] = dict(positions)
    touched = [idx for idx, _ in positions]
    for op, idx, q in ops:
        # mostly operate on held positions, so removes and flips are not no-ops
        if book and op in ("remove", "flip", "add") and data.draw(st.booleans()):
            idx = data.draw(st.sampled_from(sorted(book)))
        inst = INSTS[idx]
        old = book.get(idx, 0.0)
        if op == "add":
            # the pool state counts units (an inverse future's USD notional at the mark)
            state.pool_for(inst).add_quantity(inst.symbol, state.units(inst, q))
            new = old + q
        elif op == "remove":
            state.set_position(inst, 0.0)
            new = 0.0
        elif op == "flip":
            state.set_position(inst, -old)
            new = -old
        else:
            state.set_position(inst, q)
            new = q
        book[idx] = new
        touched.append(idx)
    # the reference: every touched instrument at its final quantity (0 included, so the
    # same pools exist), from nothing but the inputs
    final = {INSTS[idx]: book.get(idx, 0.0) for idx in dict.fromkeys(touched)}
    ref = full_revaluation(MODELS[model], SNAP, final, collateral, mode == "segregated")
    got = state.margin()
    assert got.keys() == ref.keys()
    for ccy in ref:
        _assert_pool_equal(got[ccy], ref[ccy], "incremental vs full")
        # and the state's quantities are the book's, in units
        held = {s: q for s, q in state.pools[ccy].qty.items() if not s.startswith("collateral:")}
        expect = {
            i.symbol: state.units(i, q)
            for i, q in final.items()
            if q != 0.0 and _pool_ccy(i, mode) == ccy
        }
        assert held.keys() == expect.keys()
        for s in held:
            assert _close(held[s], expect[s], atol=1e-12)


def test_full_revaluation_coin_collateral_in_coin_pool_has_no_delta() -> None:
    # Segregated SPAN, BTC pool (prices in coin, und_price 1): long 1 BTC-26MAR27 (125 days,
    # tier 2), short 1 BTC-PERPETUAL (tier 0), 1 BTC of collateral.
    #   scan: both inverse futures have the same risk row -> net 0
    #   tier deltas d0 = -1, d2 = +1; pairs (0,1), (1,2) find nothing; (0,2) matches 1 at
    #   1.5 % -> 0.015 BTC;  MM = 0.015, IM = 1.1 x 0.015 = 0.0165 BTC.
    # The collateral never moves in its own pool, so it carries no delta and cannot
    # "hedge" the calendar. (Regression: full_revaluation once gave 0 here, counting the
    # collateral as a delta-one row in tier 0, which the random search above found.)
    snap = MarketSnapshot(VT, {"BTC": 70_000.0}, {"BTC-26MAR27": 70_960.0}, {}, 0.0)
    pos = {parse_symbol("BTC-26MAR27"): 1.0, parse_symbol("BTC-PERPETUAL"): -1.0}
    model = MODELS["span"]
    state = PortfolioState(build_tables(model, snap, list(pos), True), True)
    state.set_collateral("BTC", 1.0)
    for inst, q in pos.items():
        state.set_position(inst, q)
    assert state.margin()["BTC"].initial_margin == pytest.approx(0.0165, rel=1e-12)
    ref = full_revaluation(model, snap, pos, {"BTC": 1.0}, True)["BTC"]
    assert ref.initial_margin == pytest.approx(0.0165, rel=1e-12)


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(positions=positions_st, collateral=usd_collateral_st, data=st.data())
def test_adding_the_exact_opposite_gives_zero(model, mode, positions, collateral, data) -> None:
    state = _state((model, mode), positions, collateral)
    before = state.margin()
    for idx, q in data.draw(st.permutations(positions)):
        inst = INSTS[idx]
        state.pool_for(inst).add_quantity(inst.symbol, -state.units(inst, q))
    after = state.margin()
    for ccy, pm in after.items():
        scale = max(1.0, before[ccy].initial_margin)
        assert abs(pm.worst_case) <= 1e-9 * scale, (ccy, pm.worst_case)
        assert abs(pm.initial_margin) <= 1e-9 * scale, (ccy, pm.initial_margin)
        assert abs(pm.maintenance_margin) <= 1e-9 * scale
        # only the cash is left
        assert _close(pm.equity, collateral["USD"] if ccy == "USD" else 0.0)
        assert state.pools[ccy].qty == {}


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(
    positions=positions_st,
    collateral=usd_collateral_st,
    k=st.floats(0.05, 20.0, allow_nan=False, allow_infinity=False),
)
def test_positive_homogeneity(model, mode, positions, collateral, k) -> None:
    a = _state((model, mode), positions, collateral)
    b = _state((model, mode), [(i, k * q) for i, q in positions], collateral)
    ma, mb = a.margin(), b.margin()
    assert ma.keys() == mb.keys()
    for ccy in ma:
        for key in ("initial_margin", "maintenance_margin", "worst_case"):
            va, vb = getattr(ma[ccy], key), getattr(mb[ccy], key)
            assert _close(k * va, vb), (ccy, key, k * va, vb)
        for name, v in ma[ccy].add_ons.items():
            assert _close(k * v, mb[ccy].add_ons[name]), (ccy, name)
        np.testing.assert_allclose(
            k * a.pools[ccy].pnl, b.pools[ccy].pnl, rtol=RTOL, atol=ATOL * 1e-3
        )


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(
    positions=positions_st,
    collateral=collateral_st,
    idx=st.integers(0, len(INSTS) - 1),
    dq=quantity,
    use_held=st.booleans(),
)
def test_whatif_equals_applied_change(model, mode, positions, collateral, idx, dq, use_held):
    state = _state((model, mode), positions, collateral)
    if use_held:
        idx = positions[0][0]
    inst = INSTS[idx]
    pool = state.pool_for(inst)
    before = pool.margin()
    pnl0, aux0, qty0 = pool.pnl.copy(), pool.aux.copy(), dict(pool.qty)
    im, mm = pool.whatif(inst.symbol, dq)
    # untouched: state arrays and holdings bit for bit, margin as before
    np.testing.assert_array_equal(pool.pnl, pnl0)
    np.testing.assert_array_equal(pool.aux, aux0)
    assert pool.qty == qty0
    again = pool.margin()
    assert again.initial_margin == before.initial_margin
    assert again.maintenance_margin == before.maintenance_margin
    # now apply it for real
    pool.add_quantity(inst.symbol, dq)
    applied = pool.margin()
    assert _close(im, applied.initial_margin), (im, applied.initial_margin)
    assert _close(mm, applied.maintenance_margin), (mm, applied.maintenance_margin)


@pytest.mark.parametrize(("model", "mode"), COMBOS)
@SETTINGS
@given(
    positions=positions_st,
    collateral=collateral_st,
    ops=st.lists(
        st.tuples(
            st.sampled_from(("whatif", "add", "commit", "collateral")),
            st.integers(0, len(INSTS) - 1),
            quantity,
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_adopting_a_whatif_equals_applying_the_change(model, mode, positions, collateral, ops):
    # A what-if stages its result; a later change equal to it adopts the staged arrays. The
    # twin book sees only the changes, never a what-if: both must agree bit for bit, also
    # when other changes, other what-ifs or collateral land in between ("commit" applies the
    # last what-if's change, however long ago it was evaluated).
    combo = (model, mode)
    state = _state(combo, positions, collateral)
    twin = _state(combo, positions, collateral)
    last = None
    for op, idx, q in ops:
        if op == "commit":
            if last is None:
                continue
            op, idx, q = "add", *last
        inst = INSTS[idx]
        if op == "whatif":
            state.pool_for(inst).whatif(inst.symbol, q)
            last = (idx, q)
        elif op == "add":
            state.pool_for(inst).add_quantity(inst.symbol, q)
            twin.pool_for(inst).add_quantity(inst.symbol, q)
        else:  # coin collateral is a holding of the pool: it must end a staged what-if
            state.set_collateral("BTC", abs(q))
            twin.set_collateral("BTC", abs(q))
    assert state.pools.keys() == twin.pools.keys()
    for ccy, pool in state.pools.items():
        np.testing.assert_array_equal(pool.pnl, twin.pools[ccy].pnl)
        np.testing.assert_array_equal(pool.aux, twin.pools[ccy].aux)
        assert pool.qty == twin.pools[ccy].qty


# ---- example hedges: portfolio vs rules-based -----------------------------------------------


def _example_reports():
    out = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        data = json.loads(path.read_text())
        for model in MODEL_NAMES:
            out[(path.name, model)] = compute_report(data, model=model)
    return out


REPORTS = _example_reports()


@pytest.mark.parametrize("model", MODEL_NAMES)
@pytest.mark.parametrize("name", HEDGES)
def test_portfolio_im_at_most_per_leg_for_hedges(name: str, model: str) -> None:
    report = REPORTS[(name, model)]
    assert report["pools"]
    for ccy, pool in report["pools"].items():
        pm = pool["portfolio"]["initial_margin"]
        per_leg = pool["rules"]["per_leg"]["initial_margin"]
        assert pm > 0.0, ccy
        assert pm <= per_leg, (ccy, pm, per_leg)


@pytest.mark.parametrize("model", MODEL_NAMES)
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_strategy_at_most_per_leg_for_every_example(name: str, model: str) -> None:
    report = REPORTS[(name, model)]
    for pool in report["pools"].values():
        blocks = [pool["rules"]] + [u["rules"] for u in pool["underlyings"].values()]
        for rules in blocks:
            strategy = rules["strategy"]["initial_margin"]
            per_leg = rules["per_leg"]["initial_margin"]
            assert 0.0 <= strategy <= per_leg * (1 + 1e-12), (strategy, per_leg)
