"""The pre-trade decision flow, first failure wins: validation and idempotent retries,
trading state, static limits, margin with open orders reserved, latency budget.

Deciding only reads the book. :func:`decide` either raises :class:`Reject`, returns the
original decision of a retried client order id, or returns an :class:`Accept` that the
engine turns into an ``OrderAccepted`` event (its ``hint`` hands the what-if over to apply).

An order's quantity is in coin (× multiplier); it is margined in the units positions are held
in: an order on an inverse future or perpetual as the USD notional of its quantity at its
limit price, or at the mark for a market order (:func:`riskgate.engine.apply.order_unit`).
Limits stay in coin: an inverse position's coin is its notional's equivalent at the mark.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

from riskgate.domain.instruments import Instrument, InstrumentError, parse_symbol
from riskgate.domain.units import money, plain
from riskgate.engine.apply import AcceptHint, order_unit
from riskgate.engine.attribution import explain_side, explain_state, wanted
from riskgate.engine.book import (
    Account,
    AccountPool,
    RulesTotals,
    pool_currency,
    scenario_info,
    side_figures,
)
from riskgate.engine.controls import check as controls_check
from riskgate.engine.market import MarketState
from riskgate.engine.types import (
    Decision,
    MarginMethod,
    OrderRequest,
    OrderType,
    Reason,
    Side,
    TradingState,
)

_EPS = 1e-12
_INF = float("inf")
_SIDE = {1: Side.BUY, 2: Side.SELL}
# enum members bound once: the decision path reads them on every order
_BUY = Side.BUY
_RULES = MarginMethod.RULES_BASED
_LATENCY = Reason.LATENCY_BUDGET_EXCEEDED
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING
_LIMIT = OrderType.LIMIT
_ORDER_TYPES = frozenset((OrderType.LIMIT, OrderType.MARKET))
_NUMBER = (float, int)


class Reject(Exception):
    """Stop the decision flow with this reason; ``remember``: keep it for retries."""

    def __init__(
        self,
        reason: Reason,
        detail: str,
        field: str = "",
        limit: float | None = None,
        actual: float | None = None,
        unit: str = "",
        remember: bool = True,
    ) -> None:
        self.reason, self.detail, self.field = reason, detail, field
        self.limit, self.actual, self.unit = limit, actual, unit
        self.remember = remember and reason is not _LATENCY


class Accept(NamedTuple):
    symbol: str
    pool: str
    hint: AcceptHint


def too_long(text: str, max_bytes: int) -> bool:
    # len() first: a str of n characters has at most 4n UTF-8 bytes
    return len(text) * 4 > max_bytes and len(text.encode()) > max_bytes


def decide(
    acc: Account,
    market: MarketState,
    order: OrderRequest,
    d: Decision,
    reserve: bool,
    dropping: frozenset[str],
    budget_end: int,
    clock_ns: Callable[[], int],
    stale_ns: int = 0,
    now_ns: int = 0,
) -> Accept | Decision:
    """One decision on ``acc`` (its lock held, bound to ``market``); fills ``d``'s numbers.
    ``stale_ns``: how far the market is past its maximum age (> 0: only orders that lower
    the margin requirement pass). ``now_ns``: the decision's wall-clock time, the one an
    accepted order's event records (the controls' velocity windows run on it)."""
    # 1. validation and idempotency
    if reserve:
        prior = acc.decisions.get(order.client_order_id)
        if prior is not None:
            if prior[0].fingerprint() == order.fingerprint():
                return dataclasses.replace(prior[1], duplicate=True)
            raise Reject(
                Reason.DUPLICATE_ORDER_ID_MISMATCH,
                f"client_order_id {order.client_order_id!r} was used for a different order",
                "client_order_id", remember=False,
            )  # fmt: skip
        if order.client_order_id in acc.orders:
            # its decision has left the idempotency window, the order has not
            raise Reject(
                Reason.DUPLICATE_ORDER_ID_MISMATCH,
                f"client_order_id {order.client_order_id!r} belongs to an order already "
                "decided (its decision is no longer kept for replay)",
                "client_order_id", remember=False,
            )  # fmt: skip
    inst = validate(order, market)
    symbol = inst.symbol
    if symbol in dropping:
        raise Reject(
            Reason.MARKET_DATA_MISSING, f"{symbol} is being removed by a market update", "symbol"
        )
    buy = _SIDE[order.side] is _BUY
    qty = float(order.quantity)
    unit = order_unit(inst, order.price, market.quotes[symbol].mark)
    units = qty * unit  # what the order reserves (exactly what apply reserves)
    signed = units if buy else -units
    ccy = pool_currency(inst, acc.segregated)
    # a pool the account doesn't have yet joins it only when an order is reserved
    pool = acc.pools.get(ccy) or AccountPool(
        market.tables[ccy], acc.method_in_use is _RULES, acc.arrays
    )
    d.pool_currency = ccy
    d.margin_method = acc.method_in_use
    # 2. trading state
    pos = pool.P.qty.get(symbol, 0.0)
    same_side = (acc.working_buy if buy else acc.working_sell).get(symbol, 0.0)
    reduces_position = pos * signed < 0.0 and same_side + units <= abs(pos) + _EPS * max(
        1.0, abs(pos)
    )
    try:
        if acc.trading_state is _HALTED:
            raise Reject(
                Reason.ACCOUNT_HALTED, acc.trading_state_reason or "account halted", "trading_state"
            )
        if acc.trading_state is _REDUCING and not reduces_position:
            raise Reject(
                Reason.ACCOUNT_REDUCING_ONLY,
                "account is REDUCING: only orders that reduce a position are allowed",
                "trading_state",
            )
        if order.reduce_only and not reduces_position:
            raise Reject(
                Reason.REDUCE_ONLY_VIOLATION,
                "reduce_only order would open or increase a position",
                "reduce_only", (abs(pos) - same_side) / unit, qty, "coin",
            )  # fmt: skip
        # 3. static limits
        if acc.limits.active:
            check_static(acc, market, order, inst, qty, units, signed, pos)
        if acc.controls is not None and acc.controls.active:  # velocity, credit, loss, groups
            controls_check.check(
                acc, market, inst, qty, units, buy, pos, order.price, reduces_position, now_ns
            )
        # 4. margin
        side_after = margin_step(acc, market, pool, symbol, buy, signed, d)
        if stale_ns > 0 and not d.risk_reducing:
            raise Reject(
                Reason.MARKET_DATA_STALE,
                f"market data v{market.version} is {stale_ns / 1e9:.3g} s past its maximum age",
                "market", 0.0, stale_ns / 1e9, "s",
            )  # fmt: skip
        # 5. latency budget: fail closed if the decision took too long
        if clock_ns() > budget_end:
            raise Reject(_LATENCY, "decision exceeded the latency budget")
    except Reject as rej:
        if d.worst_scenario is None:
            current_numbers(d, pool)
        raise rej
    return Accept(symbol, ccy, AcceptHint(pool, side_after))


def validate(order: OrderRequest, market: MarketState) -> Instrument:
    """The order's listed instrument; raises the reject of a malformed order."""
    inst = market.instruments.get(order.symbol)
    if inst is None:
        if not order.symbol:
            raise Reject(Reason.INVALID_ORDER, "symbol is required", "symbol")
        try:
            inst = parse_symbol(order.symbol)
        except InstrumentError as exc:
            raise Reject(Reason.UNKNOWN_INSTRUMENT, str(exc), "symbol") from None
        if inst.expiry is not None and inst.expiry <= market.valuation_time:
            raise Reject(
                Reason.INSTRUMENT_EXPIRED,
                f"{inst.symbol} expired at {inst.expiry.isoformat()}",
                "symbol",
            )
        # another spelling of a listed symbol resolves to the listed instrument
        inst = market.instruments.get(inst.symbol)
        if inst is None:
            raise Reject(
                Reason.UNKNOWN_INSTRUMENT,
                f"{order.symbol} is not listed in the market data",
                "symbol",
            )
    if order.side not in _SIDE:
        raise Reject(Reason.INVALID_ORDER, "side must be BUY or SELL", "side")
    if order.order_type not in _ORDER_TYPES:
        raise Reject(Reason.INVALID_ORDER, "order_type must be LIMIT or MARKET", "order_type")
    q = order.quantity
    if not (isinstance(q, _NUMBER) and math.isfinite(q) and q > 0.0):
        raise Reject(
            Reason.INVALID_ORDER,
            "quantity must be finite and positive",
            "quantity",
            actual=q if isinstance(q, float) and math.isfinite(q) else None,
        )
    p = order.price
    if p is None:
        if order.order_type == _LIMIT:
            raise Reject(Reason.INVALID_ORDER, "a LIMIT order needs a price", "price")
    elif not (math.isfinite(p) and p > 0.0):
        raise Reject(Reason.INVALID_ORDER, "price must be finite and positive", "price")
    return inst


