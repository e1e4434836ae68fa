"""Pre-trade controls, part two: loss limits and the automatic kill switch, the trading
day, class limits, the message throttle, and replay of all of them (helpers and the first
part in test_controls.py)."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.engine.book import Book
from riskgate.engine.controls.engine_path import SYSTEM_PRINCIPAL
from riskgate.engine.controls.model import ControlLimits
from riskgate.engine.engine import RiskEngine
from riskgate.engine.events import ACTOR, LossLimitTripped, TradingDayStarted
from riskgate.engine.journal import codec
from riskgate.engine.journal.recovery import replay
from riskgate.engine.types import (
    Cancelled,
    Filled,
    OrderRequest,
    OrderType,
    Reason,
    Side,
    TradingState,
)
from tests.reference.engine_market import MODELS, RULES, SNAP, MemorySink
from tests.unit.test_controls import (
    CALL,
    DAY,
    MARK,
    PERP,
    SEC,
    account,
    buy,
    drain,
    engine,
)

# ------------------------------------------------------------------ loss limits


def perp_move(eng: RiskEngine, fraction: float) -> None:
    """BTC and its perpetual's mark move by ``fraction`` from the shared snapshot."""
    eng.update_market(
        full_snapshot=False, valuation_time=None,
        index_usd={"BTC": SNAP.index_usd["BTC"] * (1 + fraction)},
        marks_usd={PERP: SNAP.marks_usd[PERP] * (1 + fraction)}, ivs={},
    )  # fmt: skip


def test_loss_limit_trips_on_a_market_move_committed_and_audited() -> None:
    sink = MemorySink()
    eng, _ = engine(sink=sink)
    account(eng, max_loss_usd=5_000.0)
    eng.set_positions("A", [(PERP, 10.0, MARK)])
    q = eng.subscribe()
    perp_move(eng, -0.005)  # 10 BTC x 350.035 = 3,500.35 USD lost: within the limit
    assert eng.accounts["A"].trading_state is TradingState.ACTIVE
    perp_move(eng, -0.01)  # 7,000.70 USD lost: past 5,000
    acc = eng.accounts["A"]
    assert acc.trading_state is TradingState.REDUCING
    assert acc.trading_state_reason.startswith("loss limit: account lost 7,000.7 USD")
    (trip,) = [s for s in sink.events if isinstance(s.event, LossLimitTripped)]
    assert trip.principal == SYSTEM_PRINCIPAL and trip.event.scope_id == "A"
    assert trip.event.pnl_usd == pytest.approx(-10 * SNAP.marks_usd[PERP] * 0.01)
    alerts = [e for e in drain(q) if e.alert]
    assert [(e.alert, e.limit_name) for e in alerts] == [("LOSS_LIMIT_TRIPPED", "daily_loss")]
    # reducing orders still pass; anything else is refused; cancels still pass
    assert eng.check_order(buy("s", 2.0, side=Side.SELL, price=69_300.0)).accepted
    assert eng.check_order(buy("b", 1.0)).reason is Reason.ACCOUNT_REDUCING_ONLY
    assert eng.order_event("A", "s", Cancelled()).order_status.name == "CANCELLED"
    # reactivated by hand while still past the limit: only reducing orders pass
    eng.set_trading_state("A", False, TradingState.ACTIVE, "checked")
    d = eng.check_order(buy("b2", 1.0))
    assert (d.reason, d.context_limit, d.context_unit) == (Reason.LOSS_LIMIT, -5_000.0, "USD")
    assert eng.check_order(buy("s2", 1.0, side=Side.SELL, price=69_300.0)).accepted
    # no second trip the same day
    perp_move(eng, -0.02)
    assert sum(isinstance(s.event, LossLimitTripped) for s in sink.events) == 1


def test_group_loss_limit_halts_every_member() -> None:
    eng, _ = engine()
    eng.upsert_group(
        "desk", None, ControlLimits(max_loss_usd=5_000.0, loss_action=TradingState.HALTED)
    )
    for aid in ("A", "B"):
        account(eng, aid)
        eng.set_account_group(aid, "desk")
        eng.set_positions(aid, [(PERP, 4.0, MARK)])
    perp_move(eng, -0.01)  # each loses 2,800.28: neither alone, the desk 5,600.56
    assert [eng.accounts[a].trading_state for a in "AB"] == [TradingState.HALTED] * 2
    assert eng.group_view("desk").loss_limit_tripped
    assert eng.check_order(buy("s", 1.0, side=Side.SELL, price=69_300.0)).reason is (
        Reason.ACCOUNT_HALTED
    )


