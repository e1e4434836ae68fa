"""The controls' decision step, inside the decision flow's static-limits stage: per-class
limits, the day's loss, then velocity and credit of the account and of every enclosing
group. Reads the book only; O(1) per order and per group (no loop over positions)."""

from __future__ import annotations

from riskgate.domain.instruments import Instrument, Kind
from riskgate.domain.units import plain
from riskgate.engine import decide as _decide
from riskgate.engine.book import Account
from riskgate.engine.controls.model import (
    MICRO,
    AccountControls,
    ControlLimits,
    Group,
    Scope,
    micro,
)
from riskgate.engine.controls.track import contrib, day_pnl_usd, unit_usd
from riskgate.engine.market import MarketState
from riskgate.engine.types import Reason

_EPS = 1e-12
_CLASS = {Kind.CALL: "option", Kind.PUT: "option", Kind.FUTURE: "future",
          Kind.PERPETUAL: "future", Kind.SPOT: "spot"}  # fmt: skip
_VELOCITY, _CREDIT, _GROUP = Reason.VELOCITY_LIMIT, Reason.CREDIT_LIMIT, Reason.GROUP_LIMIT


def instrument_class(inst: Instrument) -> str:
    return _CLASS[inst.kind]


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
    reserves (an inverse future's USD notional), ``pos``: the position in units."""
    st: AccountControls = acc.controls  # type: ignore[assignment]
    symbol = inst.symbol
    quote = market.quotes[symbol]
    lim = st.limits
    if lim is not None:
        if lim.class_max_quantity or lim.class_price_band:
            _class_limits(lim, inst, quote, qty, price)
        if lim.max_loss_usd is not None and not reduces_position:
            pnl = day_pnl_usd(acc, st)
            if pnl < -lim.max_loss_usd:
                raise _decide.Reject(
                    Reason.LOSS_LIMIT,
                    f"day's loss {plain(-pnl)} USD is past the limit {plain(lim.max_loss_usd)}",
                    "day_pnl", -lim.max_loss_usd, pnl, "USD",
                )  # fmt: skip
    n = unit_usd(inst, quote)
    amount = micro(units * n)
    delta = None  # the order's change of (gross, net buy, net sell), computed once if needed
    for sc in (st, *st.groups):
        sl = sc.limits
        if sl is None:
            continue
        if sc.orders_window is not None or sc.notional_window is not None:
            _velocity(sc, sl, amount, now_ns)
        if sl.max_gross_usd is not None or sl.max_net_usd is not None:
            if delta is None:
                wb = acc.working_buy.get(symbol, 0.0)
                ws = acc.working_sell.get(symbol, 0.0)
                g0, b0, s0 = contrib(pos, wb, ws, n)
                g1, b1, s1 = (
                    contrib(pos, wb + units, ws, n) if buy else contrib(pos, wb, ws + units, n)
                )
                delta = (g1 - g0, b1 - b0, s1 - s0)
            _credit(sc, sl, *delta)


def _name(sc: Scope, limit: str, reason: Reason) -> tuple[Reason, str]:
    """The account's own ``reason``, or GROUP_LIMIT naming the group."""
    if not isinstance(sc, Group):
        return reason, limit
    return _GROUP, f"group {sc.group_id}: {limit}"


def _velocity(sc: Scope, sl: ControlLimits, amount: int, now_ns: int) -> None:
    w = sc.orders_window
    if w is not None:
        count, _ = w.usage(now_ns)
        if count + 1 > sl.max_orders:  # type: ignore[operator]
            unit = window_unit("orders", sl.orders_window_ns)
            reason, field = _name(sc, "orders_per_window", _VELOCITY)
            raise _decide.Reject(
                reason,
                f"{field}: {count + 1} orders would exceed {sl.max_orders} per "
                f"{plain(sl.orders_window_ns / 1e9)} s",
                field, float(sl.max_orders), float(count + 1), unit,  # type: ignore[arg-type]
            )  # fmt: skip
    w = sc.notional_window
    if w is not None:
        _, total = w.usage(now_ns)
        after = total + amount
        if after > sl.max_notional_usd * MICRO:  # type: ignore[operator]
            unit = window_unit("USD", sl.notional_window_ns)
            reason, field = _name(sc, "notional_per_window", _VELOCITY)
            raise _decide.Reject(
                reason,
                f"{field}: {plain(after / MICRO)} USD would exceed {plain(sl.max_notional_usd)}"
                f" per {plain(sl.notional_window_ns / 1e9)} s",
                field, sl.max_notional_usd, after / MICRO, unit,
            )  # fmt: skip


def _credit(sc: Scope, sl: ControlLimits, dg: int, db: int, ds: int) -> None:
    """Reject an order that takes a credit usage above its limit; one that does not raise
    the usage (it reduces a position) passes whatever the usage."""
    e = sc.exposure
    if sl.max_gross_usd is not None and dg > 0:
        after = e.gross + dg
        if after > sl.max_gross_usd * MICRO:
            reason, field = _name(sc, "gross_notional", _CREDIT)
            raise _decide.Reject(
                reason, f"{field}: {plain(after / MICRO)} USD would exceed the limit "
                f"{plain(sl.max_gross_usd)}", field, sl.max_gross_usd, after / MICRO, "USD",
            )  # fmt: skip
    if sl.max_net_usd is not None and (db or ds):
        before = e.net
        after = max(abs(e.net_buy + db), abs(e.net_sell + ds))
        if after > before and after > sl.max_net_usd * MICRO:
            reason, field = _name(sc, "net_notional", _CREDIT)
            raise _decide.Reject(
                reason, f"{field}: {plain(after / MICRO)} USD would exceed the limit "
                f"{plain(sl.max_net_usd)}", field, sl.max_net_usd, after / MICRO, "USD",
            )  # fmt: skip


def _class_limits(
    lim: ControlLimits, inst: Instrument, quote, qty: float, price: float | None
) -> None:
    cls = _CLASS[inst.kind]
    cap = lim.class_max_quantity.get(cls)
    if cap is not None and qty > cap:
        raise _decide.Reject(
            Reason.MAX_ORDER_QUANTITY, f"order quantity above the {cls} limit",
            f"quantity[{cls}]", cap, qty, "coin",
        )  # fmt: skip
    band = lim.class_price_band.get(cls)
    if band is None or price is None:
        return
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
