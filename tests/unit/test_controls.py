"""Pre-trade controls (riskgate/engine/controls): velocity windows, credit, loss limits and
the automatic kill switch, account groups, per-class limits, the message throttle.

References: a naive window (every add kept in a list, counted by its bucket), credit usage
recomputed from the account view's positions and working orders, hand-worked limits (the
arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.engine.controls.model import BUCKETS, ControlLimits, RateWindow
from riskgate.engine.engine import RiskEngine
from riskgate.engine.types import (
    Cancelled,
    EngineError,
    Filled,
    Limits,
    OrderRequest,
    Reason,
    Side,
)
from tests.reference.engine_market import SNAP, make_engine

PERP = "BTC_USDC-PERPETUAL"  # linear: one unit is 1 BTC, 70,007 USD at the mark
MARK = 70_007.0
CALL = "BTC_USDC-25DEC26-70500-C"  # linear option on BTC (index 70,000)
SEC = 10**9
DAY = 86_400 * SEC
T0 = 20_000 * DAY + 1_000 * SEC  # in 2024; a bucket boundary for every window used here


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def engine(clock: Clock | None = None, sink=None, **config) -> tuple[RiskEngine, Clock]:
    clock = clock or Clock()
    return make_engine(clock=clock, sink=sink, **config), clock


def account(eng: RiskEngine, aid: str = "A", usd: float = 10e6, **controls) -> None:
    lim = Limits(controls=ControlLimits(**controls)) if controls else None
    eng.upsert_account(aid, collateral={"USD": usd}, limits=lim)


def buy(cid: str, qty: float = 1.0, aid: str = "A", side=Side.BUY, sym: str = PERP, price=None):
    return OrderRequest(aid, cid, sym, side, qty, MARK if price is None else price)


def drain(q) -> list:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def usage(eng: RiskEngine, aid: str, scope: str = "account") -> dict[str, float]:
    view = eng.account_view(aid).controls
    return {u.limit: u.used for u in view.usage if u.scope == scope}


# ------------------------------------------------------------------ the window itself


class NaiveWindow:
    """Every add kept; usage counts the adds whose bucket is among the last BUCKETS."""

    def __init__(self, window_ns: int) -> None:
        self.w = window_ns // BUCKETS
        self.adds: list[tuple[int, int]] = []  # (bucket, amount)
        self.last = -1

    def add(self, t: int, amount: int) -> None:
        self.last = max(self.last, t // self.w)
        self.adds.append((self.last, amount))

    def usage(self, t: int) -> tuple[int, int]:
        k = max(self.last, t // self.w)
        live = [a for b, a in self.adds if k - BUCKETS < b <= k]
        return len(live), sum(live)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.integers(-300, 2_500), st.integers(0, 10**9)), max_size=80
    )
)
def test_ring_window_matches_the_naive_window(steps: list[tuple[bool, int, int]]) -> None:
    window = 1_000  # ns: buckets of 100
    ring, naive = RateWindow(window), NaiveWindow(window)
    t = 10_000
    for is_add, dt, amount in steps:
        t = max(0, t + dt)  # times mostly move on, sometimes step back
        if is_add:
            ring.add(t, amount)
            naive.add(t, amount)
        assert ring.usage(t) == naive.usage(t)
        assert ring.usage(t + window) == (0, 0) or ring.usage(t + window) == naive.usage(t + window)


def test_window_boundaries_exactly() -> None:
    w = RateWindow(SEC)  # buckets of 100 ms
    w.add(T0, 5)
    w.add(T0 + 99_999_999, 7)  # same bucket
    assert w.usage(T0 + SEC - 1) == (2, 12)  # bucket 9 after: both still in the window
    assert w.usage(T0 + SEC) == (0, 0)  # one whole window on: their bucket has left
    w.add(T0 + 150_000_000, 1)  # the next bucket
    assert w.usage(T0 + SEC) == (1, 1)
    assert w.usage(T0 + SEC + 100_000_000) == (0, 0)


# ------------------------------------------------------------------ velocity


def test_order_rate_at_the_limit_passes_above_rejects_and_the_window_slides() -> None:
    eng, clock = engine()
    account(eng, max_orders=3, orders_window_ns=SEC)
    assert [eng.check_order(buy(f"o{i}", 0.01)).accepted for i in range(3)] == [True] * 3
    d = eng.check_order(buy("o3", 0.01))
    assert (d.accepted, d.reason) == (False, Reason.VELOCITY_LIMIT)
    assert (d.context_limit, d.context_actual, d.context_unit) == (3.0, 4.0, "orders/1s")
    clock.now = T0 + SEC - 1  # still inside the window of the first three
    assert eng.check_order(buy("o4", 0.01)).reason is Reason.VELOCITY_LIMIT
    clock.now = T0 + SEC  # one window on: the three have left it
    assert eng.check_order(buy("o5", 0.01)).accepted
    # rejected orders are not counted: two more fit in this window, a third does not
    assert [eng.check_order(buy(f"p{i}", 0.01)).accepted for i in range(3)] == [True, True, False]
    assert usage(eng, "A")["orders"] == 3


def test_notional_per_window_counts_usd_at_the_mark() -> None:
    eng, clock = engine()
    # two orders of 1 BTC at 70,007 = 140,014 USD: exactly at the limit passes
    account(eng, max_notional_usd=140_014.0, notional_window_ns=60 * SEC)
    assert eng.check_order(buy("a")).accepted and eng.check_order(buy("b")).accepted
    d = eng.check_order(buy("c", 0.001))
    assert d.reason is Reason.VELOCITY_LIMIT and d.context_unit == "USD/60s"
    assert d.context_actual == pytest.approx(140_014.0 + 70.007)
    clock.now += 60 * SEC
    assert eng.check_order(buy("d")).accepted


# ------------------------------------------------------------------ credit


def naive_credit(eng: RiskEngine, aid: str) -> tuple[float, float]:
    """(gross, net) USD from the account view: per instrument the worse of position plus
    every working buy and position minus every working sell."""
    view = eng.account_view(aid)
    market = eng.market
    per: dict[str, list[float]] = {}
    for p in view.positions:
        per.setdefault(p.symbol, [0.0, 0.0, 0.0])[0] += p.quantity
    for o in view.working_orders:
        per.setdefault(o.symbol, [0.0, 0.0, 0.0])[1 if o.side is Side.BUY else 2] += (
            o.working_quantity
        )
    gross = nb = ns = 0.0
    for sym, (q, wb, ws) in per.items():
        quote, inst = market.quotes[sym], market.instruments[sym]
        n = quote.notional_usd if inst.is_option else quote.mark * quote.usd_per_quote
        gross += max(abs(q + wb), abs(q - ws)) * n
        nb += (q + wb) * n
        ns += (q - ws) * n
    return gross, max(abs(nb), abs(ns))


def test_gross_credit_limit_and_reducing_orders_pass() -> None:
    eng, _ = engine()
    account(eng, max_gross_usd=2 * MARK)  # two BTC at the mark
    assert eng.check_order(buy("a")).accepted and eng.check_order(buy("b")).accepted
    d = eng.check_order(buy("c", 0.5))
    assert (d.reason, d.context_limit, d.context_unit) == (Reason.CREDIT_LIMIT, 2 * MARK, "USD")
    assert d.context_actual == pytest.approx(2.5 * MARK)
    # a sell against the working buys: max(|0 + 2|, |0 - 1|) = 2 BTC, usage unchanged
    assert eng.check_order(buy("s", 1.0, side=Side.SELL)).accepted
    assert naive_credit(eng, "A")[0] == pytest.approx(usage(eng, "A")["gross_notional"])
    # a fill moves working to position: the usage stays what it was
    eng.order_event("A", "a", Filled(1.0, MARK))
    eng.order_event("A", "s", Cancelled())
    g, _ = naive_credit(eng, "A")
    assert g == pytest.approx(2 * MARK) == pytest.approx(usage(eng, "A")["gross_notional"])


def test_net_credit_limit_lets_the_other_side_through() -> None:
    eng, _ = engine()
    account(eng, max_net_usd=1.5 * MARK)
    eng.set_positions("A", [(PERP, 1.0, MARK)])
    assert eng.check_order(buy("a", 0.5)).accepted  # net 1.5 BTC: at the limit
    assert eng.check_order(buy("b", 0.01)).reason is Reason.CREDIT_LIMIT
    # selling 3 takes the sell side to -2 BTC: worse than 1.5, rejected; 2.5 gives -1.5
    assert eng.check_order(buy("c", 3.0, side=Side.SELL)).reason is Reason.CREDIT_LIMIT
    assert eng.check_order(buy("d", 2.5, side=Side.SELL)).accepted
    _, net = naive_credit(eng, "A")
    assert net == pytest.approx(usage(eng, "A")["net_notional"]) == pytest.approx(1.5 * MARK)


@settings(max_examples=15, deadline=None)
@given(
    script=st.lists(
        st.tuples(
            st.sampled_from(["order", "fill", "cancel", "market"]),
            st.sampled_from([PERP, "BTC-PERPETUAL", CALL, "BTC_USDC", "ETH-PERPETUAL"]),
            st.sampled_from(list(Side)),
            st.sampled_from([0.1, 0.7, 2.0]),
            st.integers(0, 5),
        ),
        max_size=25,
    )
)
def test_credit_usage_equals_a_recount_from_the_view(script) -> None:
    eng, _ = engine()
    account(eng, max_gross_usd=1e12, max_net_usd=1e12)
    for k, (what, sym, side, q, j) in enumerate(script):
        if what == "order":
            px = eng.market.quotes[sym].mark
            eng.check_order(OrderRequest("A", f"o{k}", sym, side, q, px))
        elif what in ("fill", "cancel"):
            work = [o for o in eng.accounts["A"].orders.values() if o.status.is_working]
            if work:
                o = work[j % len(work)]
                body = Filled(min(q, o.working), o.price) if what == "fill" else Cancelled()
                eng.order_event("A", o.request.client_order_id, body)
        else:
            move = 1 + 0.01 * (j - 2)
            eng.update_market(
                full_snapshot=False, valuation_time=None,
                index_usd={"BTC": SNAP.index_usd["BTC"] * move},
                marks_usd={PERP: SNAP.marks_usd[PERP] * move}, ivs={},
            )  # fmt: skip
    g, n = naive_credit(eng, "A")
    u = usage(eng, "A")
    assert u["gross_notional"] == pytest.approx(g, rel=1e-9, abs=1e-5)
    assert u["net_notional"] == pytest.approx(n, rel=1e-9, abs=1e-5)


def test_credit_warning_alerts_once_per_crossing() -> None:
    eng, _ = engine()
    account(eng, max_gross_usd=4 * MARK, credit_warning_fraction=0.5)
    q = eng.subscribe()

    def alerts() -> list:
        return [e for e in drain(q) if e.alert]

    eng.check_order(buy("a"))  # 25 %
    assert alerts() == []
    eng.check_order(buy("b"))  # 50 %: crosses
    (ev,) = alerts()
    assert (ev.alert, ev.account_id, ev.limit_name) == ("CREDIT_WARNING", "A", "gross_notional")
    assert (ev.limit_value, ev.warning_fraction) == (4 * MARK, 0.5)
    assert ev.used == pytest.approx(2 * MARK)
    eng.check_order(buy("c"))  # 75 %: still above, no new alert
    assert alerts() == []
    eng.order_event("A", "b", Cancelled())
    eng.order_event("A", "c", Cancelled())  # 25 %: below again, re-armed
    assert alerts() == []
    eng.check_order(buy("d"))  # 50 % again: a second crossing
    assert len(alerts()) == 1


# ------------------------------------------------------------------ groups


def test_groups_sum_their_members_and_nest() -> None:
    eng, _ = engine()
    eng.upsert_group("firm", None, ControlLimits(max_gross_usd=3 * MARK))
    eng.upsert_group("desk", "firm", ControlLimits(max_orders=10))
    for aid in ("A", "B", "C"):
        account(eng, aid)
    eng.set_account_group("A", "desk")
    eng.set_account_group("B", "desk")
    eng.set_account_group("C", "firm")
    assert eng.check_order(buy("a", aid="A")).accepted
    assert eng.check_order(buy("b", aid="B")).accepted
    assert eng.check_order(buy("c", 0.5, aid="C")).accepted
    view = eng.group_view("firm")
    (gross,) = [u.used for u in view.usage if u.limit == "gross_notional"]
    parts = sum(naive_credit(eng, a)[0] for a in ("A", "B", "C"))
    assert gross == pytest.approx(parts) == pytest.approx(2.5 * MARK)
    assert view.accounts == ("C",) and view.child_groups == ("desk",)
    # the firm's limit binds a desk member: the enclosing group's reject names it
    d = eng.check_order(buy("a2", 0.6, aid="A"))
    assert (d.reason, d.context_field) == (Reason.GROUP_LIMIT, "group firm: gross_notional")
    assert eng.check_order(buy("a3", 0.5, aid="A")).accepted  # exactly 3 BTC
    # leaving the group takes the account's usage out of it
    eng.set_account_group("C", "")
    (gross,) = [u.used for u in eng.group_view("firm").usage if u.limit == "gross_notional"]
    assert gross == pytest.approx(2.5 * MARK)
    assert eng.account_view("A").controls.groups == ("desk", "firm")


def test_group_velocity_counts_every_member() -> None:
    eng, _ = engine()
    eng.upsert_group("desk", None, ControlLimits(max_orders=3, orders_window_ns=SEC))
    for aid in ("A", "B"):
        account(eng, aid)
        eng.set_account_group(aid, "desk")
    got = [eng.check_order(buy(f"o{i}", 0.01, aid="AB"[i % 2])) for i in range(4)]
    assert [d.accepted for d in got] == [True, True, True, False]
    assert got[3].reason is Reason.GROUP_LIMIT and got[3].context_unit == "orders/1s"


def test_group_admin_is_validated() -> None:
    eng, _ = engine()
    eng.upsert_group("firm", None, None)
    eng.upsert_group("desk", "firm", None)
    account(eng)
    with pytest.raises(EngineError, match="parent_id: unknown group"):
        eng.upsert_group("x", "nope", None)
    with pytest.raises(EngineError, match="a cycle"):
        eng.upsert_group("firm", "desk", None)
    eng.set_account_group("A", "desk")
    with pytest.raises(EngineError, match="has accounts or groups in it"):
        eng.upsert_group("desk", "", None)
    with pytest.raises(EngineError, match="must be finite and positive"):
        eng.upsert_group("firm", None, ControlLimits(max_gross_usd=math.nan))
    with pytest.raises(EngineError, match="unknown group"):
        eng.set_account_group("A", "nope")
    with pytest.raises(EngineError, match="unknown class"):
        account(eng, class_max_quantity={"bond": 1.0})


@settings(max_examples=30, deadline=None)
@given(
    gross=st.floats(0.5, 6.0),
    net=st.floats(0.5, 6.0),
    orders=st.lists(
        st.tuples(st.sampled_from(list(Side)), st.sampled_from([0.3, 1.0, 2.5])), max_size=8
    ),
)
def test_the_credit_shortcut_decides_as_the_exact_check(gross, net, orders) -> None:
    """Far from a limit the step skips the exact change; both must decide the same."""
    from riskgate.engine.controls import check as cc
    from riskgate.engine.decide import Reject

    eng, _ = engine()
    account(eng, max_gross_usd=gross * MARK, max_net_usd=net * MARK)
    acc, market = eng.accounts["A"], eng.market
    inst = market.instruments[PERP]
    for k, (side, q) in enumerate(orders):
        pos = acc.position("USD", PERP)
        is_buy = side is Side.BUY
        calls = (
            (cc.check, (acc, market, inst, q, q, is_buy, pos, MARK, False, 0)),
            (cc._credit_exact, (acc, acc.controls, PERP, q, is_buy, pos, MARK)),
        )
        outcomes = []
        for fn, args in calls:
            try:
                fn(*args)
                outcomes.append(None)
            except Reject as r:
                outcomes.append(r.reason)
        assert outcomes[0] == outcomes[1]
        eng.check_order(buy(f"o{k}", q, side=side))
