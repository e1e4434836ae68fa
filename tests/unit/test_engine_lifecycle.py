"""RiskEngine order lifecycle, reservations, market updates and the margin status stream.

After every step the account is compared with hand-computed positions, average prices and
collateral cash, and its margin with ``full_revaluation`` of that hand-computed state
(positions + every working buy vs positions - every working sell, the worse IM; equity of
positions and collateral), so the reference never reads the engine's incremental state.
"""

from __future__ import annotations

import math
import queue
from datetime import timedelta

import pytest

from riskgate.domain.instruments import parse_symbol
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.types import (
    Acknowledged,
    Amended,
    Cancelled,
    EngineError,
    Expired,
    Filled,
    MarginMethod,
    MarginStatus,
    OrderRequest,
    OrderStatus,
    PoolMode,
    Reason,
    Side,
    VenueRejected,
)
from tests.reference.engine_market import MODEL_NAMES, MODELS, SNAP, VT, make_engine

# --------------------------------------------------------------------------- fixtures


PERP_LIN = "BTC_USDC-PERPETUAL"
PERP_INV = "BTC-PERPETUAL"
CALL_INV = "BTC-25DEC26-70500-C"
CALL_LIN = "BTC_USDC-25DEC26-70500-C"
PUT_LIN = "BTC_USDC-25DEC26-60500-P"
ETH_PUT_INV = "ETH-25DEC26-2375-P"
ETH_PERP_LIN = "ETH_USDC-PERPETUAL"
DAILY_CALL = "BTC-22NOV26-70000-C"
SPOT = "BTC_USDC"
MARK_PERP = 70_007.0  # demo mark of both BTC perpetuals
MARK_ETH_PERP = 3_500.35

REL, ABS = 1e-9, 1e-7
# a fill above the working quantity, an amend below the filled one: well-formed requests
# that conflict with the order's state
STATE_CODES = {"INVALID_ARGUMENT", "FAILED_PRECONDITION"}


def approx(x: float):
    return pytest.approx(x, rel=REL, abs=ABS)