def check_static(
    acc: Account,
    market: MarketState,
    order: OrderRequest,
    inst: Instrument,
    qty: float,
    units: float,
    signed: float,
    pos: float,
) -> None:
    """Static limits. ``qty``: the order's quantity (coin); ``units``, ``signed``, ``pos``:
    the order, signed, and the position in units (an inverse future's USD notional)."""
    symbol = inst.symbol
    lim = acc.limits
    if lim.max_order_quantity is not None and qty > lim.max_order_quantity:
        raise Reject(
            Reason.MAX_ORDER_QUANTITY, "order quantity above the limit", "quantity",
            lim.max_order_quantity, qty, "coin",
        )  # fmt: skip
    quote = market.quotes[symbol]
    if lim.max_order_notional_usd is not None:
        # an inverse future's order is its USD notional; else its coin at the index
        notional = units if inst.sized_in_usd else qty * quote.notional_usd
        if notional > lim.max_order_notional_usd:
            raise Reject(
                Reason.MAX_ORDER_NOTIONAL, "order notional above the limit", "quantity",
                lim.max_order_notional_usd, notional, "USD",
            )  # fmt: skip
    if lim.price_band_fraction is not None and order.price is not None:
        mark = quote.mark
        if not mark > 0.0:  # a worthless option: every price is infinitely far from it
            raise Reject(
                Reason.PRICE_BAND, f"price {order.price:g} is away from mark {mark:g}",
                "price", lim.price_band_fraction, None, "fraction",
            )  # fmt: skip
        dev = abs(order.price - mark) / mark
        if dev > lim.price_band_fraction:
            raise Reject(
                Reason.PRICE_BAND,
                f"price {plain(order.price)} is {dev:.1%} away from mark {plain(mark)}",
                "price", lim.price_band_fraction, dev, "fraction",
            )  # fmt: skip
    if lim.max_open_orders is not None and acc.open_orders >= lim.max_open_orders:
        raise Reject(
            Reason.MAX_OPEN_ORDERS, "too many open orders", "open_orders",
            float(lim.max_open_orders), float(acc.open_orders + 1), "orders",
        )  # fmt: skip
    plimit = lim.position_limits.get(symbol, lim.default_position_limit)
    if plimit is not None:
        working = (acc.working_buy if signed > 0 else acc.working_sell).get(symbol, 0.0)
        worst = abs(pos + (working + units) * (1.0 if signed > 0 else -1.0))
        # in coin: an inverse future's notional at the mark
        worst_coin = inst.to_quantity(worst, quote.mark)
        if worst_coin > plimit + _EPS and worst > abs(pos):
            raise Reject(
                Reason.POSITION_LIMIT, "position limit would be exceeded", "quantity",
                plimit, worst_coin, "coin",
            )  # fmt: skip


