"""Administrative commands of the controls, validated into events (bad input raises an
:class:`~riskgate.engine.types.EngineError` naming the field, and produces no event)."""

from __future__ import annotations

import math

from riskgate.engine.controls.model import CLASSES, ControlBook, ControlLimits
from riskgate.engine.events import AccountGroupSet, GroupUpserted
from riskgate.engine.types import TradingState, invalid, not_found, precondition

MAX_GROUP_ID_BYTES = 128


def check_control_limits(lim: ControlLimits, name: str = "limits.controls") -> None:
    for f in ("max_notional_usd", "max_gross_usd", "max_net_usd", "max_loss_usd"):
        v = getattr(lim, f)
        if v is not None and not (math.isfinite(v) and v > 0.0):
            raise invalid(f"{name}.{f}: must be finite and positive")
    if lim.max_orders is not None and lim.max_orders < 1:
        raise invalid(f"{name}.max_orders: must be >= 1")
    for f in ("orders_window_ns", "notional_window_ns"):
        if getattr(lim, f) < 10_000_000:  # a bucket of at least 1 ms
            raise invalid(f"{name}.{f.replace('_ns', '_ms')}: must be at least 10 ms")
    w = lim.credit_warning_fraction
    if w is not None and not (math.isfinite(w) and 0.0 < w <= 1.0):
        raise invalid(f"{name}.credit_warning_fraction: must be in (0, 1]")
    if lim.loss_action not in (TradingState.REDUCING, TradingState.HALTED):
        raise invalid(f"{name}.loss_action: must be REDUCING or HALTED")
    for what in ("class_max_quantity", "class_price_band"):
        for cls, v in getattr(lim, what).items():
            if cls not in CLASSES:
                raise invalid(f"{name}.{what}.{cls}: unknown class (option, future, spot)")
            if not (math.isfinite(v) and v > 0.0):
                raise invalid(f"{name}.{what}.{cls}: must be finite and positive")


def _check_group_id(group_id: str, field: str = "group_id") -> None:
    if not group_id:
        raise invalid(f"{field}: missing")
    if len(group_id.encode()) > MAX_GROUP_ID_BYTES:
        raise invalid(f"{field}: longer than {MAX_GROUP_ID_BYTES} bytes")


def group_event(
    cb: ControlBook, group_id: str, parent_id: str | None, limits: ControlLimits | None
) -> GroupUpserted:
    _check_group_id(group_id)
    if limits is not None:
        check_control_limits(limits, "limits")
    grp = cb.groups.get(group_id)
    if parent_id:
        parent = cb.groups.get(parent_id)
        if parent is None:
            raise not_found(f"parent_id: unknown group {parent_id!r}")
        if grp is not None and grp in parent.chain():
            raise precondition(f"parent_id: {parent_id!r} is inside {group_id!r} (a cycle)")
    if grp is not None and parent_id is not None:
        current = grp.parent.group_id if grp.parent else ""
        if parent_id == current:
            parent_id = None  # unchanged
        elif grp.members or grp.children:
            raise precondition(
                f"parent_id: group {group_id!r} has accounts or groups in it; move them first"
            )
    return GroupUpserted(group_id, parent_id, limits)


def account_group_event(cb: ControlBook, account_id: str, group_id: str) -> AccountGroupSet:
    if group_id and group_id not in cb.groups:
        raise not_found(f"group_id: unknown group {group_id!r}")
    return AccountGroupSet(account_id, group_id)