class FakeClock:
    def __init__(self, start: int = 1_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


def add_account(eng, account_id="A", collateral=None, pool_mode=PoolMode.CROSS):
    return eng.upsert_account(
        account_id,
        collateral={"USD": 100_000.0} if collateral is None else collateral,
        pool_mode=pool_mode,
        margin_method=MarginMethod.PORTFOLIO,
    )


def order(cid, symbol=PERP_LIN, side=Side.BUY, qty=1.0, price=70_000.0, account="A", **kw):
    return OrderRequest(account, cid, symbol, side, qty, price, **kw)


def accept(eng, *args, **kw):
    d = eng.check_order(order(*args, **kw))
    assert d.accepted, (args, d.reason, d.detail)
    return d


def state_of(eng, account="A"):
    """Everything a no-op must leave alone: the view and a probe what-if's numbers."""
    d = eng.whatif(order("probe", qty=0.5))
    return eng.account_view(account), (
        d.accepted,
        d.initial_margin_before,
        d.initial_margin_after,
        d.equity_before,
    )


def error_code(fn, *args, **kw) -> str:
    with pytest.raises(EngineError) as exc:
        fn(*args, **kw)
    return exc.value.code


# --------------------------------------------------------------------------- reference


def _combine(a, b, sign):
    out = dict(a)
    for s, q in b.items():
        out[s] = out.get(s, 0.0) + sign * q
    return {s: q for s, q in out.items() if q != 0.0}


def _fr(model, snap, holdings, collateral, segregated):
    pos = {parse_symbol(s): q for s, q in holdings.items() if q != 0.0}
    return full_revaluation(MODELS[model], snap, pos, collateral, segregated)


def check_account(
    eng,
    model,
    positions,
    buys,
    sells,
    collateral,
    segregated=False,
    snap=SNAP,
    avg=None,
    account="A",
):
    """The view equals the hand-computed state, and its margin full revaluation of it."""
    view = eng.account_view(account)
    assert {p.symbol: p.quantity for p in view.positions} == pytest.approx(positions)
    if avg is not None:
        assert {p.symbol: p.avg_price for p in view.positions} == pytest.approx(avg)
    assert {k: v for k, v in view.collateral.items()} == pytest.approx(collateral)
    working_b: dict[str, float] = {}
    working_s: dict[str, float] = {}
    for o in view.working_orders:
        w = working_b if o.side == Side.BUY else working_s
        w[o.symbol] = w.get(o.symbol, 0.0) + o.working_quantity
    assert working_b == pytest.approx(buys)
    assert working_s == pytest.approx(sells)
    fb = _fr(model, snap, _combine(positions, buys, 1.0), collateral, segregated)
    fs = _fr(model, snap, _combine(positions, sells, -1.0), collateral, segregated)
    fp = _fr(model, snap, positions, collateral, segregated)

    def g(res, ccy, attr):
        p = res.get(ccy)
        return 0.0 if p is None else getattr(p, attr)

    assert {p.currency for p in view.pools} >= set(fp)
    for pv in view.pools:
        c = pv.currency
        assert pv.equity == approx(g(fp, c, "equity")), c
        assert pv.initial_margin == approx(
            max(g(fb, c, "initial_margin"), g(fs, c, "initial_margin"))
        ), c
        assert pv.maintenance_margin == approx(
            max(g(fb, c, "maintenance_margin"), g(fs, c, "maintenance_margin"))
        ), c
        assert pv.positions_initial_margin == approx(g(fp, c, "initial_margin")), c
        assert pv.positions_maintenance_margin == approx(g(fp, c, "maintenance_margin")), c
    return view


# --------------------------------------------------------------------------- fills


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_linear_future_check_ack_partial_fill_fill(model):
    eng = make_engine(model)
    add_account(eng)
    usd = 100_000.0
    check_account(eng, model, {}, {}, {}, {"USD": usd})
    accept(eng, "o1", PERP_LIN, Side.BUY, 2.0, 69_500.0)
    check_account(eng, model, {}, {PERP_LIN: 2.0}, {}, {"USD": usd})

    ack = eng.order_event("A", "o1", Acknowledged("V-1"))
    assert (ack.duplicate, ack.order_status, ack.filled_quantity, ack.working_quantity) == (
        False,
        OrderStatus.OPEN,
        0.0,
        2.0,
    )
    check_account(eng, model, {}, {PERP_LIN: 2.0}, {}, {"USD": usd})

    # 0.5 filled at 69,500 against a mark of 70,007: 0.5 x (70,007 - 69,500) = 253.5 USD
    ack = eng.order_event("A", "o1", Filled(0.5, 69_500.0, "f1"))
    assert (ack.order_status, ack.filled_quantity, ack.working_quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        0.5,
        1.5,
    )
    usd += 253.5
    check_account(
        eng, model, {PERP_LIN: 0.5}, {PERP_LIN: 1.5}, {}, {"USD": usd}, avg={PERP_LIN: 69_500.0}
    )

    # 1.5 at 69,800: 1.5 x 207 = 310.5 USD; average (0.5 x 69,500 + 1.5 x 69,800) / 2 = 69,725
    ack = eng.order_event("A", "o1", Filled(1.5, 69_800.0, "f2"))
    assert (ack.order_status, ack.filled_quantity, ack.working_quantity) == (
        OrderStatus.FILLED,
        2.0,
        0.0,
    )
    usd += 310.5
    assert usd == 100_564.0
    view = check_account(
        eng, model, {PERP_LIN: 2.0}, {}, {}, {"USD": usd}, avg={PERP_LIN: 69_725.0}
    )
    assert view.working_orders == []
    (pos,) = view.positions
    assert pos.mark_price == MARK_PERP and pos.value == 0.0  # marked to market

    # selling back part of it: realised against the mark, average unchanged
    accept(eng, "o2", PERP_LIN, Side.SELL, 0.5, 70_500.0)
    eng.order_event("A", "o2", Filled(0.5, 70_500.0, "f3"))
    usd += -0.5 * (70_007.0 - 70_500.0)  # signed q x (m - p) = 246.5
    check_account(eng, model, {PERP_LIN: 1.5}, {}, {}, {"USD": usd}, avg={PERP_LIN: 69_725.0})


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_inverse_option_fills_move_the_coin_balance(model, pool_mode):
    seg = pool_mode == PoolMode.SEGREGATED
    eng = make_engine(model)
    coll = {"USD": 50_000.0, "BTC": 2.0, "ETH": 10.0}
    add_account(eng, collateral=coll, pool_mode=pool_mode)
    accept(eng, "c1", CALL_INV, Side.BUY, 3.0, 0.05)
    accept(eng, "p1", ETH_PUT_INV, Side.SELL, 4.0, 0.02)
    check_account(eng, model, {}, {CALL_INV: 3.0}, {ETH_PUT_INV: 4.0}, coll, seg)
    eng.order_event("A", "c1", Acknowledged())
    # a fill of q at p (coin) pays q x p coin: 1 x 0.05
    eng.order_event("A", "c1", Filled(1.0, 0.05, "f1"))
    coll = {**coll, "BTC": 2.0 - 0.05}
    check_account(
        eng,
        model,
        {CALL_INV: 1.0},
        {CALL_INV: 2.0},
        {ETH_PUT_INV: 4.0},
        coll,
        seg,
        avg={CALL_INV: 0.05},
    )
    # 2 x 0.048 = 0.096; average (0.05 + 0.096) / 3
    eng.order_event("A", "c1", Filled(2.0, 0.048, "f2"))
    coll = {**coll, "BTC": 2.0 - 0.05 - 0.096}
    check_account(
        eng, model, {CALL_INV: 3.0}, {}, {ETH_PUT_INV: 4.0}, coll, seg, avg={CALL_INV: 0.146 / 3.0}
    )
    # a short option receives the premium: + 4 x 0.02 ETH
    eng.order_event("A", "p1", Filled(4.0, 0.02, "f3"))
    coll = {**coll, "ETH": 10.0 + 0.08}
    check_account(eng, model, {CALL_INV: 3.0, ETH_PUT_INV: -4.0}, {}, {}, coll, seg)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_spot_and_linear_option_fills_move_usd(model):
    eng = make_engine(model)
    add_account(eng, collateral={"USD": 200_000.0})
    accept(eng, "s1", SPOT, Side.BUY, 0.5, 70_100.0)
    accept(eng, "c1", CALL_LIN, Side.SELL, 2.0, 5_000.0)
    eng.order_event("A", "s1", Filled(0.5, 70_100.0, "f1"))  # - 0.5 x 70,100 = - 35,050
    eng.order_event("A", "c1", Filled(2.0, 5_000.0, "f2"))  # + 2 x 5,000 = + 10,000
    usd = 200_000.0 - 35_050.0 + 10_000.0
    view = check_account(
        eng,
        model,
        {SPOT: 0.5, CALL_LIN: -2.0},
        {},
        {},
        {"USD": usd},
        avg={SPOT: 70_100.0, CALL_LIN: 5_000.0},
    )
    spot = next(p for p in view.positions if p.symbol == SPOT)
    assert spot.value == approx(0.5 * 70_000.0)  # spot is worth the index


def test_inverse_future_fill_moves_coin_by_design_formula():
    eng = make_engine()
    add_account(eng, collateral={"USD": 100_000.0, "BTC": 1.0})
    accept(eng, "o1", PERP_INV, Side.BUY, 1.0, 69_000.0)
    eng.order_event("A", "o1", Filled(1.0, 69_000.0, "f1"))
    # Q x (1 - 1 / (1 + s)) with 1 + s = m / p: 1 x (1 - 69,000 / 70,007) = 0.0143843 BTC
    expected = 1.0 + (1.0 - 69_000.0 / MARK_PERP)
    assert eng.account_view("A").collateral["BTC"] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- cancels, expiry


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_cancel_releases_reservation(model):
    eng = make_engine(model)
    add_account(eng, collateral={"USD": 300_000.0})
    eng.set_positions("A", [(CALL_LIN, -1.0, None)])
    accept(eng, "keep", PERP_LIN, Side.SELL, 1.0)
    before = eng.account_view("A")
    im_before = before.pools[0].initial_margin
    d = accept(eng, "o1", PERP_LIN, Side.SELL, 2.0)
    assert d.initial_margin_before == approx(im_before)
    assert d.initial_margin_after > im_before
    ack = eng.order_event("A", "o1", Cancelled())
    assert (ack.order_status, ack.working_quantity, ack.duplicate) == (
        OrderStatus.CANCELLED,
        0.0,
        False,
    )
    view = check_account(eng, model, {CALL_LIN: -1.0}, {}, {PERP_LIN: 1.0}, {"USD": 300_000.0})
    assert view.pools[0].initial_margin == approx(im_before)
    assert [o.client_order_id for o in view.working_orders] == ["keep"]
    assert eng.whatif(order("x", PERP_LIN, Side.SELL, 1.0)).initial_margin_before == approx(
        im_before
    )
    # a partly filled order cancelled releases only what was still working
    accept(eng, "o2", PERP_LIN, Side.BUY, 2.0, 70_007.0)
    eng.order_event("A", "o2", Filled(0.5, 70_007.0, "f1"))
    eng.order_event("A", "o2", Cancelled())
    check_account(
        eng, model, {CALL_LIN: -1.0, PERP_LIN: 0.5}, {}, {PERP_LIN: 1.0}, {"USD": 300_000.0}
    )


def test_unacknowledged_reservation_expires_after_ttl():
    clock = FakeClock()
    ttl = 5_000_000_000
    eng = make_engine(clock=clock, reservation_ttl_ns=ttl)
    add_account(eng)
    t0 = clock.now
    accept(eng, "never", PERP_LIN, Side.BUY, 2.0)
    accept(eng, "acked", PERP_LIN, Side.BUY, 1.0)
    eng.order_event("A", "acked", Acknowledged("V-2"))
    clock.now = t0 + 1_000_000_000
    accept(eng, "later", PERP_LIN, Side.SELL, 1.0)  # expires one second after the others
    check_account(eng, "deribit", {}, {PERP_LIN: 3.0}, {PERP_LIN: 1.0}, {"USD": 100_000.0})

    clock.now = t0 + ttl - 1
    assert eng.expire_reservations() == 0
    clock.now = t0 + ttl
    assert eng.expire_reservations() == 1
    view = check_account(eng, "deribit", {}, {PERP_LIN: 1.0}, {PERP_LIN: 1.0}, {"USD": 100_000.0})
    assert sorted(o.client_order_id for o in view.working_orders) == ["acked", "later"]
    assert eng.expire_reservations() == 0  # nothing twice
    # an explicit time works as well
    assert eng.expire_reservations(now_ns=t0 + ttl + 1_000_000_000) == 1
    view = check_account(eng, "deribit", {}, {PERP_LIN: 1.0}, {}, {"USD": 100_000.0})
    assert [o.client_order_id for o in view.working_orders] == ["acked"]
    # the expired order has ended: late events are refused, the state stays
    state = state_of(eng)
    assert error_code(eng.order_event, "A", "never", Acknowledged("V-1")) == "FAILED_PRECONDITION"
    assert error_code(eng.order_event, "A", "never", Filled(1.0, 70_000.0, "f")) == (
        "FAILED_PRECONDITION"
    )
    assert state_of(eng) == state
    # the acknowledged one never expires
    clock.now = t0 + 100 * ttl
    assert eng.expire_reservations() == 0
    assert eng.order_event("A", "acked", Filled(1.0, 70_007.0, "f1")).order_status == (
        OrderStatus.FILLED
    )


# --------------------------------------------------------------------------- amend, reject


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_amend_changes_reservation(side):
    eng = make_engine()
    add_account(eng, collateral={"USD": 500_000.0})
    accept(eng, "o1", PERP_LIN, side, 2.0, 70_000.0)

    def expect(q):
        w = {PERP_LIN: q} if q else {}
        b, s = (w, {}) if side == Side.BUY else ({}, w)
        return b, s

    check_account(eng, "deribit", {}, *expect(2.0), {"USD": 500_000.0})
    ack = eng.order_event("A", "o1", Amended(new_quantity=3.0))
    assert ack.working_quantity == 3.0 and ack.order_status == OrderStatus.PENDING_ACK
    check_account(eng, "deribit", {}, *expect(3.0), {"USD": 500_000.0})
    eng.order_event("A", "o1", Amended(new_quantity=1.0, new_price=69_000.0))
    view = check_account(eng, "deribit", {}, *expect(1.0), {"USD": 500_000.0})
    assert view.working_orders[0].price == 69_000.0
    assert view.working_orders[0].quantity == 1.0
    # partly filled, then amended below what is filled: refused, nothing changes
    eng.order_event("A", "o1", Filled(0.5, 70_007.0, "f1"))
    pos = {PERP_LIN: 0.5 * side.sign}
    check_account(eng, "deribit", pos, *expect(0.5), {"USD": 500_000.0})
    state = state_of(eng)
    assert error_code(eng.order_event, "A", "o1", Amended(new_quantity=0.4)) in STATE_CODES
    assert state_of(eng) == state
    for bad in (
        Amended(new_quantity=math.nan),
        Amended(new_quantity=-1.0),
        Amended(new_price=math.inf),
        Amended(new_quantity=2.0, new_price=-3.0),
    ):
        assert error_code(eng.order_event, "A", "o1", bad) == "INVALID_ARGUMENT", bad
        assert state_of(eng) == state
    # amended down to what is filled: the order is done
    ack = eng.order_event("A", "o1", Amended(new_quantity=0.5))
    assert ack.order_status == OrderStatus.FILLED and ack.working_quantity == 0.0
    check_account(eng, "deribit", pos, {}, {}, {"USD": 500_000.0})


def test_venue_reject_releases_and_ends_the_order():
    eng = make_engine()
    add_account(eng)
    accept(eng, "o1", PERP_LIN, Side.BUY, 2.0)
    ack = eng.order_event("A", "o1", VenueRejected("post-only would cross"))
    assert (ack.order_status, ack.working_quantity, ack.duplicate) == (
        OrderStatus.VENUE_REJECTED,
        0.0,
        False,
    )
    check_account(eng, "deribit", {}, {}, {}, {"USD": 100_000.0})
    state = state_of(eng)
    again = eng.order_event("A", "o1", VenueRejected("post-only would cross"))
    assert again.duplicate and again.order_status == OrderStatus.VENUE_REJECTED
    for ev in (
        Filled(1.0, 70_000.0, "f"),
        Cancelled(),
        Acknowledged(),
        Expired(),
        Amended(new_quantity=3.0),
    ):
        assert error_code(eng.order_event, "A", "o1", ev) == "FAILED_PRECONDITION", ev
    assert state_of(eng) == state


def test_events_for_unknown_orders():
    eng = make_engine()
    add_account(eng, collateral={"USD": 1_000.0})
    d = eng.check_order(order("rejected", qty=5.0))  # never accepted: no order
    assert d.reason == Reason.INSUFFICIENT_MARGIN
    accept(eng, "small", PERP_LIN, Side.BUY, 0.01)
    state = state_of(eng)
    for args, code in (
        (("A", "nope", Acknowledged()), "NOT_FOUND"),
        (("A", "rejected", Filled(1.0, 70_000.0, "f")), "NOT_FOUND"),
        (("A", "nope", Cancelled()), "NOT_FOUND"),
        (("NOPE", "small", Cancelled()), "NOT_FOUND"),
        (("", "small", Cancelled()), "INVALID_ARGUMENT"),
        (("A", "", Cancelled()), "INVALID_ARGUMENT"),
    ):
        assert error_code(eng.order_event, *args) == code, args
        assert state_of(eng) == state


def test_bad_fills_change_nothing():
    eng = make_engine()
    add_account(eng)
    accept(eng, "o1", PERP_LIN, Side.BUY, 2.0)
    eng.order_event("A", "o1", Filled(0.5, 70_000.0, "f1"))
    state = state_of(eng)
    # larger than what is still working (1.5): refused. The code depends on the state, not
    # on the message alone, so FAILED_PRECONDITION is as right as INVALID_ARGUMENT.
    for ev in (Filled(1.6, 70_000.0, "f2"), Filled(100.0, 70_000.0, "f3")):
        assert error_code(eng.order_event, "A", "o1", ev) in STATE_CODES, ev
        assert state_of(eng) == state, ev
    for ev in (
        Filled(0.0, 70_000.0, "f4"),
        Filled(-1.0, 70_000.0, "f5"),
        Filled(math.nan, 70_000.0, "f6"),
        Filled(1.0, math.nan, "f7"),
        Filled(1.0, 0.0, "f8"),
        Filled(1.0, -70_000.0, "f9"),
    ):
        assert error_code(eng.order_event, "A", "o1", ev) == "INVALID_ARGUMENT", ev
        assert state_of(eng) == state, ev
    # the rejected fill ids were not remembered: f2 can still arrive with a valid size
    ack = eng.order_event("A", "o1", Filled(1.5, 70_000.0, "f2"))
    assert ack.order_status == OrderStatus.FILLED and not ack.duplicate


def test_duplicate_fill_id_is_idempotent():
    eng = make_engine()
    add_account(eng)
    accept(eng, "o1", PERP_LIN, Side.BUY, 2.0, 69_000.0)
    eng.order_event("A", "o1", Filled(0.5, 69_000.0, "f1"))
    usd = 100_000.0 + 0.5 * (MARK_PERP - 69_000.0)
    state = state_of(eng)
    again = eng.order_event("A", "o1", Filled(0.5, 69_000.0, "f1"))
    assert again.duplicate
    assert (again.filled_quantity, again.working_quantity) == (0.5, 1.5)
    assert state_of(eng) == state
    check_account(eng, "deribit", {PERP_LIN: 0.5}, {PERP_LIN: 1.5}, {}, {"USD": usd})
    eng.order_event("A", "o1", Filled(1.5, 69_000.0, "f2"))
    usd += 1.5 * (MARK_PERP - 69_000.0)
    state = state_of(eng)
    # the same terminal fill repeated after the order ended: a duplicate ack, no change
    for fid in ("f2", "f1"):
        ack = eng.order_event("A", "o1", Filled(1.5, 69_000.0, fid))
        assert ack.duplicate and ack.order_status == OrderStatus.FILLED
    assert state_of(eng) == state
    check_account(eng, "deribit", {PERP_LIN: 2.0}, {}, {}, {"USD": usd})
    # a new fill on a filled order is refused
    assert error_code(eng.order_event, "A", "o1", Filled(0.1, 69_000.0, "f3")) == (
        "FAILED_PRECONDITION"
    )


@pytest.mark.parametrize(
    ("end", "status"),
    [(Cancelled(), OrderStatus.CANCELLED), (Expired(), OrderStatus.EXPIRED)],
)
def test_events_after_the_order_ended(end, status):
    eng = make_engine()
    add_account(eng)
    accept(eng, "o1", PERP_LIN, Side.BUY, 1.0)
    eng.order_event("A", "o1", Acknowledged())
    assert eng.order_event("A", "o1", end).order_status == status
    state = state_of(eng)
    again = eng.order_event("A", "o1", end)
    assert again.duplicate and again.order_status == status
    others = [
        Filled(1.0, 70_000.0, "f"),
        Acknowledged(),
        Amended(new_quantity=2.0),
        VenueRejected("x"),
        Expired() if status == OrderStatus.CANCELLED else Cancelled(),
    ]
    for ev in others:
        assert error_code(eng.order_event, "A", "o1", ev) == "FAILED_PRECONDITION", ev
    assert state_of(eng) == state


# --------------------------------------------------------------------------- market updates

HOLD = {PERP_LIN: 2.0, PERP_INV: -1.5, CALL_INV: -2.0, PUT_LIN: 1.0, ETH_PERP_LIN: 3.0}
HOLD_COLL = {"USD": 500_000.0, "BTC": 5.0, "ETH": 20.0}


def held_book(model: str, pool_mode: PoolMode):
    """An engine with account A holding HOLD on HOLD_COLL, working a buy of 1 CALL_INV and a
    sell of 5 ETH_PERP_LIN."""
    eng = make_engine(model)
    add_account(eng, collateral=HOLD_COLL, pool_mode=pool_mode)
    eng.set_positions("A", [(s, q, None) for s, q in HOLD.items()])
    accept(eng, "w1", CALL_INV, Side.BUY, 1.0, 0.05)
    accept(eng, "w2", ETH_PERP_LIN, Side.SELL, 5.0, 3_500.0)
    return eng


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_market_update_remargins_and_settles_futures(model, pool_mode):
    seg = pool_mode == PoolMode.SEGREGATED
    eng = held_book(model, pool_mode)
    check_account(eng, model, HOLD, {CALL_INV: 1.0}, {ETH_PERP_LIN: 5.0}, HOLD_COLL, seg)

    index = {"BTC": 72_000.0, "ETH": 3_400.0}
    marks = {PERP_LIN: 72_010.0, PERP_INV: 72_005.0, ETH_PERP_LIN: 3_401.0}
    ivs = {CALL_INV: 0.55}
    res = eng.update_market(
        full_snapshot=False,
        valuation_time=VT + timedelta(minutes=5),
        index_usd=index,
        marks_usd=marks,
        ivs=ivs,
    )
    assert res.market_version == 2 and res.accounts_remargined == 1
    new_snap = SNAP.with_updates(
        valuation_time=VT + timedelta(minutes=5), index_usd=index, marks_usd=marks, ivs=ivs
    )
    # linear: q (m1 - m0) USD = 2 x 2,003 + 3 x (3,401 - 3,500.35) = 4,006 - 298.05
    # inverse: reconciled at the mark, short 1.5 x 70,007 = 105,010.5 USD of notional N; it
    # settles N (1/m0 - 1/m1) coin = -105,010.5 x (1/70,007 - 1/72,005)
    # = -1.5 x 1,998 / 72,005 = -2,997 / 72,005 = -0.0416221 BTC; it shows as N / 72,005 coin
    coll = {
        "USD": 500_000.0 + 2.0 * (72_010.0 - MARK_PERP) + 3.0 * (3_401.0 - MARK_ETH_PERP),
        "BTC": 5.0 - 1.5 * (1.0 - MARK_PERP / 72_005.0),
        "ETH": 20.0,
    }
    assert coll["USD"] == pytest.approx(503_707.95)
    assert coll["BTC"] == pytest.approx(5.0 - 2_997.0 / 72_005.0, rel=1e-15)
    held = {**HOLD, PERP_INV: -1.5 * MARK_PERP / 72_005.0}
    view = check_account(
        eng, model, held, {CALL_INV: 1.0}, {ETH_PERP_LIN: 5.0}, coll, seg, snap=new_snap
    )
    (inv,) = (p for p in view.positions if p.symbol == PERP_INV)
    assert inv.notional_usd == -105_010.5  # fixed: the mark moved, the notional did not
    assert view.market_version == 2
    d = eng.whatif(order("x", PERP_LIN, Side.BUY, 0.1))
    assert d.market_version == 2
    # a second update settles only the new move
    eng.update_market(
        full_snapshot=False,
        valuation_time=None,
        index_usd={},
        marks_usd={PERP_LIN: 71_000.0},
        ivs={},
    )
    snap3 = new_snap.with_updates(marks_usd={PERP_LIN: 71_000.0})
    coll["USD"] += 2.0 * (71_000.0 - 72_010.0)
    check_account(eng, model, held, {CALL_INV: 1.0}, {ETH_PERP_LIN: 5.0}, coll, seg, snap=snap3)


def test_update_that_cannot_price_a_held_instrument_is_refused():
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(CALL_INV, -1.0, None), (DAILY_CALL, 1.0, None)])
    accept(eng, "w", CALL_LIN, Side.BUY, 1.0, 5_000.0)  # worked, not held
    state = state_of(eng)

    def full(ivs, vt=VT):
        return eng.update_market(
            full_snapshot=True,
            valuation_time=vt,
            index_usd=SNAP.index_usd,
            marks_usd=SNAP.marks_usd,
            ivs=ivs,
        )

    for dropped in (CALL_INV, DAILY_CALL, CALL_LIN):
        ivs = {s: v for s, v in SNAP.ivs.items() if s != dropped}
        assert error_code(full, ivs) == "FAILED_PRECONDITION", dropped
        assert eng.market.version == 1
        assert state_of(eng) == state
    # time moving past the daily's expiry (22NOV26 08:00) expires a held option
    for call in (
        lambda: full(SNAP.ivs, VT + timedelta(days=1, minutes=1)),
        lambda: eng.update_market(
            full_snapshot=False,
            valuation_time=VT + timedelta(days=2),
            index_usd={},
            marks_usd={},
            ivs={},
        ),
    ):
        assert error_code(call) == "FAILED_PRECONDITION"
        assert eng.market.version == 1
        assert state_of(eng) == state
    # once the worked order is gone and the position reconciled away, the update goes in
    eng.order_event("A", "w", Cancelled())
    eng.set_positions("A", [(CALL_INV, -1.0, None)])
    ivs = {s: v for s, v in SNAP.ivs.items() if s not in (DAILY_CALL, CALL_LIN)}
    assert full(ivs).market_version == 2