def margin_step(
    acc: Account,
    market: MarketState,
    pool: AccountPool,
    symbol: str,
    buy: bool,
    signed: float,
    d: Decision,
) -> tuple[float, float, tuple[int, int, float]]:
    """Fill the decision's margin numbers; reject if short of margin. Returns the side's
    (IM, MM, scenario key) after the order."""
    state = pool.B if buy else pool.S
    equity = pool.equity
    im_before = pool.im
    side_im_before = pool.im_B if buy else pool.im_S
    out = state.whatif_out(symbol, signed)
    side_im, side_mm, key = side_figures(out)
    if acc.method_in_use is _RULES:
        coef = market.rules_coefficients(pool.currency, symbol)
        r = pool.rules["B" if buy else "S"]
        q0 = state.qty.get(symbol, 0.0)
        im0, mm0 = RulesTotals.leg(coef, q0)
        im1, mm1 = RulesTotals.leg(coef, q0 + signed)
        # the same arithmetic as the totals' own update when the order is applied
        side_im, side_mm = r.im + (im1 - im0), r.mm + (mm1 - mm0)
    if buy:
        other_im, other_mm, other_key = pool.im_S, pool.mm_S, pool.scen_S
    else:
        other_im, other_mm, other_key = pool.im_B, pool.mm_B, pool.scen_B
    im_after = max(side_im, other_im)
    d.initial_margin_before, d.initial_margin_after = im_before, im_after
    d.maintenance_margin_before, d.maintenance_margin_after = pool.mm, max(side_mm, other_mm)
    d.equity_before = d.equity_after = equity
    # name the scenario that sets IM after: the other side's when it binds
    d.worst_scenario = scenario_info(pool.table, key if other_im <= side_im else other_key)
    d.risk_reducing = side_im < side_im_before - _EPS * max(1.0, side_im_before)
    # written so that a NaN margin on either side, or an infinite equity, fails closed
    if not (side_im <= equity and other_im <= equity and equity < _INF) and not d.risk_reducing:
        if acc.method_in_use is not _RULES and wanted():  # the legs behind the scenario
            other = pool.S if buy else pool.B
            d.attribution = (
                explain_side(state, out, symbol, signed)
                if other_im <= side_im
                else explain_state(other)
            )
        raise Reject(
            Reason.INSUFFICIENT_MARGIN,
            f"initial margin after {money(im_after, pool.currency)} exceeds equity "
            f"{money(equity, pool.currency)}",
            "initial_margin", equity, im_after, pool.currency,
        )  # fmt: skip
    return side_im, side_mm, key