def test_deposits_are_not_pnl_and_the_day_roll_rearms() -> None:
    eng, clock = engine(day_roll_offset_ns=0)
    account(eng, usd=100_000.0, max_loss_usd=1_000.0)
    eng.upsert_account("A", collateral={"USD": 50_000.0})  # a withdrawal of 50,000
    assert eng.account_view("A").controls.day_pnl_usd == pytest.approx(0.0)
    eng.set_positions("A", [(PERP, 1.0, MARK)])
    perp_move(eng, -0.02)  # 1,400.14 lost: trips
    assert eng.accounts["A"].controls.tripped
    # the market update started the first trading day (before it moved the market)
    assert eng.book.controls.day_start_ns == clock.now // DAY * DAY
    assert eng.roll_trading_day() is False  # the same day: nothing to do
    clock.now += DAY
    assert eng.roll_trading_day() is True
    st = eng.accounts["A"].controls
    assert not st.tripped and eng.account_view("A").controls.day_pnl_usd == pytest.approx(0.0)
    # the state a trip set is not undone by the roll: a person reactivates
    assert eng.accounts["A"].trading_state is TradingState.REDUCING
    assert eng.book.controls.day_start_ns == clock.now // DAY * DAY


def test_loss_and_credit_state_survive_a_restart() -> None:
    sink = MemorySink()
    eng, clock = engine(sink=sink)
    eng.upsert_group("desk", None, ControlLimits(max_gross_usd=50 * MARK, max_loss_usd=1e9))
    account(eng, max_orders=5, max_gross_usd=20 * MARK, max_loss_usd=3_000.0)
    eng.set_account_group("A", "desk")
    eng.set_positions("A", [(PERP, 5.0, MARK)])
    eng.check_order(buy("a", 2.0))
    perp_move(eng, -0.01)  # 3,500 lost: trips
    seq, snap = eng.snapshot()
    live = codec.state_hash(eng.book)
    restored = Book(MODELS["deribit"], RULES, eng.config, status_changes=deque())
    assert codec.decode_snapshot(snap, restored) == seq
    assert codec.state_hash(restored) == live
    twin = RiskEngine(MODELS["deribit"], RULES, eng.config, clock_ns=clock, wall_ns=clock)
    twin.restore(restored, seq)
    assert twin.account_view("A") == eng.account_view("A")
    assert twin.accounts["A"].controls.tripped and twin.group_view("desk") == eng.group_view("desk")
    # and from the journal alone
    rebuilt = Book(MODELS["deribit"], RULES, eng.config, status_changes=deque())
    replay(rebuilt, [codec.decode_event(codec.encode_event(s)) for s in sink.events])
    assert codec.state_hash(rebuilt) == live
    # the windows are durable too: the restored engine still counts the accepted order
    assert [u.used for u in twin.account_view("A").controls.usage if u.limit == "orders"] == [1.0]


def test_day_roll_is_a_system_event() -> None:
    sink = MemorySink()
    eng, clock = engine(sink=sink)
    account(eng, max_loss_usd=1.0)
    clock.now += DAY
    assert eng.roll_trading_day()
    (ev,) = [s for s in sink.events if isinstance(s.event, TradingDayStarted)]
    assert ev.principal == SYSTEM_PRINCIPAL


# ------------------------------------------------------------------ class limits


