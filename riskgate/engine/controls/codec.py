"""The controls' limits, events and state <-> their protobuf messages (riskgate.proto's
``ControlLimits``, events.proto's control events and snapshot state). Integers of micro-USD
travel as decimal strings: exact at any size."""

from __future__ import annotations

from riskgate.engine import events as ev
from riskgate.engine.book import Account, Book
from riskgate.engine.controls.model import (
    BUCKETS,
    AccountControls,
    ControlLimits,
    Group,
    RateWindow,
    Scope,
)
from riskgate.engine.types import TradingState
from riskgate.v1 import events_pb2 as epb
from riskgate.v1 import riskgate_pb2 as pb

_MS = 1_000_000


def limits_to_proto(lim: ControlLimits) -> pb.ControlLimits:
    m = pb.ControlLimits(
        orders_window_ms=lim.orders_window_ns // _MS,
        notional_window_ms=lim.notional_window_ns // _MS,
        loss_action=int(lim.loss_action),
        class_max_quantity=lim.class_max_quantity,
        class_price_band=lim.class_price_band,
    )
    for name, field in (
        ("max_orders", "max_orders"), ("max_notional_usd", "max_notional_usd"),
        ("max_gross_usd", "max_gross_notional_usd"), ("max_net_usd", "max_net_notional_usd"),
        ("credit_warning_fraction", "credit_warning_fraction"),
        ("max_loss_usd", "max_daily_loss_usd"),
    ):  # fmt: skip
        v = getattr(lim, name)
        if v is not None:
            setattr(m, field, v)
    return m


def limits_from_proto(m: pb.ControlLimits) -> ControlLimits:
    def opt(field: str):
        return getattr(m, field) if m.HasField(field) else None

    return ControlLimits(
        max_orders=opt("max_orders"),
        orders_window_ns=(m.orders_window_ms if m.HasField("orders_window_ms") else 1000) * _MS,
        max_notional_usd=opt("max_notional_usd"),
        notional_window_ns=(
            (m.notional_window_ms if m.HasField("notional_window_ms") else 60_000) * _MS
        ),
        max_gross_usd=opt("max_gross_notional_usd"),
        max_net_usd=opt("max_net_notional_usd"),
        credit_warning_fraction=opt("credit_warning_fraction"),
        max_loss_usd=opt("max_daily_loss_usd"),
        loss_action=TradingState(m.loss_action) if m.loss_action else TradingState.REDUCING,
        class_max_quantity=dict(sorted(m.class_max_quantity.items())),
        class_price_band=dict(sorted(m.class_price_band.items())),
    )


# ------------------------------------------------------------------ events


def event_to_proto(msg: epb.Event, e: ev.Event) -> bool:
    """Fill ``msg``'s body for a control event; False for any other event."""
    if isinstance(e, ev.GroupUpserted):
        m = msg.group_upserted
        m.group_id = e.group_id
        if e.parent_id is not None:
            m.parent_id = e.parent_id
        if e.limits is not None:
            m.limits.CopyFrom(limits_to_proto(e.limits))
    elif isinstance(e, ev.AccountGroupSet):
        msg.account_group_set.account_id = e.account_id
        msg.account_group_set.group_id = e.group_id
    elif isinstance(e, ev.LossLimitTripped):
        msg.loss_limit_tripped.CopyFrom(
            epb.LossLimitTripped(
                group=e.group, scope_id=e.scope_id, state=int(e.state), pnl_usd=e.pnl_usd,
                limit_usd=e.limit_usd, reason=e.reason,
            )
        )  # fmt: skip
    elif isinstance(e, ev.TradingDayStarted):
        msg.trading_day_started.day_start_ns = e.day_start_ns
    else:
        return False
    return True


def event_from_proto(msg: epb.Event, which: str | None) -> ev.Event | None:
    if which == "group_upserted":
        m = msg.group_upserted
        return ev.GroupUpserted(
            m.group_id, m.parent_id if m.HasField("parent_id") else None,
            limits_from_proto(m.limits) if m.HasField("limits") else None,
        )  # fmt: skip
    if which == "account_group_set":
        return ev.AccountGroupSet(msg.account_group_set.account_id, msg.account_group_set.group_id)
    if which == "loss_limit_tripped":
        m = msg.loss_limit_tripped
        return ev.LossLimitTripped(
            m.group, m.scope_id, TradingState(m.state), m.pnl_usd, m.limit_usd, m.reason
        )
    if which == "trading_day_started":
        return ev.TradingDayStarted(msg.trading_day_started.day_start_ns)
    return None


# ------------------------------------------------------------------ snapshot state


def _window_to_proto(m: epb.WindowState, w: RateWindow) -> None:
    m.last = w.last
    m.ids.extend(w.ids)
    m.counts.extend(w.counts)
    m.sums.extend(str(x) for x in w.sums)
    m.count = w.count
    m.total = str(w.total)


def _window_from_proto(w: RateWindow, m: epb.WindowState) -> None:
    if len(m.ids) != BUCKETS:
        raise ValueError(f"window of {len(m.ids)} buckets, not {BUCKETS}")
    w.last = m.last
    w.ids = list(m.ids)
    w.counts = list(m.counts)
    w.sums = [int(x) for x in m.sums]
    w.count = m.count
    w.total = int(m.total)


