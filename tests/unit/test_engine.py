"""RiskEngine pre-trade decisions (docs/architecture.md §6: the decision flow and bad input).

References are independent of the engine's incremental path:
- ``full_revaluation`` (dense matrix product over the positions, rebuilt from scratch) of
  positions + every working buy and of positions - every working sell, the worse IM;
- ``riskgate.models.rules.per_leg_margin`` for rules-based accounts;
- hand-worked arithmetic for limits (the numbers are spelled out in the comments).

Every reject is checked to leave the account exactly as it was: the ``account_view``
before and after compare equal and a probe what-if gives identical numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import pytest

from riskgate.domain.instruments import parse_symbol
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.types import (
    Acknowledged,
    Cancelled,
    EngineError,
    Filled,
    Limits,
    MarginMethod,
    MarginStatus,
    OrderRequest,
    OrderType,
    PoolMode,
    Reason,
    Side,
    TradingState,
)
from riskgate.models.rules import per_leg_margin
from tests.reference.engine_market import MODEL_NAMES, MODELS, RULES, SNAP, VT, make_engine

# --------------------------------------------------------------------------- fixtures

BIG_BUDGET_NS = 10**10  # decisions never hit the latency budget unless a test wants them to

PERP_LIN = "BTC_USDC-PERPETUAL"
PERP_INV = "BTC-PERPETUAL"
CALL_INV = "BTC-25DEC26-70500-C"
CALL_INV_OTM = "BTC-25DEC26-82000-C"
CALL_LIN = "BTC_USDC-25DEC26-70500-C"
CALL_LIN_FAR = "BTC_USDC-31DEC27-412000-C"
PUT_LIN = "BTC_USDC-25DEC26-60500-P"
ETH_PUT_INV = "ETH-25DEC26-2375-P"
ETH_PERP_INV = "ETH-PERPETUAL"
ETH_PERP_LIN = "ETH_USDC-PERPETUAL"
SPOT = "BTC_USDC"
MARK_PERP = 70_007.0  # demo mark of both BTC perpetuals: round(70,000 * 1.0001, 2)

REL, ABS = 1e-9, 1e-7


def approx(x: float):
    return pytest.approx(x, rel=REL, abs=ABS)


class FakeClock:
    """A monotonic clock the test moves; ``step`` is added after every read."""

    def __init__(self, start: int = 1_000_000_000, step: int = 0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        t = self.now
        self.now += self.step
        return t


def add_account(
    eng: RiskEngine,
    account_id: str = "A",
    collateral: dict | None = None,
    pool_mode: PoolMode = PoolMode.CROSS,
    method: MarginMethod = MarginMethod.PORTFOLIO,
    limits: Limits | None = None,
):
    return eng.upsert_account(
        account_id,
        collateral={"USD": 100_000.0} if collateral is None else collateral,
        pool_mode=pool_mode,
        margin_method=method,
        limits=limits,
    )


def order(
    cid: str,
    symbol: str = PERP_LIN,
    side=Side.BUY,
    qty: float = 1.0,
    price=70_000.0,
    account: str = "A",
    **kw,
) -> OrderRequest:
    return OrderRequest(account, cid, symbol, side, qty, price, **kw)


def probe(eng: RiskEngine, account: str = "A", symbol: str = PERP_LIN, side=Side.BUY):
    """The numbers of a what-if; identical before and after a no-op."""
    d = eng.whatif(order("probe", symbol, side, 0.5, None, account, order_type=OrderType.MARKET))
    return (
        d.accepted,
        d.reason,
        d.initial_margin_before,
        d.initial_margin_after,
        d.maintenance_margin_before,
        d.maintenance_margin_after,
        d.equity_before,
        d.worst_scenario,
        d.market_version,
    )


def snapshot_state(eng: RiskEngine, account: str = "A"):
    return eng.account_view(account), probe(eng, account), probe(eng, account, side=Side.SELL)


# --------------------------------------------------------------------------- reference


def _combine(a: dict[str, float], b: dict[str, float], sign: float) -> dict[str, float]:
    out = dict(a)
    for s, q in b.items():
        out[s] = out.get(s, 0.0) + sign * q
    return {s: q for s, q in out.items() if q != 0.0}


def _fr(model: str, snap, holdings: dict[str, float], collateral: dict, segregated: bool):
    pos = {parse_symbol(s): q for s, q in holdings.items() if q != 0.0}
    return full_revaluation(MODELS[model], snap, pos, collateral, segregated)


@dataclass
class Ref:
    im: float  # with open orders: the worse of positions+buys and positions-sells
    mm: float
    equity: float  # of positions and collateral
    pos_im: float
    pos_mm: float
    worst_b: float
    worst_s: float
    im_b: float = 0.0
    im_s: float = 0.0


def ref_pool(
    model, ccy, positions, buys=None, sells=None, collateral=None, segregated=False, snap=SNAP
) -> Ref:
    collateral = collateral or {}
    plus = _combine(positions, buys or {}, 1.0)
    minus = _combine(positions, sells or {}, -1.0)
    pb = _fr(model, snap, plus, collateral, segregated).get(ccy)
    ps = _fr(model, snap, minus, collateral, segregated).get(ccy)
    pp = _fr(model, snap, positions, collateral, segregated).get(ccy)

    def g(p, attr):
        return 0.0 if p is None else getattr(p, attr)

    return Ref(
        max(g(pb, "initial_margin"), g(ps, "initial_margin")),
        max(g(pb, "maintenance_margin"), g(ps, "maintenance_margin")),
        g(pp, "equity"),
        g(pp, "initial_margin"),
        g(pp, "maintenance_margin"),
        g(pb, "worst_case"),
        g(ps, "worst_case"),
        g(pb, "initial_margin"),
        g(ps, "initial_margin"),
    )


def reserved(symbol: str, qty: float, price: float) -> float:
    """What a working order counts in the reference (full revaluation: an inverse future's
    coin at the mark): an inverse perpetual's order reserves its USD notional qty x price,
    qty x price / mark coin; any other order its quantity."""
    inst = parse_symbol(symbol)
    return qty * price / SNAP.future_mark(inst) if inst.sized_in_usd else qty


def pool_of(symbol: str, segregated: bool) -> str:
    inst = parse_symbol(symbol)
    return inst.underlying if segregated and inst.is_inverse else "USD"


def in_pool(holdings: dict[str, float], ccy: str, segregated: bool) -> list:
    return [(parse_symbol(s), q) for s, q in holdings.items() if pool_of(s, segregated) == ccy]


def rules_ref(ccy, positions, buys=None, sells=None, segregated=False) -> tuple[float, float]:
    """(IM, MM) of the per-leg standard with open orders: the worse side."""
    plus = _combine(positions, buys or {}, 1.0)
    minus = _combine(positions, sells or {}, -1.0)
    rb = per_leg_margin(in_pool(plus, ccy, segregated), SNAP, ccy, RULES)
    rs = per_leg_margin(in_pool(minus, ccy, segregated), SNAP, ccy, RULES)
    return (
        max(rb.initial_margin, rs.initial_margin),
        max(rb.maintenance_margin, rs.maintenance_margin),
    )


def unit_im(model: str, symbol: str = PERP_LIN) -> float:
    """IM of one unit long, alone, USD collateral only (no coin: IM is linear in size)."""
    return _fr(model, SNAP, {symbol: 1.0}, {"USD": 0.0}, False)["USD"].initial_margin


# --------------------------------------------------------------------------- margin numbers

POSITIONS = {
    CALL_INV: -3.0,
    PUT_LIN: 2.0,
    PERP_INV: 1.5,
    ETH_PUT_INV: -10.0,
    ETH_PERP_LIN: -4.0,
    SPOT: 0.5,
}
COLLATERAL = {"USD": 2_000_000.0, "BTC": 10.0, "ETH": 50.0}
# (client id, symbol, side, quantity, price) placed in this order on top of POSITIONS
ORDERS = [
    ("o1", CALL_INV_OTM, Side.BUY, 2.0, 0.01),
    ("o2", CALL_LIN, Side.SELL, 1.0, 5_000.0),
    ("o3", ETH_PERP_INV, Side.BUY, 3.0, 3_500.0),
    ("o4", PERP_INV, Side.SELL, 1.0, 70_000.0),
    ("o5", PERP_LIN, Side.BUY, 0.7, 70_000.0),
    ("o6", CALL_INV, Side.SELL, 0.4, 0.05),  # adds to the short call: sells side
    ("o7", ETH_PUT_INV, Side.BUY, 2.0, 0.02),  # reduces the short put
]


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_decision_margin_equals_full_revaluation_worse_of_buys_and_sells(model, pool_mode):
    seg = pool_mode == PoolMode.SEGREGATED
    eng = make_engine(model)
    add_account(eng, collateral=COLLATERAL, pool_mode=pool_mode)
    eng.set_positions("A", [(s, q, None) for s, q in POSITIONS.items()])
    buys: dict[str, float] = {}
    sells: dict[str, float] = {}
    for cid, sym, side, qty, px in ORDERS:
        ccy = pool_of(sym, seg)
        before = ref_pool(model, ccy, POSITIONS, buys, sells, COLLATERAL, seg)
        r = {sym: reserved(sym, qty, px)}
        nb = _combine(buys, r, 1.0) if side == Side.BUY else buys
        ns = _combine(sells, r, 1.0) if side == Side.SELL else sells
        after = ref_pool(model, ccy, POSITIONS, nb, ns, COLLATERAL, seg)
        d = eng.check_order(order(cid, sym, side, qty, px))
        assert d.accepted, (cid, d.reason, d.detail)
        assert d.pool_currency == ccy
        assert d.initial_margin_before == approx(before.im)
        assert d.initial_margin_after == approx(after.im)
        assert d.maintenance_margin_before == approx(before.mm)
        assert d.maintenance_margin_after == approx(after.mm)
        assert d.equity_before == approx(before.equity)
        assert d.equity_after == approx(before.equity)  # an order moves no cash
        assert d.worst_scenario is not None
        assert d.worst_scenario.pool_currency == ccy
        # the scenario named is the one setting IM after: the order's side unless the
        # other side's requirement is larger
        own, other = (after.im_b, after.im_s) if side == Side.BUY else (after.im_s, after.im_b)
        buy_binds = (side == Side.BUY) == (other <= own)
        assert d.worst_scenario.loss == approx(after.worst_b if buy_binds else after.worst_s)
        assert d.margin_method == MarginMethod.PORTFOLIO
        assert d.market_version == 1
        buys, sells = nb, ns
    # the account view carries the same figures for every pool
    view = eng.account_view("A")
    for pv in view.pools:
        ref = ref_pool(model, pv.currency, POSITIONS, buys, sells, COLLATERAL, seg)
        assert pv.initial_margin == approx(ref.im), pv.currency
        assert pv.maintenance_margin == approx(ref.mm), pv.currency
        assert pv.equity == approx(ref.equity), pv.currency
        assert pv.positions_initial_margin == approx(ref.pos_im), pv.currency
        assert pv.positions_maintenance_margin == approx(ref.pos_mm), pv.currency
    assert {p.currency for p in view.pools} == ({"USD", "BTC", "ETH"} if seg else {"USD"})


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_accepted_order_is_counted_in_next_decision_im_before(model):
    eng = make_engine(model)
    add_account(eng)
    c = unit_im(model)
    d1 = eng.check_order(order("o1"))
    assert d1.accepted and d1.initial_margin_before == 0.0
    assert d1.initial_margin_after == approx(c)
    d2 = eng.check_order(order("o2", qty=2.0))
    assert d2.accepted
    assert d2.initial_margin_before == approx(d1.initial_margin_after)
    assert d2.initial_margin_after == approx(3.0 * c)
    # a sell is margined against positions - sells, which is still below the buys side
    d3 = eng.check_order(order("o3", side=Side.SELL, qty=1.0))
    assert d3.accepted
    assert d3.initial_margin_before == approx(3.0 * c)
    assert d3.initial_margin_after == approx(3.0 * c)  # max(3c, c)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_risk_reducing_order_accepted_when_under_water(model):
    eng = make_engine(model)
    add_account(eng, collateral={"USD": 1_000.0})
    eng.set_positions("A", [(CALL_LIN, -5.0, None)])
    view = eng.account_view("A")
    ref = ref_pool(model, "USD", {CALL_LIN: -5.0}, collateral={"USD": 1_000.0})
    assert view.pools[0].equity == approx(ref.equity)
    assert ref.equity < ref.pos_im  # under water
    assert view.margin_status in (MarginStatus.MARGIN_CALL, MarginStatus.LIQUIDATION)
    # buying back part of the short call lowers the requirement: accepted although the
    # margin after is still above equity
    after = ref_pool(model, "USD", {CALL_LIN: -5.0}, {CALL_LIN: 1.0}, collateral={"USD": 1_000.0})
    d = eng.check_order(order("back", CALL_LIN, Side.BUY, 1.0, 5_000.0))
    assert d.accepted, d.reason
    assert d.risk_reducing
    assert d.initial_margin_after == approx(after.im)
    # the buys side drops below the positions' requirement; the worse side is then the
    # positions themselves (nothing working to sell), so the total does not grow
    bought = _fr(model, SNAP, {CALL_LIN: -4.0}, {"USD": 1_000.0}, False)["USD"]
    assert bought.initial_margin < ref.pos_im
    assert d.initial_margin_after == approx(max(bought.initial_margin, ref.pos_im))
    assert d.initial_margin_after <= d.initial_margin_before
    assert d.initial_margin_after > d.equity_before
    # adding to the short is not
    d2 = eng.check_order(order("more", CALL_LIN, Side.SELL, 1.0, 5_000.0))
    assert not d2.accepted and d2.reason == Reason.INSUFFICIENT_MARGIN
    assert not d2.risk_reducing


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_insufficient_margin_reject_leaves_state_unchanged(model):
    eng = make_engine(model)
    c = unit_im(model)
    cash = 0.8 * c  # one BTC perpetual needs more than the collateral
    add_account(eng, collateral={"USD": cash})
    before = snapshot_state(eng)
    d = eng.check_order(order("big"))
    assert not d.accepted
    assert d.reason == Reason.INSUFFICIENT_MARGIN
    assert d.initial_margin_before == 0.0
    assert d.initial_margin_after == approx(c)
    assert d.initial_margin_after > d.equity_before
    assert d.equity_before == approx(cash)
    assert d.context_field == "initial_margin"
    assert d.context_limit == approx(cash)
    assert d.context_actual == approx(c)
    assert d.context_unit == "USD"
    assert d.worst_scenario is not None
    assert snapshot_state(eng) == before
    assert eng.account_view("A").working_orders == []
    # the retry of the rejected id returns the original reject, still nothing reserved
    again = eng.check_order(order("big"))
    assert again.duplicate and not again.accepted and again.reason == Reason.INSUFFICIENT_MARGIN
    assert snapshot_state(eng) == before


def test_idempotent_retry_returns_original_and_reserves_once():
    eng = make_engine()
    add_account(eng)
    c = unit_im("deribit")
    d1 = eng.check_order(order("o1"))
    assert d1.accepted and not d1.duplicate
    state = snapshot_state(eng)
    for _ in range(3):
        r = eng.check_order(order("o1"))
        assert r.duplicate
        assert r.accepted
        assert r.initial_margin_before == d1.initial_margin_before
        assert r.initial_margin_after == d1.initial_margin_after
        assert r.equity_before == d1.equity_before
        assert r.client_order_id == "o1"
    assert snapshot_state(eng) == state
    assert len(eng.account_view("A").working_orders) == 1
    d3 = eng.check_order(order("o3"))
    assert d3.initial_margin_before == approx(c)  # one reservation, not four


def test_retry_of_a_working_order_after_the_idempotency_window_reserves_nothing_twice():
    eng = make_engine(idempotency_window=2)
    add_account(eng)
    c = unit_im("deribit")
    for cid in ("o1", "o2", "o3"):  # o1's decision falls out of the 2-decision window
        assert eng.check_order(order(cid)).accepted
    eng.check_order(order("o1"))  # the gateway retries o1, which is still working
    view = eng.account_view("A")
    assert len(view.working_orders) == 3
    assert view.pools[0].initial_margin == approx(3.0 * c)
    for cid in ("o1", "o2", "o3"):
        eng.order_event("A", cid, Cancelled())
    view = eng.account_view("A")
    assert view.working_orders == []
    assert view.pools[0].initial_margin == approx(0.0)  # nothing left reserved


def test_same_id_different_content_rejected_state_unchanged():
    eng = make_engine()
    add_account(eng)
    d1 = eng.check_order(order("o1"))
    assert d1.accepted
    state = snapshot_state(eng)
    for changed in (
        order("o1", qty=2.0),
        order("o1", side=Side.SELL),
        order("o1", price=69_000.0),
        order("o1", symbol=PERP_INV),
        order("o1", reduce_only=True),
        order("o1", price=None, order_type=OrderType.MARKET),
    ):
        d = eng.check_order(changed)
        assert not d.accepted
        assert d.reason == Reason.DUPLICATE_ORDER_ID_MISMATCH
        assert d.context_field == "client_order_id"
        assert snapshot_state(eng) == state
    # the original is still the one remembered
    assert eng.check_order(order("o1")).duplicate


def test_limit_and_trading_state_rejects_carry_margin_and_equity():
    eng = make_engine()
    c = unit_im("deribit")
    add_account(eng, limits=Limits(max_order_quantity=1.0))
    assert eng.check_order(order("a", qty=0.5)).accepted
    d = eng.check_order(order("b", qty=2.0))
    assert d.reason == Reason.MAX_ORDER_QUANTITY
    eng.set_trading_state("A", False, TradingState.HALTED, "stop")
    h = eng.check_order(order("c", qty=0.5))
    assert h.reason == Reason.ACCOUNT_HALTED
    for rej in (d, h):
        assert rej.equity_before == approx(100_000.0)
        assert rej.initial_margin_before == approx(0.5 * c)
        assert rej.worst_scenario is not None


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("req", "reason", "field"),
    [
        (order("v", account="NOPE"), Reason.UNKNOWN_ACCOUNT, "account_id"),
        (order("v", account=""), Reason.UNKNOWN_ACCOUNT, "account_id"),
        (order("v", symbol="FOO-BAR-BAZ"), Reason.UNKNOWN_INSTRUMENT, "symbol"),
        (order("v", symbol="SOL-PERPETUAL"), Reason.UNKNOWN_INSTRUMENT, "symbol"),
        (order("v", symbol="BTC-25DEC26-12345-C", price=0.01), Reason.UNKNOWN_INSTRUMENT, "symbol"),
        (order("v", symbol="BTC-20NOV26-70000-C", price=0.01), Reason.INSTRUMENT_EXPIRED, "symbol"),
        (order("v", symbol="BTC-21NOV26-70000-P", price=0.01), Reason.INSTRUMENT_EXPIRED, "symbol"),
        (order("v", symbol="BTC_USDC-30OCT26"), Reason.INSTRUMENT_EXPIRED, "symbol"),
        (order("v", symbol=""), Reason.INVALID_ORDER, "symbol"),
        (order("v", qty=math.nan), Reason.INVALID_ORDER, "quantity"),
        (order("v", qty=math.inf), Reason.INVALID_ORDER, "quantity"),
        (order("v", qty=-math.inf), Reason.INVALID_ORDER, "quantity"),
        (order("v", qty=-1.0), Reason.INVALID_ORDER, "quantity"),
        (order("v", qty=0.0), Reason.INVALID_ORDER, "quantity"),
        (order("v", price=math.nan), Reason.INVALID_ORDER, "price"),
        (order("v", price=math.inf), Reason.INVALID_ORDER, "price"),
        (order("v", price=-70_000.0), Reason.INVALID_ORDER, "price"),
        (order("v", price=0.0), Reason.INVALID_ORDER, "price"),
        (order("v", price=None), Reason.INVALID_ORDER, "price"),  # LIMIT without a price
        (order("v", side=0), Reason.INVALID_ORDER, "side"),
        (order("v", side=3), Reason.INVALID_ORDER, "side"),
        (order("v", order_type=0), Reason.INVALID_ORDER, "order_type"),
        (order(""), Reason.INVALID_ORDER, "client_order_id"),
    ],
    ids=lambda x: repr(x) if not isinstance(x, OrderRequest) else None,
)
def test_validation_rejects_with_reason_and_field_no_state_change(req, reason, field):
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 1.0, 69_000.0)])
    assert eng.check_order(order("w1", side=Side.SELL, qty=0.5)).accepted
    state = snapshot_state(eng)
    d = eng.check_order(req)
    assert not d.accepted
    assert d.reason == reason, d.detail
    assert d.context_field == field
    assert d.detail
    assert snapshot_state(eng) == state
    # what-if gives the same answer (client order id aside, it is optional there)
    if req.client_order_id:
        w = eng.whatif(req)
        assert (w.accepted, w.reason, w.context_field) == (False, reason, field)
        assert snapshot_state(eng) == state


def test_market_order_without_price_is_valid():
    eng = make_engine()
    add_account(eng)
    d = eng.check_order(order("m", price=None, order_type=OrderType.MARKET))
    assert d.accepted, d.detail
    assert d.initial_margin_after == approx(unit_im("deribit"))


# --------------------------------------------------------------------------- trading state


def test_halted_account_rejects_everything_but_cancels():
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 2.0, None)])
    assert eng.check_order(order("w1", qty=0.5)).accepted
    assert eng.set_trading_state("A", False, TradingState.HALTED, "desk stop") == 1
    state = snapshot_state(eng)
    for k, req in enumerate(
        [
            order("h1"),
            order("h2", side=Side.SELL, qty=1.0),  # would reduce the long
            order("h3", side=Side.SELL, qty=1.0, reduce_only=True),
            order("h4", symbol=CALL_INV, price=0.05),
        ]
    ):
        d = eng.check_order(req)
        assert not d.accepted, k
        assert d.reason == Reason.ACCOUNT_HALTED
        assert d.context_field == "trading_state"
        assert "desk stop" in d.detail
        assert snapshot_state(eng) == state
    view = eng.account_view("A")
    assert view.trading_state == TradingState.HALTED
    assert view.trading_state_reason == "desk stop"
    # cancels still work while halted
    ack = eng.order_event("A", "w1", Cancelled())
    assert not ack.duplicate and ack.working_quantity == 0.0
    assert eng.account_view("A").working_orders == []
    eng.set_trading_state("A", False, TradingState.ACTIVE, "")
    assert eng.check_order(order("after")).accepted


def test_kill_switch_halts_all_accounts_including_later_ones():
    eng = make_engine()
    add_account(eng, "A")
    add_account(eng, "B")
    assert eng.set_trading_state("", True, TradingState.HALTED, "kill switch") == 2
    for acc in ("A", "B"):
        d = eng.check_order(order(f"{acc}1", account=acc))
        assert not d.accepted and d.reason == Reason.ACCOUNT_HALTED
    _, view_c = add_account(eng, "C")  # created after the kill switch
    assert view_c.trading_state == TradingState.HALTED
    d = eng.check_order(order("C1", account="C"))
    assert not d.accepted and d.reason == Reason.ACCOUNT_HALTED
    assert eng.account_view("C").working_orders == []
    # releasing the switch opens them all again, and new accounts are active
    assert eng.set_trading_state("", True, TradingState.ACTIVE, "") == 3
    assert eng.check_order(order("C2", account="C")).accepted
    _, view_d = add_account(eng, "D")
    assert view_d.trading_state == TradingState.ACTIVE
    with pytest.raises(EngineError) as exc:
        eng.set_trading_state("A", True, TradingState.HALTED, "")
    assert exc.value.code == "INVALID_ARGUMENT"
    with pytest.raises(EngineError) as exc:
        eng.set_trading_state("NOPE", False, TradingState.HALTED, "")
    assert exc.value.code == "NOT_FOUND"


def test_reducing_accepts_only_position_reducing_orders():
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 2.0, None), (CALL_INV, -1.0, None)])
    eng.set_trading_state("A", False, TradingState.REDUCING, "deleverage")
    state = snapshot_state(eng)
    for req in (
        order("r1"),  # adds to the long
        order("r2", side=Side.SELL, qty=2.5),  # flips the long to short
        order("r3", symbol=PERP_INV, side=Side.SELL),  # opens a new position
        order("r4", symbol=CALL_INV, side=Side.SELL, price=0.05),  # adds to the short
    ):
        d = eng.check_order(req)
        assert not d.accepted and d.reason == Reason.ACCOUNT_REDUCING_ONLY, req
        assert d.context_field == "trading_state"
        assert snapshot_state(eng) == state
    assert eng.check_order(order("k1", side=Side.SELL, qty=1.5)).accepted
    # 1.5 already working to sell: another 0.5 closes the position exactly, 0.6 would flip it
    d = eng.check_order(order("k2", side=Side.SELL, qty=0.6))
    assert not d.accepted and d.reason == Reason.ACCOUNT_REDUCING_ONLY
    assert eng.check_order(order("k3", side=Side.SELL, qty=0.5)).accepted
    assert eng.check_order(order("k4", symbol=CALL_INV, side=Side.BUY, price=0.05)).accepted


def test_reduce_only_flag():
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 2.0, None)])
    state = snapshot_state(eng)
    d = eng.check_order(order("r1", side=Side.SELL, qty=3.0, reduce_only=True))
    assert not d.accepted and d.reason == Reason.REDUCE_ONLY_VIOLATION
    assert d.context_field == "reduce_only"
    assert d.context_limit == approx(2.0)  # what can still be reduced
    assert d.context_actual == approx(3.0)
    d = eng.check_order(order("r2", side=Side.BUY, qty=0.1, reduce_only=True))
    assert not d.accepted and d.reason == Reason.REDUCE_ONLY_VIOLATION
    d = eng.check_order(order("r3", symbol=PERP_INV, side=Side.SELL, reduce_only=True))
    assert not d.accepted and d.reason == Reason.REDUCE_ONLY_VIOLATION
    assert snapshot_state(eng) == state
    assert eng.check_order(order("r4", side=Side.SELL, qty=1.5, reduce_only=True)).accepted
    d = eng.check_order(order("r5", side=Side.SELL, qty=1.0, reduce_only=True))
    assert not d.accepted and d.reason == Reason.REDUCE_ONLY_VIOLATION
    assert d.context_limit == approx(0.5)  # 2 held - 1.5 already working
    assert eng.check_order(order("r6", side=Side.SELL, qty=0.5, reduce_only=True)).accepted


# --------------------------------------------------------------------------- static limits


def _limits_engine(limits: Limits, positions=None):
    eng = make_engine()
    add_account(eng, collateral={"USD": 10_000_000.0}, limits=limits)
    if positions:
        eng.set_positions("A", positions)
    return eng


def _assert_reject(eng, req, reason, field, limit, actual, unit):
    state = snapshot_state(eng)
    d = eng.check_order(req)
    assert not d.accepted
    assert d.reason == reason, d.detail
    assert d.context_field == field
    assert d.context_limit == pytest.approx(limit, rel=1e-12)
    assert d.context_actual == pytest.approx(actual, rel=1e-12)
    assert d.context_unit == unit
    assert snapshot_state(eng) == state
    return d


def test_limit_max_order_quantity():
    eng = _limits_engine(Limits(max_order_quantity=5.0))
    assert eng.whatif(order("q", qty=5.0)).accepted  # at the limit is fine
    _assert_reject(
        eng, order("q1", qty=5.5), Reason.MAX_ORDER_QUANTITY, "quantity", 5.0, 5.5, "coin"
    )
    _assert_reject(
        eng,
        order("q2", side=Side.SELL, qty=7.0),
        Reason.MAX_ORDER_QUANTITY,
        "quantity",
        5.0,
        7.0,
        "coin",
    )


def test_limit_max_order_notional():
    eng = _limits_engine(Limits(max_order_notional_usd=100_000.0))
    # notional = quantity x multiplier x index: 2 BTC x 70,000 = 140,000 USD
    _assert_reject(
        eng,
        order("n1", symbol=PERP_INV, qty=2.0),
        Reason.MAX_ORDER_NOTIONAL,
        "quantity",
        100_000.0,
        140_000.0,
        "USD",
    )
    # 30 ETH x 3,500 = 105,000 USD
    _assert_reject(
        eng,
        order("n2", symbol=ETH_PERP_LIN, side=Side.SELL, qty=30.0, price=3_500.0),
        Reason.MAX_ORDER_NOTIONAL,
        "quantity",
        100_000.0,
        105_000.0,
        "USD",
    )
    # 28 ETH x 3,500 = 98,000 USD: fine; 1 BTC = 70,000: fine
    assert eng.check_order(order("n3", symbol=ETH_PERP_LIN, qty=28.0, price=3_500.0)).accepted
    assert eng.check_order(order("n4", symbol=PERP_INV, qty=1.0)).accepted


def test_limit_price_band_versus_mark():
    eng = _limits_engine(Limits(price_band_fraction=0.05))
    # mark 70,007: 74,000 is (74,000 - 70,007) / 70,007 = 3,993 / 70,007 away
    _assert_reject(
        eng,
        order("p1", price=74_000.0),
        Reason.PRICE_BAND,
        "price",
        0.05,
        3_993.0 / 70_007.0,
        "fraction",
    )
    # 66,000 is 4,007 / 70,007 = 5.72 % below
    _assert_reject(
        eng,
        order("p2", side=Side.SELL, price=66_000.0),
        Reason.PRICE_BAND,
        "price",
        0.05,
        4_007.0 / 70_007.0,
        "fraction",
    )
    # 73,000 is 2,993 / 70,007 = 4.28 % away: inside the band
    assert eng.check_order(order("p3", price=73_000.0)).accepted
    # a market order has no price to check
    assert eng.check_order(order("p4", price=None, order_type=OrderType.MARKET)).accepted


def test_price_band_around_a_zero_mark_rejects_instead_of_failing():
    # a deep out-of-the-money option prices at exactly 0: no band around it holds a price
    # (this was a ZeroDivisionError, an INTERNAL_ERROR reject)
    eng = _limits_engine(Limits(price_band_fraction=0.05))
    eng.update_market(
        full_snapshot=False, valuation_time=None, index_usd={}, marks_usd={},
        ivs={CALL_LIN_FAR: 0.01},
    )  # fmt: skip
    assert eng.market.quotes[CALL_LIN_FAR].mark == 0.0
    state = snapshot_state(eng)
    d = eng.check_order(order("z1", symbol=CALL_LIN_FAR, price=5.0))
    assert (d.accepted, d.reason, d.context_field) == (False, Reason.PRICE_BAND, "price"), d.detail
    assert (d.context_limit, d.context_actual) == (0.05, None)
    assert snapshot_state(eng) == state
    d = eng.check_order(order("z2", symbol=CALL_LIN_FAR, price=None, order_type=OrderType.MARKET))
    assert d.reason != Reason.INTERNAL_ERROR


def test_limit_max_open_orders():
    eng = _limits_engine(Limits(max_open_orders=2))
    assert eng.check_order(order("a")).accepted
    assert eng.check_order(order("b", side=Side.SELL)).accepted
    _assert_reject(eng, order("c"), Reason.MAX_OPEN_ORDERS, "open_orders", 2.0, 3.0, "orders")
    eng.order_event("A", "a", Cancelled())
    assert eng.check_order(order("c2")).accepted


def test_limit_position():
    lim = Limits(default_position_limit=3.0, position_limits={PERP_INV: 1.0})
    eng = _limits_engine(lim, [(PERP_LIN, 2.0, None)])
    # long 2 + 1 working = 3: at the limit
    assert eng.check_order(order("l1", qty=1.0)).accepted
    # long 2 + 1 working + 0.5 = 3.5 > 3
    _assert_reject(eng, order("l2", qty=0.5), Reason.POSITION_LIMIT, "quantity", 3.0, 3.5, "coin")
    # selling 4 from long 2 ends short 2: within 3
    assert eng.check_order(order("l3", side=Side.SELL, qty=4.0)).accepted
    # another 1.5 to sell: 2 - 5.5 = -3.5
    _assert_reject(
        eng,
        order("l4", side=Side.SELL, qty=1.5),
        Reason.POSITION_LIMIT,
        "quantity",
        3.0,
        3.5,
        "coin",
    )
    # the per-symbol limit overrides the default on BTC-PERPETUAL: selling 1.2 at 70,000 is
    # short 84,000 USD of notional, 84,000 / 70,007 = 1.19988 coin at the mark > 1
    _assert_reject(
        eng,
        order("l5", symbol=PERP_INV, side=Side.SELL, qty=1.2),
        Reason.POSITION_LIMIT,
        "quantity",
        1.0,
        84_000.0 / MARK_PERP,
        "coin",
    )


# --------------------------------------------------------------------------- max quantity


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_max_quantity_exact_size_accepted_slightly_larger_rejected(model):
    eng = make_engine(model)
    add_account(eng, collateral={"USD": 150_000.0, "BTC": 1.0})
    eng.set_positions("A", [(CALL_LIN, -2.0, None), (PERP_LIN, 0.5, None), (PUT_LIN, 1.0, None)])
    assert eng.check_order(order("w", symbol=ETH_PERP_LIN, qty=5.0, price=3_500.0)).accepted
    state = snapshot_state(eng)
    for sym, px in ((PERP_LIN, MARK_PERP), (CALL_INV, None)):
        mq = eng.max_quantity("A", sym, px)
        assert snapshot_state(eng) == state
        for side, q, why in (
            (Side.BUY, mq.max_buy_quantity, mq.buy_limited_by),
            (Side.SELL, mq.max_sell_quantity, mq.sell_limited_by),
        ):
            assert q > 0.0 and why == Reason.INSUFFICIENT_MARGIN, (sym, side, q, why)
            kw = {"order_type": OrderType.MARKET} if px is None else {}
            ok = eng.whatif(order("x", sym, side, q, px, **kw))
            assert ok.accepted, (sym, side, q, ok.reason)
            bad = eng.whatif(order("x", sym, side, q * 1.000001, px, **kw))
            assert not bad.accepted and bad.reason == Reason.INSUFFICIENT_MARGIN, (sym, side)
            assert bad.initial_margin_after > bad.equity_before
    assert snapshot_state(eng) == state


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_max_quantity_matches_hand_computation_for_linear_margin(model):
    # USD collateral only, one instrument: IM = q * c, so the max is equity / c
    eng = make_engine(model)
    add_account(eng, collateral={"USD": 100_000.0})
    c = unit_im(model)
    mq = eng.max_quantity("A", PERP_LIN, None)
    assert mq.max_buy_quantity == pytest.approx(100_000.0 / c, rel=1e-9)
    assert mq.max_sell_quantity == pytest.approx(100_000.0 / c, rel=1e-9)
    assert eng.check_order(order("a", qty=mq.max_buy_quantity, price=MARK_PERP)).accepted
    # with a static limit below the margin bound the limit is the answer
    eng.upsert_account("A", limits=Limits(max_order_quantity=2.0))
    mq = eng.max_quantity("A", PERP_LIN, None)
    assert mq.max_sell_quantity == pytest.approx(2.0, rel=1e-9)
    assert mq.sell_limited_by == Reason.MAX_ORDER_QUANTITY


def test_max_quantity_bad_input():
    eng = make_engine()
    add_account(eng)
    for args, code in (
        (("NOPE", PERP_LIN, None), "NOT_FOUND"),
        (("A", "", None), "INVALID_ARGUMENT"),
        (("A", "FOO-BAR-BAZ", None), "INVALID_ARGUMENT"),
        (("A", "SOL-PERPETUAL", None), "NOT_FOUND"),
        (("A", "BTC-20NOV26-70000-C", None), "FAILED_PRECONDITION"),
        (("A", PERP_LIN, math.nan), "INVALID_ARGUMENT"),
        (("A", PERP_LIN, -1.0), "INVALID_ARGUMENT"),
    ):
        with pytest.raises(EngineError) as exc:
            eng.max_quantity(*args)
        assert exc.value.code == code, args


# --------------------------------------------------------------------------- rules-based


RULES_POSITIONS = {CALL_INV: -2.0, PUT_LIN: -1.0, PERP_LIN: 3.0, PERP_INV: -1.0, SPOT: -0.5}


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
def test_rules_based_account_uses_per_leg_standard_margin(pool_mode):
    seg = pool_mode == PoolMode.SEGREGATED
    eng = make_engine("deribit")
    add_account(
        eng,
        collateral={"USD": 500_000.0, "BTC": 5.0},
        pool_mode=pool_mode,
        method=MarginMethod.RULES_BASED,
    )
    eng.set_positions("A", [(s, q, None) for s, q in RULES_POSITIONS.items()])
    buys: dict[str, float] = {}
    sells: dict[str, float] = {}
    for cid, sym, side, qty, px in [
        ("r1", PERP_LIN, Side.BUY, 2.0, 70_000.0),  # futures IM has a size term: quadratic
        ("r2", PERP_LIN, Side.SELL, 7.0, 70_000.0),  # flips the long to short on the S side
        ("r3", CALL_INV, Side.SELL, 1.0, 0.05),
        ("r4", CALL_INV_OTM, Side.BUY, 1.0, 0.01),
        ("r5", PUT_LIN, Side.BUY, 3.0, 2_000.0),
        ("r6", PERP_INV, Side.BUY, 4.0, 70_000.0),
        ("r7", SPOT, Side.BUY, 0.2, 70_000.0),
    ]:
        ccy = pool_of(sym, seg)
        im0, mm0 = rules_ref(ccy, RULES_POSITIONS, buys, sells, seg)
        r = {sym: reserved(sym, qty, px)}
        nb = _combine(buys, r, 1.0) if side == Side.BUY else buys
        ns = _combine(sells, r, 1.0) if side == Side.SELL else sells
        im1, mm1 = rules_ref(ccy, RULES_POSITIONS, nb, ns, seg)
        d = eng.check_order(order(cid, sym, side, qty, px))
        assert d.accepted, (cid, d.reason, d.detail)
        assert d.margin_method == MarginMethod.RULES_BASED
        assert d.initial_margin_before == approx(im0), cid
        assert d.initial_margin_after == approx(im1), cid
        assert d.maintenance_margin_before == approx(mm0), cid
        assert d.maintenance_margin_after == approx(mm1), cid
        buys, sells = nb, ns
    view = eng.account_view("A")
    assert view.margin_method == MarginMethod.RULES_BASED
    for pv in view.pools:
        im, mm = rules_ref(pv.currency, RULES_POSITIONS, buys, sells, seg)
        assert pv.initial_margin == approx(im), pv.currency
        assert pv.maintenance_margin == approx(mm), pv.currency
        pim, pmm = rules_ref(pv.currency, RULES_POSITIONS, segregated=seg)
        assert pv.positions_initial_margin == approx(pim), pv.currency
        assert pv.positions_maintenance_margin == approx(pmm), pv.currency


def test_auto_method_below_pm_equity_minimum_is_rules_based():
    eng = make_engine("deribit", pm_equity_minimum_usd=1_000_000.0)
    add_account(eng, collateral={"USD": 100_000.0}, method=MarginMethod.AUTO)
    positions = {CALL_LIN: -1.0}
    eng.set_positions("A", [(CALL_LIN, -1.0, None)])
    assert eng.account_view("A").margin_method == MarginMethod.RULES_BASED
    d = eng.whatif(order("a1", qty=2.0))
    im0, _ = rules_ref("USD", positions)
    im1, _ = rules_ref("USD", positions, {PERP_LIN: 2.0})
    assert d.margin_method == MarginMethod.RULES_BASED
    assert d.initial_margin_before == approx(im0)
    assert d.initial_margin_after == approx(im1)
    # enough equity: portfolio margin
    eng.upsert_account("A", collateral={"USD": 2_000_000.0})
    assert eng.account_view("A").margin_method == MarginMethod.PORTFOLIO
    d = eng.whatif(order("a1", qty=2.0))
    ref = ref_pool("deribit", "USD", positions, {PERP_LIN: 2.0}, collateral={"USD": 2e6})
    assert d.margin_method == MarginMethod.PORTFOLIO
    assert d.initial_margin_after == approx(ref.im)


def test_auto_method_switches_with_working_orders_fills_and_market_moves():
    eng = make_engine("deribit", pm_equity_minimum_usd=1_000_000.0)
    add_account(eng, collateral={"USD": 500_000.0}, method=MarginMethod.AUTO)
    pos = {CALL_LIN: -2.0, PERP_LIN: 1.0}
    eng.set_positions("A", [(s, q, None) for s, q in pos.items()])
    assert eng.check_order(order("b", PERP_LIN, Side.BUY, 3.0)).accepted
    assert eng.check_order(order("s", CALL_INV, Side.SELL, 1.0, 0.05)).accepted
    buys, sells = {PERP_LIN: 3.0}, {CALL_INV: 1.0}

    def view_im():
        v = eng.account_view("A")
        return v.margin_method, v.pools[0].initial_margin

    assert view_im() == (MarginMethod.RULES_BASED, approx(rules_ref("USD", pos, buys, sells)[0]))
    eng.upsert_account("A", collateral={"USD": 2_000_000.0})  # above the minimum: PM
    ref = ref_pool("deribit", "USD", pos, buys, sells, {"USD": 2_000_000.0})
    assert view_im() == (MarginMethod.PORTFOLIO, approx(ref.im))
    eng.upsert_account("A", collateral={"USD": 500_000.0})  # and back
    assert view_im() == (MarginMethod.RULES_BASED, approx(rules_ref("USD", pos, buys, sells)[0]))
    # a fill at the mark moves no cash: still rules-based, per-leg of the new state
    eng.order_event("A", "b", Filled(1.0, MARK_PERP, "f1"))
    pos, buys = {**pos, PERP_LIN: 2.0}, {PERP_LIN: 2.0}
    assert view_im() == (MarginMethod.RULES_BASED, approx(rules_ref("USD", pos, buys, sells)[0]))
    # a market move re-margins with the per-leg standard at the new market
    eng.update_market(
        full_snapshot=False, valuation_time=None, index_usd={"BTC": 72_000.0}, marks_usd={}, ivs={}
    )
    snap2 = SNAP.with_updates(index_usd={"BTC": 72_000.0})
    plus, minus = _combine(pos, buys, 1.0), _combine(pos, sells, -1.0)
    im = max(
        per_leg_margin(in_pool(plus, "USD", False), snap2, "USD", RULES).initial_margin,
        per_leg_margin(in_pool(minus, "USD", False), snap2, "USD", RULES).initial_margin,
    )
    assert view_im() == (MarginMethod.RULES_BASED, approx(im))


# --------------------------------------------------------------------------- what-if, batches


@pytest.mark.parametrize("pool_mode", [PoolMode.CROSS, PoolMode.SEGREGATED])
def test_whatif_never_changes_state(pool_mode):
    eng = make_engine()
    # coin collateral so that every pool the orders touch exists already (see the next test)
    add_account(eng, collateral={"USD": 100_000.0, "BTC": 1.0, "ETH": 1.0}, pool_mode=pool_mode)
    eng.set_positions("A", [(PERP_LIN, 1.0, None)])
    state = snapshot_state(eng)
    reqs = [
        order("w1"),
        order("w2", side=Side.SELL, qty=3.0),
        order("w3", qty=1_000.0),  # rejected for margin
        order("w4", symbol=PERP_INV),  # another pool when segregated
        order("w5", symbol=ETH_PUT_INV, side=Side.SELL, price=0.02),
    ]
    answers = [eng.whatif(r) for r in reqs]
    assert snapshot_state(eng) == state
    assert not answers[2].accepted
    # the same orders checked for real give the same numbers (first one only: each
    # real check then reserves)
    d = eng.check_order(reqs[0])
    assert not d.duplicate
    assert (d.accepted, d.initial_margin_after, d.equity_before) == (
        answers[0].accepted,
        answers[0].initial_margin_after,
        answers[0].equity_before,
    )


def test_whatif_and_rejects_do_not_create_pools_in_segregated_account():
    # regression: a what-if or a rejected order on an inverse instrument used to add an
    # empty coin pool to a segregated account (visible in the GetAccount view)
    eng = make_engine()
    add_account(eng, collateral={"USD": 100_000.0}, pool_mode=PoolMode.SEGREGATED)
    state = snapshot_state(eng)
    assert [p.currency for p in state[0].pools] == ["USD"]
    d = eng.whatif(order("w", symbol=PERP_INV))  # no BTC collateral: rejected for margin
    assert not d.accepted and d.pool_currency == "BTC"
    d = eng.check_order(order("r", symbol=PERP_INV))
    assert not d.accepted and d.reason == Reason.INSUFFICIENT_MARGIN
    eng.set_trading_state("A", False, TradingState.HALTED, "stop")
    d = eng.check_order(order("h", symbol=ETH_PERP_INV, price=3_500.0))
    assert d.reason == Reason.ACCOUNT_HALTED
    eng.set_trading_state("A", False, TradingState.ACTIVE, "")
    assert [p.currency for p in eng.account_view("A").pools] == ["USD"]
    assert snapshot_state(eng) == state


def test_check_orders_decides_in_sequence():
    eng = make_engine()
    c = unit_im("deribit")
    add_account(eng, collateral={"USD": 1.5 * c})
    assert eng.whatif(order("b2")).accepted  # alone the second order fits
    ds = eng.check_orders([order("b1"), order("b2"), order("s1", side=Side.SELL)])
    assert [d.accepted for d in ds] == [True, False, True]
    assert ds[1].reason == Reason.INSUFFICIENT_MARGIN
    assert ds[1].initial_margin_before == approx(c)
    assert ds[1].initial_margin_after == approx(2.0 * c)
    assert [d.client_order_id for d in ds] == ["b1", "b2", "s1"]
    assert len(eng.account_view("A").working_orders) == 2


def test_check_orders_empty_or_oversize_batch():
    eng = make_engine(max_batch_orders=3)
    add_account(eng)
    state = snapshot_state(eng)
    with pytest.raises(EngineError) as exc:
        eng.check_orders([])
    assert exc.value.code == "INVALID_ARGUMENT"
    with pytest.raises(EngineError) as exc:
        eng.check_orders([order(f"o{k}") for k in range(4)])
    assert exc.value.code == "INVALID_ARGUMENT"
    assert snapshot_state(eng) == state  # not even the first three were decided
    assert len(eng.check_orders([order(f"o{k}") for k in range(3)])) == 3


# --------------------------------------------------------------------------- latency budget


def test_latency_budget_one_ns_rejects_and_reserves_nothing():
    eng = make_engine(decision_budget_ns=1)  # the real monotonic clock moves past 1 ns
    add_account(eng)
    view = eng.account_view("A")
    n0 = eng.counters["latency_rejects"]
    d = eng.check_order(order("slow"))
    assert not d.accepted
    assert d.reason == Reason.LATENCY_BUDGET_EXCEEDED
    assert eng.counters["latency_rejects"] == n0 + 1
    assert eng.account_view("A") == view


class JumpClock(FakeClock):
    """Jumps ``jump`` ns at the ``at``-th read (1-based) after being armed."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.at = 0
        self.jump = 0

    def arm(self, at: int, jump: int) -> None:
        self.reads, self.at, self.jump = 0, at, jump

    def __call__(self) -> int:
        self.reads += 1
        if self.reads == self.at:
            self.now += self.jump
        return self.now


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_deadline_spent_on_arrival_is_a_latency_reject_not_remembered(batch):
    # the caller has given up: whatever the account's state, the answer is a latency
    # reject, and nothing (not even a halted reject) is kept against the order id
    clock = FakeClock()
    eng = make_engine(clock=clock)
    add_account(eng)
    eng.set_trading_state("A", False, TradingState.HALTED, "ops")
    state = snapshot_state(eng)
    n0 = eng.counters["latency_rejects"]
    late = clock.now - 1
    d = eng.check_orders([order("o1")], late)[0] if batch else eng.check_order(order("o1"), late)
    assert not d.accepted and d.reason == Reason.LATENCY_BUDGET_EXCEEDED
    assert eng.counters["latency_rejects"] == n0 + 1
    assert snapshot_state(eng) == state
    eng.set_trading_state("A", False, TradingState.ACTIVE, "")
    d = eng.check_order(order("o1"))
    assert d.accepted and not d.duplicate


