"""Read-only views of the controls: usage against each limit, of an account or a group."""

from __future__ import annotations

from dataclasses import dataclass

from riskgate.engine.book import Account, Book
from riskgate.engine.controls.check import window_unit
from riskgate.engine.controls.model import MICRO, ControlLimits, Group, Scope
from riskgate.engine.controls.track import day_pnl_usd, group_pnl_usd


@dataclass(frozen=True, slots=True)
class LimitUsage:
    scope: str  # "account" or "group <id>"
    limit: str  # orders, notional, gross_notional, net_notional, daily_loss
    limit_value: float
    used: float
    unit: str


@dataclass(frozen=True, slots=True)
class ControlsView:
    groups: tuple[str, ...]  # innermost first
    day_pnl_usd: float
    loss_limit_tripped: bool
    trading_day_start_ns: int
    usage: tuple[LimitUsage, ...]


@dataclass(frozen=True, slots=True)
class GroupView:
    group_id: str
    parent_id: str
    accounts: tuple[str, ...]
    child_groups: tuple[str, ...]
    limits: ControlLimits | None
    day_pnl_usd: float
    loss_limit_tripped: bool
    usage: tuple[LimitUsage, ...]


def _usage(sc: Scope, scope: str, pnl: float, now_ns: int) -> list[LimitUsage]:
    lim = sc.limits
    if lim is None:
        return []
    out = []
    if sc.orders_window is not None:
        n, _ = sc.orders_window.usage(now_ns)
        unit = window_unit("orders", lim.orders_window_ns)
        out.append(LimitUsage(scope, "orders", float(lim.max_orders), float(n), unit))  # type: ignore[arg-type]
    if sc.notional_window is not None:
        _, total = sc.notional_window.usage(now_ns)
        unit = window_unit("USD", lim.notional_window_ns)
        out.append(LimitUsage(scope, "notional", lim.max_notional_usd, total / MICRO, unit))  # type: ignore[arg-type]
    e = sc.exposure
    if lim.max_gross_usd is not None:
        out.append(LimitUsage(scope, "gross_notional", lim.max_gross_usd, e.gross / MICRO, "USD"))
    if lim.max_net_usd is not None:
        out.append(LimitUsage(scope, "net_notional", lim.max_net_usd, e.net / MICRO, "USD"))
    if lim.max_loss_usd is not None:
        out.append(LimitUsage(scope, "daily_loss", lim.max_loss_usd, max(0.0, -pnl), "USD"))
    return out


def account_controls_view(book: Book, acc: Account, now_ns: int) -> ControlsView | None:
    """Call with the account's lock held, the account bound."""
    st = acc.controls
    if st is None:
        return None
    pnl = day_pnl_usd(acc, st)
    usage = _usage(st, "account", pnl, now_ns)
    for grp in st.groups:
        usage += _usage(grp, f"group {grp.group_id}", group_pnl_usd(book, grp), now_ns)
    return ControlsView(
        tuple(g.group_id for g in st.groups), pnl, st.tripped, book.controls.day_start_ns,
        tuple(usage),
    )  # fmt: skip


def group_view(book: Book, grp: Group, now_ns: int) -> GroupView:
    pnl = group_pnl_usd(book, grp)
    return GroupView(
        grp.group_id, grp.parent.group_id if grp.parent else "", tuple(grp.members),
        tuple(c.group_id for c in grp.children), grp.limits, pnl, grp.tripped,
        tuple(_usage(grp, f"group {grp.group_id}", pnl, now_ns)),
    )  # fmt: skip
