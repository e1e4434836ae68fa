"""Proto (``riskgate.v1``) <-> engine conversion: mapping only, no decisions.

The engine's enums carry the proto's numbers, so enums convert by value. Presence of
``optional`` fields is mapped to ``None``; every value check (NaN, sign, unknown symbol...)
is the engine's job. The only checks made here are about the shape of a request that the
engine cannot see (a missing ``order`` message, a missing ``event`` oneof, an enum number
the engine does not define); they raise :class:`~riskgate.engine.types.EngineError`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from riskgate.domain.instruments import Instrument, Kind
from riskgate.engine import types as et
from riskgate.engine.controls import codec as control_codec
from riskgate.engine.market import MarketState
from riskgate.engine.types import invalid
from riskgate.server.validate import clip_message
from riskgate.v1 import riskgate_pb2 as pb

__all__ = [
    "account_view_to_proto",
    "decision_to_proto",
    "event_ack_to_proto",
    "fill_decision",
    "instruments_to_proto",
    "internal_error_decision",
    "limits_from_proto",
    "limits_to_proto",
    "margin_method_from_proto",
    "market_update_to_proto",
    "max_quantity_to_proto",
    "order_event_from_proto",
    "order_from_proto",
    "orders_from_proto",
    "pool_mode_from_proto",
    "positions_from_proto",
    "status_event_to_proto",
    "timestamp_from_ns",
    "trading_state_from_proto",
    "valuation_time_from_proto",
]


# ---- order path ---------------------------------------------------------------------------


def order_from_proto(o: pb.Order) -> et.OrderRequest:
    """Hot path: one ``Order`` -> ``OrderRequest``. Side and order type stay plain ints (the
    engine rejects UNSPECIFIED or unknown numbers as INVALID_ORDER, naming the field)."""
    return et.OrderRequest(
        o.account_id,
        o.client_order_id,
        o.symbol,
        o.side,
        o.quantity,
        o.price if o.HasField("price") else None,
        o.order_type,
        o.reduce_only,
        o.time_in_force,
    )


def orders_from_proto(orders: Any) -> list[et.OrderRequest]:
    return [order_from_proto(o) for o in orders]


# ---- instruments ---------------------------------------------------------------------------

# the proto's InstrumentKind numbers are the engine's Kind numbers + 1 (0 = any kind)
_KIND_TO_PROTO = {k: k.value + 1 for k in Kind}


def instruments_to_proto(
    market: MarketState, underlying: str, kind: int
) -> pb.ListInstrumentsResponse:
    """The market's instruments, filtered by coin (``""``: any) and proto kind (0: any)."""
    coin = underlying.strip().upper()

    def order(inst: Instrument) -> tuple:
        expiry = inst.expiry.timestamp() if inst.expiry is not None else 0.0
        return (inst.underlying, inst.kind, expiry, inst.strike_usd, inst.symbol)

    listed = sorted(
        (
            inst
            for inst in market.instruments.values()
            if (not coin or inst.underlying == coin)
            and (not kind or _KIND_TO_PROTO[inst.kind] == kind)
        ),
        key=order,
    )
    resp = pb.ListInstrumentsResponse(market_version=market.version)
    resp.valuation_time.FromDatetime(market.valuation_time)
    for inst in listed:
        msg = resp.instruments.add(
            symbol=inst.symbol,
            kind=_KIND_TO_PROTO[inst.kind],
            underlying=inst.underlying,
            settlement=pb.SETTLEMENT_INVERSE if inst.is_inverse else pb.SETTLEMENT_LINEAR,
            strike_usd=inst.strike_usd if inst.is_option else 0.0,
            multiplier=inst.multiplier,
            mark_price=market.quotes[inst.symbol].mark,
            quote_currency=inst.quote_currency,
        )
        if inst.expiry is not None:
            msg.expiry.FromDatetime(inst.expiry)
        if inst.is_option:
            msg.implied_vol = market.snapshot.implied_vol(inst)
    return resp