def test_account_busy_past_the_budget_fails_closed():
    # another writer holds the account for longer than the 1 ms budget
    eng = make_engine(clock=FakeClock(), decision_budget_ns=1_000_000)
    add_account(eng)
    state = snapshot_state(eng)
    n0 = eng.counters["latency_rejects"]
    with eng.accounts["A"].lock:
        d = eng.check_order(order("o1"))
    assert not d.accepted and d.reason == Reason.LATENCY_BUDGET_EXCEEDED
    assert "busy" in d.detail
    assert eng.counters["latency_rejects"] == n0 + 1
    assert snapshot_state(eng) == state
    assert eng.check_order(order("o1")).accepted  # not remembered: decided afresh


@pytest.mark.parametrize("at", [2], ids=["after-margin"])
def test_latency_budget_clock_jump_fails_closed(at):
    # read 1 starts the decision (a free account lock is taken without reading the clock);
    # read 2 is after the margin computation. A 5 ms jump there overruns a 1 ms budget.
    clock = JumpClock()
    eng = make_engine(clock=clock, decision_budget_ns=1_000_000)
    add_account(eng)
    state = snapshot_state(eng)
    n0 = eng.counters["latency_rejects"]
    clock.arm(at, 5_000_000)
    d = eng.check_order(order("o1"))
    clock.arm(0, 0)
    assert not d.accepted and d.reason == Reason.LATENCY_BUDGET_EXCEEDED
    assert d.compute_ns >= 5_000_000
    assert eng.counters["latency_rejects"] == n0 + 1
    assert snapshot_state(eng) == state
    # a latency reject is not remembered: the retry is decided afresh
    d = eng.check_order(order("o1"))
    assert d.accepted and not d.duplicate
    # a request deadline already past is honoured too
    d = eng.check_order(order("o2"), deadline_ns=clock.now - 1)
    assert not d.accepted and d.reason == Reason.LATENCY_BUDGET_EXCEEDED
    assert len(eng.account_view("A").working_orders) == 1