def test_class_quantity_and_option_band_against_the_underlying() -> None:
    eng, _ = engine()
    account(
        eng, class_max_quantity={"option": 5.0},
        class_price_band={"option": 0.01, "future": 0.02},
    )  # fmt: skip
    mark = eng.market.quotes[CALL].mark  # about 4,180 USD; 1 % of the underlying is 700 USD
    d = eng.check_order(buy("q", 6.0, sym=CALL, price=mark))
    assert (d.reason, d.context_field, d.context_limit) == (
        Reason.MAX_ORDER_QUANTITY, "quantity[option]", 5.0,
    )  # fmt: skip
    assert eng.check_order(buy("in", 1.0, sym=CALL, price=mark + 690.0)).accepted
    d = eng.check_order(buy("out", 1.0, sym=CALL, price=mark + 710.0))
    assert (d.reason, d.context_unit) == (Reason.PRICE_BAND, "fraction of underlying")
    assert d.context_actual == pytest.approx(710.0 / 70_000.0)
    # a future's band is a fraction of its own mark
    assert eng.check_order(buy("f1", 1.0, price=MARK * 1.019)).accepted
    assert eng.check_order(buy("f2", 1.0, price=MARK * 1.021)).reason is Reason.PRICE_BAND
    # spot has no class limits here
    assert eng.check_order(buy("s", 6.0, sym="BTC_USDC", price=80_000.0)).accepted


# ------------------------------------------------------------------ message throttle


def test_message_throttle_per_principal_is_not_remembered_and_not_durable() -> None:
    eng, clock = engine(throttle_max_orders=2, throttle_window_ns=SEC)
    account(eng)
    token = ACTOR.set("gw-1")
    try:
        assert eng.check_order(buy("a", 0.01)).accepted
        assert eng.check_order(buy("b", 0.01)).accepted
        d = eng.check_order(buy("c", 0.01))
        assert (d.reason, d.context_unit) == (Reason.MESSAGE_THROTTLE, "orders/1s")
        other = ACTOR.set("gw-2")  # another principal has its own budget
        assert eng.check_order(buy("x", 0.01)).accepted
        ACTOR.reset(other)
        clock.now += SEC
        # not kept for retries: the same client order id is decided afresh
        assert eng.check_order(buy("c", 0.01)).accepted
    finally:
        ACTOR.reset(token)
    # deliberately not durable: a restarted engine starts every principal afresh
    seq, snap = eng.snapshot()
    book = Book(MODELS["deribit"], RULES, eng.config, status_changes=deque())
    codec.decode_snapshot(snap, book)
    twin = RiskEngine(MODELS["deribit"], RULES, eng.config, clock_ns=clock, wall_ns=clock)
    twin.restore(book, seq)
    assert twin._throttle == {}


def test_no_controls_no_cost_path() -> None:
    eng, _ = engine()
    eng.upsert_account("A", collateral={"USD": 1e6})
    assert eng.accounts["A"].controls is None
    assert eng.check_order(buy("a")).accepted
    assert eng.account_view("A").controls is None
    d = eng.check_order(OrderRequest("A", "b", PERP, Side.BUY, 1.0, None, OrderType.MARKET))
    assert d.accepted


# ------------------------------------------------------------------ replay