def _scenario(s: et.ScenarioInfo) -> pb.Scenario:
    return pb.Scenario(
        index=s.index if s.index > 0 else 0,
        price_move_fraction=s.price_move_fraction,
        vol_move=s.vol_move,
        pool_currency=s.pool_currency,
        underlying=s.underlying,
        loss=s.loss,
        price_moves=dict(s.price_moves),
        name=s.name,
    )


def decision_to_proto(d: et.Decision) -> pb.Decision:
    """Hot path: engine ``Decision`` -> proto ``Decision`` (context only on rejects).

    When this thread just journaled ``d`` (see :func:`share_decision`), the message built
    for the journal record is the reply: it was filled from ``d`` by :func:`fill_decision`
    as this would fill it."""
    shared = _shared.__dict__
    if shared.get("d") is d:
        shared["d"] = None  # one reply per journaled decision
        return shared["msg"]
    return fill_decision(pb.Decision(), d)


_shared = threading.local()


def share_decision(d: et.Decision, msg: pb.Decision) -> None:
    """The journal filled ``msg`` from ``d`` (which no one changes any more) on this
    thread: the reply that follows may send it instead of building its own."""
    shared = _shared.__dict__
    shared["d"], shared["msg"] = d, msg


def fill_decision(msg: pb.Decision, d: et.Decision) -> pb.Decision:
    """Write ``d`` into an empty ``msg`` (e.g. a batch reply's ``decisions.add()``, which
    saves copying a finished message into the repeated field).

    Fields are assigned one by one: measured ~40 % faster than keyword construction plus a
    copied ``Scenario`` sub-message."""
    msg.account_id = d.account_id
    msg.client_order_id = d.client_order_id
    msg.accepted = d.accepted
    msg.reason = d.reason
    msg.initial_margin_before = d.initial_margin_before
    msg.initial_margin_after = d.initial_margin_after
    msg.maintenance_margin_before = d.maintenance_margin_before
    msg.maintenance_margin_after = d.maintenance_margin_after
    msg.equity_before = d.equity_before
    msg.equity_after = d.equity_after
    msg.pool_currency = d.pool_currency
    if d.risk_reducing:  # proto3 defaults are not sent: only the true flags need setting
        msg.risk_reducing = True
    if d.duplicate:
        msg.duplicate = True
    msg.margin_method = d.margin_method
    msg.compute_ns = d.compute_ns
    msg.market_version = d.market_version
    s = d.worst_scenario
    if s is not None:
        ws = msg.worst_scenario
        ws.index = s.index if s.index > 0 else 0
        ws.price_move_fraction = s.price_move_fraction
        ws.vol_move = s.vol_move
        ws.pool_currency = s.pool_currency
        ws.underlying = s.underlying
        ws.loss = s.loss
        if s.price_moves:
            ws.price_moves.update(s.price_moves)
        if s.name:
            ws.name = s.name
    if d.attribution:
        add = msg.attribution.add
        for symbol, quantity, pnl in d.attribution:
            add(symbol=symbol, quantity=quantity, pnl=pnl)
    if d.detail:
        msg.detail = clip_message(d.detail)  # quotes at most a short prefix of a bad value
    if not d.accepted:
        ctx = msg.context
        ctx.field = d.context_field
        ctx.unit = d.context_unit
        if d.context_limit is not None:
            ctx.limit_value = d.context_limit
        if d.context_actual is not None:
            ctx.actual_value = d.context_actual
    return msg


def internal_error_decision(order: et.OrderRequest, detail: str) -> et.Decision:
    """The fail-closed answer when the engine raised unexpectedly (nothing was reserved)."""
    return et.Decision(
        order.account_id, order.client_order_id, False, et.Reason.INTERNAL_ERROR, detail
    )


def max_quantity_to_proto(r: et.MaxQuantityResult) -> pb.MaxQuantityResponse:
    return pb.MaxQuantityResponse(
        account_id=r.account_id,
        symbol=r.symbol,
        max_buy_quantity=r.max_buy_quantity,
        max_sell_quantity=r.max_sell_quantity,
        buy_limited_by=r.buy_limited_by,
        sell_limited_by=r.sell_limited_by,
        compute_ns=r.compute_ns,
        market_version=r.market_version,
    )


# ---- order lifecycle ----------------------------------------------------------------------