# --------------------------------------------------------------------------- admin bad input


def _code(fn, *args, **kw) -> str:
    with pytest.raises(EngineError) as exc:
        fn(*args, **kw)
    assert exc.value.message
    return exc.value.code


def test_upsert_account_bad_input_changes_nothing():
    eng = make_engine()
    add_account(eng, collateral={"USD": 50_000.0}, limits=Limits(max_order_quantity=10.0))
    eng.set_positions("A", [(PERP_LIN, 1.0, None)])
    state = snapshot_state(eng)
    bad = [
        ({"collateral": {"USD": math.nan}}, "INVALID_ARGUMENT"),
        ({"collateral": {"USD": math.inf}}, "INVALID_ARGUMENT"),
        ({"collateral": {"BTC": 1.0, "XYZ": 5.0}}, "INVALID_ARGUMENT"),
        (
            {"collateral": {"USD": 1.0}, "limits": Limits(max_order_quantity=0.0)},
            "INVALID_ARGUMENT",
        ),
        ({"limits": Limits(max_order_notional_usd=-1.0)}, "INVALID_ARGUMENT"),
        ({"limits": Limits(price_band_fraction=math.nan)}, "INVALID_ARGUMENT"),
        ({"limits": Limits(max_open_orders=0)}, "INVALID_ARGUMENT"),
        ({"limits": Limits(default_position_limit=0.0)}, "INVALID_ARGUMENT"),
        ({"limits": Limits(position_limits={PERP_LIN: -1.0})}, "INVALID_ARGUMENT"),
        ({"pool_mode": PoolMode.SEGREGATED, "collateral": {"USD": 1.0}}, "FAILED_PRECONDITION"),
    ]
    for kw, code in bad:
        assert _code(eng.upsert_account, "A", **kw) == code, kw
        assert snapshot_state(eng) == state, kw
    # a new account with bad input is not created
    assert _code(eng.upsert_account, "N", collateral={"USD": math.nan}) == "INVALID_ARGUMENT"
    assert _code(eng.upsert_account, "N", limits=Limits(max_open_orders=-3)) == "INVALID_ARGUMENT"
    assert _code(eng.upsert_account, "", collateral={"USD": 1.0}) == "INVALID_ARGUMENT"
    assert _code(eng.account_view, "N") == "NOT_FOUND"
    assert set(eng.accounts) == {"A"}


