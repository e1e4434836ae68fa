"""The controls' decision step, inside the decision flow's static-limits stage: per-class
limits, the day's loss, then velocity and credit of the account and of every enclosing
group. Reads the book only; O(1) per order and per group (no loop over positions)."""

from __future__ import annotations

from riskgate.domain.instruments import Instrument
from riskgate.domain.units import plain
from riskgate.engine import decide as _decide
from riskgate.engine.book import Account
from riskgate.engine.controls.model import (
    KIND_CLASS,
    MICRO,
    AccountControls,
    ControlLimits,
    Group,
    Scope,
)
from riskgate.engine.controls.track import usd_per_unit
from riskgate.engine.market import MarketState
from riskgate.engine.types import Reason
from riskgate.models.risk_table import USD

_EPS = 1e-12
_VELOCITY, _CREDIT, _GROUP = Reason.VELOCITY_LIMIT, Reason.CREDIT_LIMIT, Reason.GROUP_LIMIT


def instrument_class(inst: Instrument) -> str:
    return KIND_CLASS[inst.kind]


def window_unit(what: str, window_ns: int) -> str:
    return f"{what}/{plain(window_ns / 1e9)}s"


def check(
    acc: Account,
    market: MarketState,
    inst: Instrument,
    qty: float,
    units: float,
    buy: bool,
    pos: float,
    price: float | None,
    reduces_position: bool,
    now_ns: int,
) -> None:
    """Raise the :class:`~riskgate.engine.decide.Reject` of the first control the order breaks. ``units``: what it
    reserves (an inverse future's USD notional), ``pos``: the position in units.

    Runs for every order: it reads the account's flattened plans (``plan_*``, see
    :meth:`AccountControls.replan`) and inlines the short helpers it would otherwise call."""
    st: AccountControls = acc.controls  # type: ignore[assignment]
    symbol = inst.symbol
    pc = st.plan_class
    if pc is not None:
        cls, cap, band = pc[inst.kind]
        if cap is not None and qty > cap:
            raise _decide.Reject(
                Reason.MAX_ORDER_QUANTITY, f"order quantity above the {cls} limit",
                f"quantity[{cls}]", cap, qty, "coin",
            )  # fmt: skip
        if band is not None and price is not None:
            _price_band(cls, band, inst, market.quotes[symbol], price)
    loss = st.plan_loss
    if loss is not None and not reduces_position:
        m = acc.market
        if m is None:
            pnl = 0.0
        else:  # equity_usd, inline (same sum, same order)
            equity = 0.0
            for ccy, pool in acc.pools.items():
                equity += pool.equity * (1.0 if ccy == USD else m.snapshot.index(ccy))
            pnl = equity - st.baseline_usd
        if pnl < -loss:
            raise _decide.Reject(
                Reason.LOSS_LIMIT,
                f"day's loss {plain(-pnl)} USD is past the limit {plain(loss)}",
                "day_pnl", -loss, pnl, "USD",
            )  # fmt: skip
    # velocity: a window's count is its running total while the newest bucket is current
    for w, width, cap, sc in st.plan_orders:
        n = w.count if now_ns // width <= w.last else w.usage(now_ns)[0]
        if n >= cap:
            _velocity_reject(sc, n + 1)
    notional, credit = st.plan_notional, st.plan_credit
    if not (notional or credit):
        return
    n_usd = market.units_usd.get(symbol)
    if n_usd is None:
        n_usd = usd_per_unit(market, symbol)
    if notional:
        amount = round(units * n_usd * MICRO)
        for w, width, cap, sc in notional:
            total = w.total if now_ns // width <= w.last else w.usage(now_ns)[1]
            if total + amount > cap:
                _notional_reject(sc, total + amount)
    if credit:
        # no usage moves by more than the order's notional: far from every limit (the
        # common case) the exact change need not be computed
        bound = units * n_usd * MICRO
        for e, gross_cap, net_cap, _ in credit:
            if (gross_cap is not None and e.gross + bound > gross_cap) or (
                net_cap is not None
                and (abs(e.net_buy) + bound > net_cap or abs(e.net_sell) + bound > net_cap)
            ):
                _credit_exact(acc, st, symbol, units, buy, pos, n_usd)
                break