@settings(max_examples=20, deadline=None)
@given(
    script=st.lists(
        st.one_of(
            st.tuples(st.just("order"), st.sampled_from("AB"), st.sampled_from(list(Side)),
                      st.sampled_from([0.5, 1.0, 3.0])),
            st.tuples(st.just("fill"), st.sampled_from("AB"), st.integers(0, 9)),
            st.tuples(st.just("market"), st.sampled_from([-0.03, -0.01, 0.01, 0.02])),
            st.tuples(st.just("join"), st.sampled_from("AB"), st.sampled_from(["", "desk"])),
            st.tuples(st.just("clock"), st.sampled_from([SEC // 10, SEC, DAY])),
            st.tuples(st.just("snapshot")),
        ),
        min_size=3, max_size=25,
    )
)  # fmt: skip
def test_controls_replay_and_restore_bit_for_bit(script) -> None:
    """Trips on market moves and fills, alerts, windows, group sums and day rolls: the
    journal alone, and a snapshot plus the journal after it, rebuild the same state."""
    sink = MemorySink()
    eng, clock = engine(sink=sink)
    eng.upsert_group(
        "desk",
        None,
        ControlLimits(
            max_loss_usd=3_000.0, max_gross_usd=12 * MARK, credit_warning_fraction=0.6, max_orders=4
        ),
    )
    for aid in "AB":
        account(eng, aid, usd=1e6, max_orders=3, max_notional_usd=5 * MARK, max_loss_usd=2_000.0,
                max_gross_usd=8 * MARK, credit_warning_fraction=0.5)  # fmt: skip
        eng.set_account_group(aid, "desk")
        eng.set_positions(aid, [(PERP, 2.0, MARK)])
    snaps = []
    for k, op in enumerate(script):
        if op[0] == "order":
            eng.check_order(buy(f"o{k}", op[3], aid=op[1], side=op[2]))
        elif op[0] == "fill":
            work = [o for o in eng.accounts[op[1]].orders.values() if o.status.is_working]
            if work:
                o = work[op[2] % len(work)]
                eng.order_event(op[1], o.request.client_order_id, Filled(o.working, o.price))
        elif op[0] == "market":
            perp_move(eng, op[1])
        elif op[0] == "join":
            eng.set_account_group(op[1], op[2])
        elif op[0] == "clock":
            clock.now += op[1]
            eng.roll_trading_day()
        else:
            snaps.append(eng.snapshot()[1])
    live = codec.state_hash(eng.book)
    decoded = [codec.decode_event(codec.encode_event(s)) for s in sink.events]
    book = Book(MODELS["deribit"], RULES, eng.config, status_changes=deque())
    replay(book, decoded)
    assert codec.state_hash(book) == live
    twin = RiskEngine(MODELS["deribit"], RULES, eng.config, clock_ns=clock, wall_ns=clock)
    twin.restore(book, eng.seq)
    for aid in "AB":
        assert twin.account_view(aid) == eng.account_view(aid)
    assert twin.group_view("desk") == eng.group_view("desk")
    for snap in snaps[-2:]:
        restored = Book(MODELS["deribit"], RULES, eng.config, status_changes=deque())
        after = codec.decode_snapshot(snap, restored)
        replay(restored, decoded, after_seq=after)
        assert codec.state_hash(restored) == live


def test_a_groups_alert_names_the_group_and_the_journal_shows_the_trip() -> None:
    from riskgate.journal_cmd import _account_of

    sink = MemorySink()
    eng, _ = engine(sink=sink)
    eng.upsert_group(
        "desk", None,
        ControlLimits(max_gross_usd=4 * MARK, credit_warning_fraction=0.5, max_loss_usd=1_000.0),
    )  # fmt: skip
    for aid in "AB":
        account(eng, aid)
        eng.set_account_group(aid, "desk")
    q = eng.subscribe()
    eng.check_order(buy("a", aid="A"))
    assert [e for e in drain(q) if e.alert] == []
    eng.check_order(buy("b", aid="B"))  # the desk at 50 %: its alert, no account's
    (ev,) = [e for e in drain(q) if e.alert]
    assert (ev.account_id, ev.group_id, ev.limit_name) == ("", "desk", "gross_notional")
    for aid in "AB":
        eng.order_event(aid, "ab"[aid == "B"], Filled(1.0, MARK))
    perp_move(eng, -0.01)  # 2 x 700 lost: the desk trips
    trips = [s for s in sink.events if isinstance(s.event, LossLimitTripped)]
    assert [(t.event.group, t.event.scope_id) for t in trips] == [(True, "desk")]
    msg = codec.event_to_proto(trips[0])
    assert _account_of("loss_limit_tripped", msg.loss_limit_tripped) == "*"
    assert eng.account_view("B").controls.usage[-1].limit == "daily_loss"


def test_loss_limit_trips_on_a_market_move_with_nothing_to_settle() -> None:
    """Options settle no variation margin, and a move that leaves the margin status alone
    changes nothing the array book would bind for: the loss limit must still trip."""
    sink = MemorySink()
    eng, _ = engine(sink=sink)
    call, fut = "BTC_USDC-11DEC26-70000-C", "BTC_USDC-11DEC26"
    account(eng, max_loss_usd=1_000.0)
    eng.set_positions("A", [(call, 5.0, 3_000.0)])
    eng.roll_trading_day()
    base = eng.accounts["A"].controls.baseline_usd
    eng.update_market(
        full_snapshot=False, valuation_time=None,
        index_usd={"BTC": SNAP.index_usd["BTC"] * 0.97},
        marks_usd={fut: SNAP.marks_usd[fut] * 0.97}, ivs={},
    )  # fmt: skip
    acc = eng.accounts["A"]
    assert acc.status.name == "OK"  # nothing else would have bound it
    assert acc.controls.baseline_usd == base  # the same trading day
    assert acc.trading_state is TradingState.REDUCING
    trips = [s.event.scope_id for s in sink.events if isinstance(s.event, LossLimitTripped)]
    assert trips == ["A"]