def test_set_positions_bad_input_changes_nothing():
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 1.0, 69_000.0), (CALL_INV, -1.0, None)])
    assert eng.check_order(order("w")).accepted
    state = snapshot_state(eng)
    good = (PERP_INV, 2.0, None)
    for positions, code in [
        ([good, ("SOL-PERPETUAL", 1.0, None)], "NOT_FOUND"),
        ([good, ("BTC-25DEC26-12345-C", 1.0, None)], "NOT_FOUND"),
        ([good, ("BTC-20NOV26-70000-C", 1.0, None)], "NOT_FOUND"),
        ([good, ("GARBAGE", 1.0, None)], "INVALID_ARGUMENT"),
        ([good, ("", 1.0, None)], "INVALID_ARGUMENT"),
        ([good, (PERP_LIN, math.nan, None)], "INVALID_ARGUMENT"),
        ([good, (PERP_LIN, math.inf, None)], "INVALID_ARGUMENT"),
        ([good, (PERP_LIN, 1.0, math.nan)], "INVALID_ARGUMENT"),
        ([good, (PERP_LIN, 1.0, -5.0)], "INVALID_ARGUMENT"),
        ([good, (PERP_LIN, 1.0, None), (PERP_LIN, 2.0, None)], "INVALID_ARGUMENT"),
        ([good, ("btc_usdc-perpetual", 1.0, None), (PERP_LIN, 2.0, None)], "INVALID_ARGUMENT"),
    ]:
        assert _code(eng.set_positions, "A", positions) == code, positions
        assert snapshot_state(eng) == state, positions
    assert _code(eng.set_positions, "NOPE", [good]) == "NOT_FOUND"


