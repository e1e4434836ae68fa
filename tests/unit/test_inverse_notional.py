"""Inverse futures and perpetuals are sized in USD (issue 10, part 1).

A position is a fixed USD notional ``N``; coin quantities of the API are converted at the
fill price (a working order's at its limit price, a reconciliation's at the mark); the
variation margin of a move from ``m0`` to ``m1`` is ``N (1/m0 - 1/m1)`` coin, and the
engine settles it against a basis from the current mark, so marks that come back settle
exactly zero. Expected values are worked by hand in the comments.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import pytest

from riskgate.domain.instruments import parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.engine.book import Book
from riskgate.engine.journal import codec
from riskgate.engine.types import (
    Cancelled,
    Filled,
    Limits,
    MarginMethod,
    MarginStatus,
    OrderRequest,
    PoolMode,
    Reason,
    Side,
)
from riskgate.kernels import margin as mk
from riskgate.models.risk_table import build_table
from riskgate.v1 import events_pb2 as epb
from tests.reference.engine_market import MODELS, SNAP, VT, make_engine

PERP = "BTC-PERPETUAL"
ETH_PERP = "ETH-PERPETUAL"


def move(eng, btc: float, eth: float | None = None) -> None:
    """Index and the inverse perpetual's mark to ``btc`` (ETH's too, if given)."""
    index, marks = {"BTC": btc}, {PERP: btc}
    if eth is not None:
        index["ETH"], marks[ETH_PERP] = eth, eth
    eng.update_market(
        full_snapshot=False, valuation_time=None, index_usd=index, marks_usd=marks, ivs={}
    )


def long_one_btc(model="deribit", pool_mode=PoolMode.CROSS):
    """The issue's account: 100,000 USD, then SetPositions long 1 BTC-PERPETUAL at a mark
    (and index) of 70,000: a notional of 70,000 USD."""
    eng = make_engine(model)
    move(eng, 70_000.0)
    eng.upsert_account(
        "A", collateral={"USD": 100_000.0}, pool_mode=pool_mode,
        margin_method=MarginMethod.PORTFOLIO,
    )  # fmt: skip
    eng.set_positions("A", [(PERP, 1.0, None)])
    return eng


def same_but_version(a, b) -> bool:
    return dataclasses.replace(a, market_version=0) == dataclasses.replace(b, market_version=0)


# --------------------------------------------------------------------------- the reproducers


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@pytest.mark.parametrize("model", ["deribit", "span"])
def test_twenty_round_trips_of_five_percent_cost_nothing(model, pool_mode):
    # Before: each +5 % paid q (1 - m0/m1) = 1 - 1/1.05 = 1/21 BTC, each way back
    # 1 - 1.05 = -1/20 BTC: -1/420 BTC per round trip, 20 of them -1/21 BTC = -3,333.33 USD.
    # Now N = 70,000 USD: at 73,500 the account has settled 70,000 (1/70,000 - 1/73,500)
    # = 1 - 20/21 = 1/21 BTC, back at 70,000 exactly 0, every time.
    eng = long_one_btc(model, pool_mode)
    before = eng.account_view("A")
    assert before.collateral == {"USD": 100_000.0}
    (pos,) = before.positions
    assert (pos.quantity, pos.notional_usd) == (1.0, 70_000.0)
    for _ in range(20):
        move(eng, 73_500.0)
        up = eng.account_view("A")
        assert up.collateral["BTC"] == pytest.approx(1.0 / 21.0, rel=1e-15)
        assert up.positions[0].quantity == pytest.approx(70_000.0 / 73_500.0, rel=1e-15)
        assert up.positions[0].notional_usd == 70_000.0
        move(eng, 70_000.0)
        back = eng.account_view("A")
        assert back.collateral == {"USD": 100_000.0}  # exactly: no BTC left either way
        assert same_but_version(back, before)
    if pool_mode == PoolMode.CROSS:
        # the 1/21 BTC is worth 73,500 / 21 = 3,500 USD at the top (haircut 0 for deribit)
        assert back.equity_usd == 100_000.0


def test_ninety_percent_round_trip_comes_back_whole():
    # Before: -90 % paid 1 - 70,000/7,000 = -9 BTC, the way back 1 - 0.1 = +0.9 BTC: -8.1
    # BTC = -567,000 USD, equity -467,000 USD, LIQUIDATION.
    # Now: at 7,000 the position has settled 70,000 (1/70,000 - 1/7,000) = 1 - 10 = -9 BTC,
    # worth -63,000 USD (equity 37,000 USD); back at 70,000 it has settled exactly 0.
    eng = long_one_btc()
    before = eng.account_view("A")
    move(eng, 7_000.0)
    down = eng.account_view("A")
    assert down.collateral == pytest.approx({"USD": 100_000.0, "BTC": -9.0}, rel=1e-15)
    assert down.equity_usd == pytest.approx(37_000.0, rel=1e-12)
    move(eng, 70_000.0)
    back = eng.account_view("A")
    assert back.collateral == {"USD": 100_000.0}
    assert back.equity_usd == 100_000.0
    assert back.margin_status == MarginStatus.OK
    assert same_but_version(back, before)


# --------------------------------------------------------------------------- conventions


def test_coin_quantities_convert_at_the_fill_price():
    # buy 1 at 70,000: +70,000 USD of notional, basis 1 BTC; sell 1 at 75,000: -75,000 USD,
    # basis 0: short 5,000 USD entered at 75,000. At the mark m it has settled
    # 0 - (-5,000)/m = 5,000/m BTC: the long's 70,000 (1/70,000 - 1/75,000) = 1/15 BTC plus
    # the short's -5,000 (1/75,000 - 1/m) = -1/15 + 5,000/m.
    eng = make_engine()
    eng.upsert_account("A", collateral={"USD": 100_000.0}, margin_method=MarginMethod.PORTFOLIO)
    for cid, side, px in (("b", Side.BUY, 70_000.0), ("s", Side.SELL, 75_000.0)):
        assert eng.check_order(OrderRequest("A", cid, PERP, side, 1.0, px)).accepted
        eng.order_event("A", cid, Filled(1.0, px, cid))
    view = eng.account_view("A")
    (pos,) = view.positions
    mark = SNAP.marks_usd[PERP]  # 70,007
    assert pos.notional_usd == -5_000.0
    assert pos.quantity == pytest.approx(-5_000.0 / mark, rel=1e-15)
    assert pos.avg_price == 75_000.0  # the short's entry
    assert view.collateral == pytest.approx({"USD": 100_000.0, "BTC": 5_000.0 / mark}, rel=1e-12)
    # the notional stays as the mark moves: at 80,000 it has settled 5,000 / 80,000 BTC
    move(eng, 80_000.0)
    view = eng.account_view("A")
    assert view.positions[0].notional_usd == -5_000.0
    assert view.collateral["BTC"] == pytest.approx(5_000.0 / 80_000.0, rel=1e-12)


def test_closing_the_notional_realises_the_settlement():
    # buy 1 at 69,000: N = 69,000, basis 1 BTC; sell 69,000 / 70,500 coin at 70,500: the
    # same 69,000 USD back (what rounding leaves of it is dropped), flat. Realised: basis
    # 1 - 69,000/70,500 = 1,500/70,500 = 0.0212766 BTC, which no later move changes.
    eng = make_engine()
    eng.upsert_account("A", collateral={"USD": 100_000.0, "BTC": 1.0})
    assert eng.check_order(OrderRequest("A", "b", PERP, Side.BUY, 1.0, 69_000.0)).accepted
    eng.order_event("A", "b", Filled(1.0, 69_000.0, "f1"))
    # against the mark 70,007: 1 - 69,000/70,007 BTC (the fill's cash, as before)
    assert eng.account_view("A").collateral["BTC"] == pytest.approx(
        2.0 - 69_000.0 / 70_007.0, rel=1e-15
    )
    q = 69_000.0 / 70_500.0
    assert eng.check_order(OrderRequest("A", "s", PERP, Side.SELL, q, 70_500.0)).accepted
    eng.order_event("A", "s", Filled(q, 70_500.0, "f2"))
    view = eng.account_view("A")
    assert view.positions == []
    assert eng.accounts["A"].basis == {}
    assert view.collateral["BTC"] == pytest.approx(1.0 + 1_500.0 / 70_500.0, rel=1e-15)
    move(eng, 60_000.0)
    assert eng.account_view("A").collateral == view.collateral


def test_working_order_reserves_its_notional_at_its_limit_price():
    # a buy of 2 at 60,000 reserves 120,000 USD of notional: exactly what a position of
    # 120,000 USD of notional needs; a market order reserves at the mark (2 x 70,007)
    eng = make_engine()
    eng.upsert_account("A", collateral={"USD": 1_000_000.0})
    assert eng.check_order(OrderRequest("A", "w", PERP, Side.BUY, 2.0, 60_000.0)).accepted
    acc = eng.accounts["A"]
    pool = acc.pools["USD"]
    assert acc.working_buy == {PERP: 120_000.0}
    assert pool.B.qty[PERP] == 120_000.0
    twin = make_engine()
    twin.upsert_account("A", collateral={"USD": 1_000_000.0})
    twin.set_positions("A", [(PERP, 120_000.0 / 70_007.0, None)])
    assert twin.accounts["A"].pools["USD"].P.qty[PERP] == pytest.approx(120_000.0, rel=1e-15)
    assert pool.im == pytest.approx(twin.accounts["A"].pools["USD"].im, rel=1e-12)
    # a cancel releases exactly what was reserved
    eng.order_event("A", "w", Cancelled())
    assert acc.working_buy == {} and pool.B.qty == pool.P.qty
    d = eng.whatif(OrderRequest("A", "", PERP, Side.BUY, 2.0, None, 2))
    assert d.accepted
    assert d.initial_margin_after == pytest.approx(
        eng.whatif(OrderRequest("A", "", PERP, Side.BUY, 2.0, 70_007.0)).initial_margin_after,
        rel=1e-15,
    )


def test_reconciling_the_shown_quantity_keeps_the_notional():
    # SetPositions converts at the mark, except the quantity the account shows now (the
    # notional's coin at the mark), which leaves the notional exactly as it is
    eng = long_one_btc()
    move(eng, 71_234.5)
    shown = eng.account_view("A").positions[0].quantity  # 70,000 / 71,234.5
    eng.set_positions("A", [(PERP, shown, None)])
    acc = eng.accounts["A"]
    assert acc.pools["USD"].P.qty[PERP] == 70_000.0
    # a new quantity is new notional at the mark: 2 coin at 71,234.5
    eng.set_positions("A", [(PERP, 2.0, None)])
    assert acc.pools["USD"].P.qty[PERP] == 142_469.0
    # and the settlement so far is untouched: 70,000 (1/70,000 - 1/71,234.5) BTC
    assert eng.account_view("A").collateral["BTC"] == pytest.approx(
        1.0 - 70_000.0 / 71_234.5, rel=1e-12
    )


def test_setting_a_balance_settles_from_the_current_marks():
    # UpsertAccount sets the balance the account shows; the open position then settles
    # from the current mark: at 73,500 it has settled 1/21 BTC, the balance is set to 2
    # BTC, back at 70,000 it shows 2 - 1/21 BTC
    eng = long_one_btc()
    move(eng, 73_500.0)
    eng.upsert_account("A", collateral={"BTC": 2.0})
    assert eng.account_view("A").collateral == {"USD": 100_000.0, "BTC": 2.0}
    move(eng, 70_000.0)
    assert eng.account_view("A").collateral["BTC"] == pytest.approx(2.0 - 1.0 / 21.0, rel=1e-15)


def test_position_limit_counts_the_notional_in_coin_at_the_mark():
    eng = long_one_btc()
    eng.upsert_account("A", limits=Limits(position_limits={PERP: 1.5}))
    # long 70,000 USD + 0.5 at 70,000 = 105,000 USD = 1.5 coin at the mark 70,000: at the limit
    assert eng.whatif(OrderRequest("A", "", PERP, Side.BUY, 0.5, 70_000.0)).accepted
    d = eng.whatif(OrderRequest("A", "", PERP, Side.BUY, 0.5, 72_000.0))  # 106,000 USD
    assert d.reason == Reason.POSITION_LIMIT
    assert d.context_actual == pytest.approx(106_000.0 / 70_000.0, rel=1e-15)


# --------------------------------------------------------------------------- risk arrays


@pytest.mark.parametrize("ccy", ["USD", "BTC"])
@pytest.mark.parametrize("model", ["deribit", "span"])
def test_risk_row_is_per_usd_of_notional(model, ccy):
    # one USD of an inverse future at mark F pays (1 - 1/(1+m)) / F coin under a move m;
    # N = q F of them pay what q coin paid before: q (1 - 1/(1+m)), x S (1+m) in USD
    snap = MarketSnapshot(VT, {"BTC": 70_000.0}, {"BTC-25DEC26": 70_326.79}, {}, 0.0)
    insts = [parse_symbol(PERP), parse_symbol("BTC-25DEC26")]
    table = build_table(MODELS[model], snap, insts, ccy)
    grid = MODELS[model].grid("BTC")
    for inst in insts:
        f = snap.future_mark(inst)
        row = table.risk[table.row[inst.symbol]]
        coin = 1.0 - 1.0 / (1.0 + grid.d1_moves)
        per_coin = coin * (70_000.0 * (1.0 + grid.d1_moves) if ccy == "USD" else 1.0)
        np.testing.assert_allclose(3.0 * f * row, 3.0 * per_coin * grid.d1_weight, rtol=1e-14)
        assert table.attr[table.row[inst.symbol], mk.A_DELTA] == pytest.approx(1.0 / f, rel=1e-15)


# --------------------------------------------------------------------------- snapshots


def test_snapshot_keeps_basis_and_units_and_refuses_another_layout():
    eng = long_one_btc()
    assert eng.check_order(OrderRequest("A", "w", PERP, Side.SELL, 0.5, 71_000.0)).accepted
    move(eng, 73_500.0)
    payload = codec.encode_snapshot(eng.book, eng.seq)

    def fresh() -> Book:
        return Book(eng.model, eng.rules_params, eng.config, status_changes=deque())

    book = fresh()
    codec.decode_snapshot(payload, book)
    acc = book.accounts["A"]
    assert acc.basis == eng.accounts["A"].basis == {PERP: 1.0}  # 70,000 / 70,000
    assert acc.orders["w"].unit == 71_000.0
    assert codec.state_hash(book) == codec.state_hash(eng.book)
    # a snapshot of the earlier layout (coin quantities, no basis) would restore wrong units
    msg = epb.BookSnapshot()
    msg.ParseFromString(payload)
    msg.state_format = 1
    with pytest.raises(codec.CodecError, match="state format 1"):
        codec.decode_snapshot(codec.snapshot_bytes(msg), fresh())