# --------------------------------------------------------------------------- status stream


def _status_ref(model, index, cash):
    """(status, equity, IM, MM) of short 1 BTC_USDC-PERPETUAL with ``cash`` USD, mark = index."""
    snap = SNAP.with_updates(index_usd={"BTC": index}, marks_usd={PERP_LIN: index})
    p = _fr(model, snap, {PERP_LIN: -1.0}, {"USD": cash}, False)["USD"]
    eq, im, mm = p.equity, p.initial_margin, p.maintenance_margin
    status = (
        MarginStatus.LIQUIDATION
        if eq < mm
        else MarginStatus.MARGIN_CALL
        if eq < im
        else MarginStatus.OK
    )
    return status, eq, im, mm


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_margin_status_stream_follows_market_moves(model):
    eng = make_engine(model)
    cash0 = 15_000.0
    add_account(eng, collateral={"USD": cash0})
    eng.set_positions("A", [(PERP_LIN, -1.0, None)])
    add_account(eng, "QUIET", collateral={"USD": 1_000_000.0})
    eng.set_positions("QUIET", [(PERP_LIN, 0.1, None)])
    assert eng.account_view("A").margin_status == MarginStatus.OK
    sub = eng.subscribe()
    version = eng.market.version
    prev = MarginStatus.OK
    # short 1: the cash moves by -(m1 - m0) on each update (mark = index in the updates);
    # the first prices (250 USD steps) where the reference says margin call / liquidation
    first: dict[MarginStatus, float] = {}
    for px in range(70_000, 120_000, 250):
        st = _status_ref(model, float(px), cash0 - (px - MARK_PERP))[0]
        first.setdefault(st, float(px))
    mc, liq = first[MarginStatus.MARGIN_CALL], first[MarginStatus.LIQUIDATION]
    assert 70_000.0 < mc < liq
    seq = [
        (mc, MarginStatus.MARGIN_CALL),
        (mc, MarginStatus.MARGIN_CALL),  # no change: no event
        (liq, MarginStatus.LIQUIDATION),
        (mc, MarginStatus.MARGIN_CALL),
        (70_000.0, MarginStatus.OK),
        (liq + 1_000.0, MarginStatus.LIQUIDATION),  # straight from OK
        (69_000.0, MarginStatus.OK),
    ]
    for px, expected in seq:
        cash = cash0 - (px - MARK_PERP)
        status, eq, im, mm = _status_ref(model, px, cash)
        assert status == expected, (px, status)  # the scenario is what it claims to be
        eng.update_market(
            full_snapshot=False,
            valuation_time=None,
            index_usd={"BTC": px},
            marks_usd={PERP_LIN: px},
            ivs={},
        )
        version += 1
        view = eng.account_view("A")
        assert view.margin_status == expected
        assert view.collateral["USD"] == pytest.approx(cash, rel=1e-12)
        events = []
        while True:
            try:
                events.append(sub.get_nowait())
            except queue.Empty:
                break
        if expected == prev:
            assert events == [], px
            continue
        (ev,) = events
        assert ev.account_id == "A"
        assert (ev.previous_status, ev.status) == (prev, expected)
        assert ev.pool_currency == "USD"
        assert ev.equity == approx(eq)
        assert ev.initial_margin == approx(im)
        assert ev.maintenance_margin == approx(mm)
        assert ev.market_version == version
        prev = expected
    eng.unsubscribe(sub)
    eng.update_market(
        full_snapshot=False,
        valuation_time=None,
        index_usd={"BTC": 80_000.0},
        marks_usd={PERP_LIN: 80_000.0},
        ivs={},
    )
    assert sub.empty()