def test_set_positions_replaces_and_matches_full_revaluation():
    eng = make_engine("span")
    add_account(eng, collateral={"USD": 300_000.0, "ETH": 20.0})
    eng.set_positions("A", [(PERP_LIN, 1.0, None), (CALL_INV, -1.0, None)])
    new = {CALL_INV: -2.0, ETH_PUT_INV: 5.0}
    view = eng.set_positions("A", [(s, q, None) for s, q in new.items()])
    assert {p.symbol: p.quantity for p in view.positions} == new
    ref = ref_pool("span", "USD", new, collateral={"USD": 300_000.0, "ETH": 20.0})
    assert view.pools[0].initial_margin == approx(ref.im)
    assert view.pools[0].equity == approx(ref.equity)


def test_update_market_bad_input_changes_nothing():
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 1.0, None), (CALL_INV, -1.0, None)])
    assert eng.check_order(order("w")).accepted
    state = snapshot_state(eng)
    version = eng.market.version

    def partial(**kw):
        args = {
            "full_snapshot": False,
            "valuation_time": None,
            "index_usd": {},
            "marks_usd": {},
            "ivs": {},
        }
        args.update(kw)
        return eng.update_market(**args)

    def full(**kw):
        args = {
            "full_snapshot": True,
            "valuation_time": VT,
            "index_usd": SNAP.index_usd,
            "marks_usd": SNAP.marks_usd,
            "ivs": SNAP.ivs,
        }
        args.update(kw)
        return eng.update_market(**args)

    for call, kw, code in [
        (partial, {"marks_usd": {"BTC-XYZ": 70_000.0}}, "INVALID_ARGUMENT"),
        (partial, {"marks_usd": {"BTC_USDC-PERPETUAL": math.nan}}, "INVALID_ARGUMENT"),
        (partial, {"marks_usd": {"BTC_USDC-PERPETUAL": -1.0}}, "INVALID_ARGUMENT"),
        (partial, {"index_usd": {"BTC": math.inf}}, "INVALID_ARGUMENT"),
        (partial, {"ivs": {CALL_INV: math.nan}}, "INVALID_ARGUMENT"),
        (partial, {"ivs": {PERP_LIN: 0.5}}, "INVALID_ARGUMENT"),  # a vol for a perpetual
        (partial, {"marks_usd": {CALL_INV: 0.05}}, "INVALID_ARGUMENT"),  # a mark for an option
        (partial, {"marks_usd": {"SOL-PERPETUAL": 150.0}}, "INVALID_ARGUMENT"),  # no SOL index
        (partial, {"valuation_time": VT - timedelta(minutes=1)}, "FAILED_PRECONDITION"),
        (full, {"valuation_time": None}, "INVALID_ARGUMENT"),
        (full, {"marks_usd": {**SNAP.marks_usd, "BTC-XYZ": 1.0}}, "INVALID_ARGUMENT"),
        (full, {"index_usd": {"BTC": math.nan, "ETH": 3_500.0}}, "INVALID_ARGUMENT"),
    ]:
        assert _code(call, **kw) == code, kw
        assert eng.market.version == version, kw
        assert snapshot_state(eng) == state, kw