def order_event_from_proto(ev: pb.OrderEvent) -> et.OrderEventBody:
    """The ``event`` oneof -> an engine event body; INVALID_ARGUMENT if it is not set."""
    which = ev.WhichOneof("event")
    if which == "acknowledged":
        return et.Acknowledged(ev.acknowledged.venue_order_id)
    if which == "venue_rejected":
        return et.VenueRejected(ev.venue_rejected.reason)
    if which == "cancelled":
        return et.Cancelled()
    if which == "expired":
        return et.Expired()
    if which == "amended":
        a = ev.amended
        has_q, has_p = a.HasField("new_quantity"), a.HasField("new_price")
        if not (has_q or has_p):
            raise invalid("amended: at least one of new_quantity and new_price is required")
        return et.Amended(
            a.new_quantity if has_q else None,
            a.new_price if has_p else None,
        )
    if which == "filled":
        f = ev.filled
        return et.Filled(f.fill_quantity, f.fill_price, f.fill_id)
    raise invalid(
        "event: missing (one of acknowledged, venue_rejected, cancelled, expired, amended, filled)"
    )


def event_ack_to_proto(a: et.EventAck) -> pb.OrderEventAck:
    return pb.OrderEventAck(
        account_id=a.account_id,
        client_order_id=a.client_order_id,
        duplicate=a.duplicate,
        order_status=a.order_status,
        filled_quantity=a.filled_quantity,
        working_quantity=a.working_quantity,
    )


# ---- administration -----------------------------------------------------------------------


def _enum_from_proto(value: int, enum: type, field: str) -> Any:
    """0 (UNSPECIFIED) -> None; a defined number -> the engine enum; else INVALID_ARGUMENT."""
    if value == 0:
        return None
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(m.name for m in enum)
        raise invalid(f"{field}: unknown value {value} (expected {names})") from None


def pool_mode_from_proto(value: int) -> et.PoolMode | None:
    return _enum_from_proto(value, et.PoolMode, "pool_mode")


def margin_method_from_proto(value: int) -> et.MarginMethod | None:
    return _enum_from_proto(value, et.MarginMethod, "margin_method")


def trading_state_from_proto(value: int) -> et.TradingState:
    state = _enum_from_proto(value, et.TradingState, "state")
    if state is None:
        raise invalid("state: missing (ACTIVE, REDUCING or HALTED)")
    return state


def limits_from_proto(msg: pb.Limits, defaults: et.Limits) -> et.Limits:
    """A present ``Limits`` message: absent fields take the server's configured defaults."""

    def pick(name: str) -> Any:
        return getattr(msg, name) if msg.HasField(name) else getattr(defaults, name)

    return et.Limits(
        max_order_quantity=pick("max_order_quantity"),
        max_order_notional_usd=pick("max_order_notional_usd"),
        price_band_fraction=pick("price_band_fraction"),
        max_open_orders=pick("max_open_orders"),
        default_position_limit=pick("default_position_limit"),
        position_limits=(
            dict(msg.position_limits) if msg.position_limits else dict(defaults.position_limits)
        ),
        controls=(
            control_codec.limits_from_proto(msg.controls)
            if msg.HasField("controls")
            else defaults.controls
        ),
    )


def limits_to_proto(lim: et.Limits) -> pb.Limits:
    """Engine limits (``None`` = no limit) -> proto (absent = no limit)."""
    msg = pb.Limits(position_limits=lim.position_limits)
    if lim.max_order_quantity is not None:
        msg.max_order_quantity = lim.max_order_quantity
    if lim.max_order_notional_usd is not None:
        msg.max_order_notional_usd = lim.max_order_notional_usd
    if lim.price_band_fraction is not None:
        msg.price_band_fraction = lim.price_band_fraction
    if lim.max_open_orders is not None:
        msg.max_open_orders = lim.max_open_orders
    if lim.default_position_limit is not None:
        msg.default_position_limit = lim.default_position_limit
    if lim.controls is not None:
        msg.controls.CopyFrom(control_codec.limits_to_proto(lim.controls))
    return msg