def test_status_events_from_a_fill():
    eng = make_engine()
    add_account(eng, collateral={"USD": 15_000.0})
    sub = eng.subscribe()
    accept(eng, "o1", PERP_LIN, Side.SELL, 1.0, 69_000.0)
    assert sub.empty()  # a working order does not change the status (positions only)
    # filled at 69,000 against a mark of 70,007: cash - 1,007, equity 13,993 > IM of 1 unit
    eng.order_event("A", "o1", Filled(1.0, 69_000.0, "f1"))
    cash = 15_000.0 - 1_007.0
    p1 = _fr("deribit", SNAP, {PERP_LIN: -1.0}, {"USD": cash}, False)["USD"]
    assert p1.equity > p1.initial_margin
    assert eng.account_view("A").margin_status == MarginStatus.OK
    assert sub.empty()
    # a reconciliation to a bigger short puts the account under water: one event
    eng.set_positions("A", [(PERP_LIN, -1.2, None)])
    p2 = _fr("deribit", SNAP, {PERP_LIN: -1.2}, {"USD": cash}, False)["USD"]
    assert p2.maintenance_margin < p2.equity < p2.initial_margin
    ev = sub.get_nowait()
    assert (ev.previous_status, ev.status) == (MarginStatus.OK, MarginStatus.MARGIN_CALL)
    assert ev.equity == approx(p2.equity)
    assert ev.initial_margin == approx(p2.initial_margin)
    assert sub.empty()


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_update_caches_the_margins_a_fresh_computation_gives(model, pool_mode):
    # a market update rebuilds and margins each pool's three states in one kernel call; the
    # figures it caches are those the separate state kernels give on the rebuilt states
    eng = held_book(model, pool_mode)
    eng.update_market(
        full_snapshot=False,
        valuation_time=None,
        index_usd={"BTC": 71_000.0},
        marks_usd={PERP_LIN: 71_010.0},
        ivs={},
    )
    acc = eng.accounts["A"]
    assert acc.pools
    for pool in acc.pools.values():
        assert pool.table is eng.market.tables[pool.currency]
        cached = (pool.im_B, pool.mm_B, pool.scen_B, pool.im_S, pool.mm_S, pool.scen_S)
        acc.refresh_margin(pool)  # recomputed with the state kernels
        assert (pool.im_B, pool.mm_B, pool.scen_B, pool.im_S, pool.mm_S, pool.scen_S) == cached
        assert pool.P.table is pool.B.table is pool.S.table is pool.table


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_update_that_adds_a_coin_remargins_every_pool(model, pool_mode):
    # a new index changes the pools' coin rows (SOL sorts after BTC/ETH, AAA before them):
    # the states are rebuilt in the new shape and the margins still equal full revaluation
    seg = pool_mode == PoolMode.SEGREGATED
    eng = held_book(model, pool_mode)
    before = eng.account_view("A")
    snap = SNAP
    for coin, index in (("SOL", 150.0), ("AAA", 2.0)):
        eng.update_market(
            full_snapshot=False, valuation_time=None, index_usd={coin: index}, marks_usd={},
            ivs={},
        )  # fmt: skip
        snap = snap.with_updates(index_usd={coin: index})
        view = check_account(
            eng, model, HOLD, {CALL_INV: 1.0}, {ETH_PERP_LIN: 5.0}, HOLD_COLL, seg, snap=snap
        )
        # nothing is held in the new coin: the figures are those before it was listed
        assert view.initial_margin_usd == approx(before.initial_margin_usd)
        assert view.margin_status == before.margin_status
        d = eng.whatif(order("x", PERP_LIN, Side.BUY, 0.1))
        usd = next(p for p in before.pools if p.currency == "USD")
        assert d.accepted and d.initial_margin_before == approx(usd.initial_margin)