def current_numbers(d: Decision, pool: AccountPool) -> None:
    """A reject before the margin step still carries the account's margin, equity and worst
    scenario; nothing changes, so before = after."""
    d.initial_margin_before = d.initial_margin_after = pool.im
    d.maintenance_margin_before = d.maintenance_margin_after = pool.mm
    d.equity_before = d.equity_after = pool.equity
    d.worst_scenario = scenario_info(
        pool.table, pool.scen_B if pool.im_B >= pool.im_S else pool.scen_S
    )


def max_side(probe: Callable[[float], Decision]) -> tuple[float, Reason]:
    """The largest quantity ``probe`` accepts (doubling, then bisection), and what stops it."""
    lo, hi = 0.0, 1e-3
    first = probe(hi)
    if not first.accepted:
        # even a tiny order fails: bisect down toward zero
        reason = first.reason
        hi_bad = hi
        for _ in range(60):
            mid = (lo + hi_bad) / 2.0
            if mid <= 0.0:
                break
            if probe(mid).accepted:
                lo = mid
            else:
                hi_bad = mid
        return lo, reason
    reason = Reason.ACCEPTED
    lo = hi
    while True:
        hi = lo * 2.0
        dec = probe(hi)
        if not dec.accepted:
            reason = dec.reason
            break
        lo = hi
        if hi > 1e12:
            return hi, Reason.ACCEPTED
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if mid <= lo or mid >= hi:
            break
        dec = probe(mid)
        if dec.accepted:
            lo = mid
        else:
            hi = mid
            reason = dec.reason
        if hi - lo <= 1e-12 * hi:
            break
    return lo, reason