def _credit_exact(
    acc: Account, st: AccountControls, symbol: str, units: float, buy: bool, pos: float,
    n_usd: float,
) -> None:  # fmt: skip
    """The order's exact change of each credit usage, against every credit limit."""
    wb = acc.working_buy.get(symbol, 0.0)
    ws = acc.working_sell.get(symbol, 0.0)
    # in micro-USD (floats: within a micro-USD of apply's integer arithmetic)
    n = n_usd * MICRO
    b, s = pos + wb, pos - ws
    g0 = max(abs(b), abs(s))
    if buy:
        b1 = pos + (wb + units)
        dg, db, ds = (max(abs(b1), abs(s)) - g0) * n, (b1 - b) * n, 0.0
    else:
        s1 = pos - (ws + units)
        dg, db, ds = (max(abs(b), abs(s1)) - g0) * n, 0.0, (s1 - s) * n
    for e, gross_cap, net_cap, sc in st.plan_credit:
        # an order that does not raise a usage (it reduces a position) passes
        if gross_cap is not None and dg > 0 and e.gross + dg > gross_cap:
            _credit_reject(sc, "gross_notional", e.gross + dg)
        if net_cap is not None and (db or ds):
            after = max(abs(e.net_buy + db), abs(e.net_sell + ds))
            if after > net_cap and after > e.net:
                _credit_reject(sc, "net_notional", after)


def _name(sc: Scope, limit: str, reason: Reason) -> tuple[Reason, str]:
    """The account's own ``reason``, or GROUP_LIMIT naming the group."""
    if not isinstance(sc, Group):
        return reason, limit
    return _GROUP, f"group {sc.group_id}: {limit}"


def _velocity_reject(sc: Scope, count: int) -> None:
    sl: ControlLimits = sc.limits  # type: ignore[assignment]
    reason, field = _name(sc, "orders_per_window", _VELOCITY)
    raise _decide.Reject(
        reason,
        f"{field}: {count} orders would exceed {sl.max_orders} per "
        f"{plain(sl.orders_window_ns / 1e9)} s",
        field, float(sl.max_orders), float(count),  # type: ignore[arg-type]
        window_unit("orders", sl.orders_window_ns),
    )  # fmt: skip


def _notional_reject(sc: Scope, after: int) -> None:
    sl: ControlLimits = sc.limits  # type: ignore[assignment]
    reason, field = _name(sc, "notional_per_window", _VELOCITY)
    raise _decide.Reject(
        reason,
        f"{field}: {plain(after / MICRO)} USD would exceed {plain(sl.max_notional_usd)}"  # type: ignore[arg-type]
        f" per {plain(sl.notional_window_ns / 1e9)} s",
        field, sl.max_notional_usd, after / MICRO, window_unit("USD", sl.notional_window_ns),
    )  # fmt: skip


def _credit_reject(sc: Scope, limit: str, after: int) -> None:
    sl: ControlLimits = sc.limits  # type: ignore[assignment]
    cap = sl.max_gross_usd if limit == "gross_notional" else sl.max_net_usd
    reason, field = _name(sc, limit, _CREDIT)
    raise _decide.Reject(
        reason, f"{field}: {plain(after / MICRO)} USD would exceed the limit {plain(cap)}",  # type: ignore[arg-type]
        field, cap, after / MICRO, "USD",
    )  # fmt: skip


def _price_band(cls: str, band: float, inst: Instrument, quote, price: float) -> None:
    mark = quote.mark
    if cls == "option":
        # a fraction of the underlying: |price - mark| in USD per coin over the index
        dev = abs(price - mark) * quote.usd_per_quote / quote.notional_usd * inst.multiplier
        unit = "fraction of underlying"
    else:
        if not mark > 0.0:
            raise _decide.Reject(Reason.PRICE_BAND, f"mark {mark:g} is not positive", "price", band)
        dev = abs(price - mark) / mark
        unit = "fraction"
    if dev > band + _EPS:
        raise _decide.Reject(
            Reason.PRICE_BAND,
            f"price {plain(price)} is {dev:.2%} away from mark {plain(mark)} ({unit}, {cls})",
            f"price[{cls}]", band, dev, unit,
        )  # fmt: skip