def positions_from_proto(positions: Any) -> list[tuple[str, float, float | None]]:
    return [
        (p.symbol, p.quantity, p.avg_price if p.HasField("avg_price") else None) for p in positions
    ]


def valuation_time_from_proto(req: pb.UpdateMarketRequest) -> datetime | None:
    if not req.HasField("valuation_time"):
        return None
    try:
        return req.valuation_time.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise invalid(f"valuation_time: {exc}") from None


def market_update_to_proto(r: et.MarketUpdateResult) -> pb.UpdateMarketResponse:
    return pb.UpdateMarketResponse(
        market_version=r.market_version,
        accounts_remargined=r.accounts_remargined,
        compute_ns=r.compute_ns,
    )


# ---- queries and monitoring ---------------------------------------------------------------


def timestamp_from_ns(ns: int) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(ns)
    return ts


def _pool_to_proto(p: et.PoolView) -> pb.PoolView:
    msg = pb.PoolView(
        currency=p.currency,
        equity=p.equity,
        initial_margin=p.initial_margin,
        maintenance_margin=p.maintenance_margin,
        add_ons=p.add_ons,
        margin_status=p.margin_status,
        margin_method=p.margin_method,
    )
    if p.worst_scenario is not None:
        msg.worst_scenario.CopyFrom(_scenario(p.worst_scenario))
    return msg


def _position_to_proto(p: et.PositionView) -> pb.PositionView:
    msg = pb.PositionView(
        symbol=p.symbol,
        quantity=p.quantity,
        mark_price=p.mark_price,
        value=p.value,
        pool_currency=p.pool_currency,
    )
    if p.avg_price is not None:
        msg.avg_price = p.avg_price
    if p.notional_usd is not None:
        msg.notional_usd = p.notional_usd
    return msg


def _working_order_to_proto(o: et.WorkingOrderView) -> pb.WorkingOrder:
    msg = pb.WorkingOrder(
        client_order_id=o.client_order_id,
        symbol=o.symbol,
        side=o.side,
        order_type=o.order_type,
        quantity=o.quantity,
        filled_quantity=o.filled_quantity,
        working_quantity=o.working_quantity,
        reduce_only=o.reduce_only,
        status=o.status,
        venue_order_id=o.venue_order_id,
        accepted_time=timestamp_from_ns(o.accepted_time_ns),
        time_in_force=o.time_in_force,
    )
    if o.price is not None:
        msg.price = o.price
    return msg


def account_view_to_proto(v: et.AccountView) -> pb.AccountView:
    msg = pb.AccountView(
        account_id=v.account_id,
        trading_state=v.trading_state,
        trading_state_reason=v.trading_state_reason,
        pool_mode=v.pool_mode,
        margin_method=v.margin_method,
        margin_status=v.margin_status,
        equity_usd=v.equity_usd,
        initial_margin_usd=v.initial_margin_usd,
        maintenance_margin_usd=v.maintenance_margin_usd,
        pools=[_pool_to_proto(p) for p in v.pools],
        positions=[_position_to_proto(p) for p in v.positions],
        working_orders=[_working_order_to_proto(o) for o in v.working_orders],
        collateral=v.collateral,
        limits=limits_to_proto(v.limits),
        market_version=v.market_version,
        valuation_time=timestamp_from_ns(v.valuation_time_ns),
    )
    if v.worst_scenario is not None:
        msg.worst_scenario.CopyFrom(_scenario(v.worst_scenario))
    if v.controls is not None:
        msg.controls.CopyFrom(control_codec.controls_view_to_proto(v.controls))
    return msg


def status_event_to_proto(e: et.MarginStatusEvent, current: bool = False) -> pb.MarginStatusEvent:
    """``current``: an ``include_current`` snapshot, whose previous_status is UNSPECIFIED."""
    m = pb.MarginStatusEvent(
        account_id=e.account_id,
        previous_status=0 if current else e.previous_status,
        status=e.status,
        pool_currency=e.pool_currency,
        equity=e.equity,
        initial_margin=e.initial_margin,
        maintenance_margin=e.maintenance_margin,
        time=timestamp_from_ns(e.time_ns),
        market_version=e.market_version,
    )
    control_codec.alert_to_proto(m, e)
    return m