def test_update_market_full_snapshot_older_valuation_time_rejected():
    # regression: only partial updates used to check that time does not go backwards
    eng = make_engine()
    add_account(eng)
    eng.set_positions("A", [(PERP_LIN, 1.0, None)])
    state = snapshot_state(eng)
    with pytest.raises(EngineError) as exc:
        eng.update_market(
            full_snapshot=True,
            valuation_time=VT - timedelta(hours=1),
            index_usd=SNAP.index_usd,
            marks_usd=SNAP.marks_usd,
            ivs=SNAP.ivs,
        )
    assert exc.value.code == "FAILED_PRECONDITION"
    assert eng.market.version == 1
    assert eng.market.valuation_time == VT
    assert snapshot_state(eng) == state


def test_queries_before_market_data():
    eng = RiskEngine(MODELS["deribit"], RULES, EngineConfig(decision_budget_ns=BIG_BUDGET_NS))
    d = eng.check_order(order("o"))
    assert not d.accepted and d.reason == Reason.MARKET_DATA_MISSING
    assert _code(eng.upsert_account, "A", collateral={"USD": 1.0}) == "FAILED_PRECONDITION"
    assert _code(eng.account_view, "A") == "FAILED_PRECONDITION"


def test_acknowledged_order_is_listed_in_view():
    eng = make_engine()
    add_account(eng)
    eng.check_order(order("o1", qty=2.0))
    eng.order_event("A", "o1", Acknowledged("V-1"))
    (wo,) = eng.account_view("A").working_orders
    assert (wo.client_order_id, wo.symbol, wo.side, wo.quantity, wo.working_quantity) == (
        "o1",
        PERP_LIN,
        Side.BUY,
        2.0,
        2.0,
    )
    assert wo.venue_order_id == "V-1"