def _scope_to_proto(m: epb.ScopeState, sc: Scope) -> None:
    m.tripped = sc.tripped
    e = sc.exposure
    m.exposure.gross, m.exposure.net_buy = str(e.gross), str(e.net_buy)
    m.exposure.net_sell = str(e.net_sell)
    m.alerted.extend(sc.alerted)
    if sc.orders_window is not None:
        _window_to_proto(m.orders_window, sc.orders_window)
    if sc.notional_window is not None:
        _window_to_proto(m.notional_window, sc.notional_window)


def _scope_from_proto(sc: Scope, m: epb.ScopeState) -> None:
    sc.tripped = m.tripped
    e = sc.exposure
    e.gross, e.net_buy, e.net_sell = (
        int(m.exposure.gross),
        int(m.exposure.net_buy),
        int(m.exposure.net_sell),
    )
    sc.alerted = list(m.alerted)
    if sc.orders_window is not None and m.HasField("orders_window"):
        _window_from_proto(sc.orders_window, m.orders_window)
    if sc.notional_window is not None and m.HasField("notional_window"):
        _window_from_proto(sc.notional_window, m.notional_window)


def book_to_proto(msg: epb.BookSnapshot, book: Book) -> None:
    cb = book.controls
    msg.day_start_ns = cb.day_start_ns
    for grp in cb.groups.values():
        gm = msg.groups.add(group_id=grp.group_id)
        gm.parent_id = grp.parent.group_id if grp.parent is not None else ""
        if grp.limits is not None:
            gm.limits.CopyFrom(limits_to_proto(grp.limits))
        gm.members.extend(grp.members)
        _scope_to_proto(gm.scope, grp)


def groups_from_proto(msg: epb.BookSnapshot, book: Book) -> None:
    """The groups (before the accounts: an account's state names its group)."""
    cb = book.controls
    cb.day_start_ns = msg.day_start_ns
    for gm in msg.groups:
        lim = limits_from_proto(gm.limits) if gm.HasField("limits") else None
        grp = cb.groups[gm.group_id] = Group(gm.group_id, None, lim)
        grp.members = dict.fromkeys(gm.members)
        _scope_from_proto(grp, gm.scope)
    for gm in msg.groups:
        if gm.parent_id:
            grp, parent = cb.groups[gm.group_id], cb.groups[gm.parent_id]
            grp.parent = parent
            parent.children.append(grp)


def account_to_proto(m: epb.AccountState, a: Account) -> None:
    st = a.controls
    if st is None:
        return
    cm = m.controls
    cm.group_id = st.group_id
    cm.baseline_usd = st.baseline_usd
    _scope_to_proto(cm.scope, st)


def account_from_proto(m: epb.AccountState, a: Account, book: Book) -> None:
    if not m.HasField("controls"):
        return
    cm = m.controls
    st = a.controls = AccountControls(a.limits.controls, book.controls)
    st.baseline_usd = cm.baseline_usd
    st.groups = book.controls.groups[cm.group_id].chain() if cm.group_id else ()
    _scope_from_proto(st, cm.scope)
    st.replan()


# ------------------------------------------------------------------ API views


def _usage_to_proto(target, usage) -> None:
    for u in usage:
        target.add(
            scope=u.scope, limit=u.limit, limit_value=u.limit_value, used=u.used, unit=u.unit
        )


def controls_view_to_proto(v) -> pb.ControlsView:
    """A :class:`~riskgate.engine.controls.views.ControlsView` as its message."""
    m = pb.ControlsView(
        groups=v.groups, day_pnl_usd=v.day_pnl_usd, loss_limit_tripped=v.loss_limit_tripped,
        trading_day_start_ns=v.trading_day_start_ns,
    )  # fmt: skip
    _usage_to_proto(m.usage, v.usage)
    return m


def group_view_to_proto(v) -> pb.GroupView:
    m = pb.GroupView(
        group_id=v.group_id, parent_id=v.parent_id, accounts=v.accounts,
        child_groups=v.child_groups, day_pnl_usd=v.day_pnl_usd,
        loss_limit_tripped=v.loss_limit_tripped,
    )  # fmt: skip
    if v.limits is not None:
        m.limits.CopyFrom(limits_to_proto(v.limits))
    _usage_to_proto(m.usage, v.usage)
    return m


ALERTS = {"CREDIT_WARNING": pb.CONTROL_ALERT_CREDIT_WARNING,
          "LOSS_LIMIT_TRIPPED": pb.CONTROL_ALERT_LOSS_LIMIT_TRIPPED}  # fmt: skip


def alert_to_proto(m: pb.MarginStatusEvent, e) -> None:
    """The alert fields of a status-stream event (a margin status change has none)."""
    if not e.alert:
        return
    m.alert = ALERTS[e.alert]
    m.group_id, m.limit_name = e.group_id, e.limit_name
    m.limit_value, m.used, m.warning_fraction = e.limit_value, e.used, e.warning_fraction
    if e.group_id:  # a group's alert: no account status to report
        m.previous_status = m.status = 0
