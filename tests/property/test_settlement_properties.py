"""Futures settlement over random paths of marks (issue 10, part 1).

An account builds futures positions through fills at random prices (inverse and linear,
perpetual and dated, BTC and ETH) and a reconciliation, then the marks walk a random path:

- a path that comes back to the start marks leaves the account exactly as it was (the
  settlement of the whole path is exactly zero, not merely close to it);
- any path settles exactly what one update from its start to its end settles;
- both equal the closed form: inverse ``sum N_i / p_i - N / m`` coin (``N_i`` the notional a
  fill of ``q_i`` coin at ``p_i`` added, ``N_i / p_i = q_i``), linear ``sum q_i (m - p_i)`` USD.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.domain.instruments import parse_symbol
from riskgate.engine.types import Filled, MarginMethod, OrderRequest, PoolMode, Side
from tests.reference.engine_market import SNAP, make_engine

SYMBOLS = ["BTC-PERPETUAL", "ETH-PERPETUAL", "BTC-25DEC26", "BTC_USDC-PERPETUAL", "ETH-4DEC26"]
RECONCILED = "BTC-PERPETUAL"
COLLATERAL = {"USD": 10_000_000.0, "BTC": 3.0, "ETH": 40.0}

fills_st = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.floats(0.05, 5.0, allow_nan=False),
        st.floats(0.9, 1.1, allow_nan=False),  # fill price / mark
    ),
    min_size=1,
    max_size=8,
)
factor = st.floats(0.3, 3.0, allow_nan=False)
path_st = st.lists(st.tuples(factor, factor), min_size=1, max_size=8)


def marks_at(kb: float, ke: float) -> tuple[dict[str, float], dict[str, float]]:
    """Index and every future's mark moved by kb (BTC) and ke (ETH) from the start."""
    k = {"BTC": kb, "ETH": ke}
    index = {c: v * k[c] for c, v in SNAP.index_usd.items()}
    marks = {s: m * k[parse_symbol(s).underlying] for s, m in SNAP.marks_usd.items()}
    return index, marks


def go(eng, index, marks) -> None:
    eng.update_market(
        full_snapshot=False, valuation_time=None, index_usd=index, marks_usd=marks, ivs={}
    )


def build(pool_mode: PoolMode, reconciled: float, fills) -> tuple:
    """The account, and the fills that went in: (symbol, signed coin, price)."""
    eng = make_engine("deribit")
    eng.upsert_account(
        "A", collateral=COLLATERAL, pool_mode=pool_mode, margin_method=MarginMethod.PORTFOLIO
    )
    eng.set_positions("A", [(RECONCILED, reconciled, None)])
    done = []
    for k, (sym, side, qty, f) in enumerate(fills):
        price = SNAP.marks_usd[sym] * f
        if eng.check_order(OrderRequest("A", f"o{k}", sym, side, qty, price)).accepted:
            eng.order_event("A", f"o{k}", Filled(qty, price, f"f{k}"))
            done.append((sym, qty * side.sign, price))
    return eng, done


def closed_form(reconciled: float, done, marks) -> dict[str, float]:
    """Collateral per currency from nothing but the trades and the final marks."""
    out = dict(COLLATERAL)
    m0 = SNAP.marks_usd[RECONCILED]
    n0 = reconciled * m0  # reconciled at the start mark: basis N / m0
    out["BTC"] += n0 / m0 - n0 / marks[RECONCILED]
    for sym, q, p in done:
        inst = parse_symbol(sym)
        if inst.is_inverse:  # N = q p USD: settles N / p - N / m = q - q p / m coin
            out[inst.underlying] += q - q * p / marks[sym]
        else:
            out["USD"] += q * (marks[sym] - p)
    return out


def without_version(view):
    return dataclasses.replace(view, market_version=0)


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    reconciled=st.sampled_from([-2.0, 0.5, 1.0]),
    fills=fills_st,
    path=path_st,
)
def test_settlement_depends_on_the_marks_alone(pool_mode, reconciled, fills, path) -> None:
    eng, done = build(pool_mode, reconciled, fills)
    # the state as an update rebuilds it (the pools' sums in their rebuilt order)
    go(eng, SNAP.index_usd, SNAP.marks_usd)
    start = eng.account_view("A")
    assert start.collateral == pytest.approx(closed_form(reconciled, done, SNAP.marks_usd))

    for kb, ke in path:
        go(eng, *marks_at(kb, ke))
    end_index, end_marks = marks_at(*path[-1])
    end = eng.account_view("A")

    # one update from the start to the end settles exactly what the path did
    twin, _ = build(pool_mode, reconciled, fills)
    go(twin, end_index, end_marks)
    assert without_version(twin.account_view("A")) == without_version(end)
    assert end.collateral == pytest.approx(
        closed_form(reconciled, done, end_marks), rel=1e-12, abs=1e-9
    )

    # back at the start marks: exactly where the account started
    go(eng, SNAP.index_usd, SNAP.marks_usd)
    assert without_version(eng.account_view("A")) == without_version(start)
