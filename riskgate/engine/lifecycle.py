"""The working order's life as an explicit state machine.

    PENDING_ACK ──ack──▶ OPEN ──fill──▶ PARTIALLY_FILLED ──fill──▶ FILLED
         │                 │                   │
         └──── venue reject / cancel / expire / amend-to-filled ──▶ terminal
    PENDING_ACK ──(reservation TTL)──▶ RESERVATION_EXPIRED

:func:`check` validates a gateway's report against the order as it stands (raising a typed
error for a transition the machine does not have) and says whether it repeats one already
applied; :func:`next_status` is where the report takes the order.
"""

from __future__ import annotations

import math

from riskgate.domain.units import plain
from riskgate.engine.book import WorkingOrder
from riskgate.engine.types import (
    Acknowledged,
    Amended,
    Cancelled,
    EngineError,
    Expired,
    Filled,
    OrderEventBody,
    OrderStatus,
    VenueRejected,
)

_EPS = 1e-12
_W = (OrderStatus.PENDING_ACK, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
# the terminal status each ending report leads to
_ENDS = {
    VenueRejected: OrderStatus.VENUE_REJECTED,
    Cancelled: OrderStatus.CANCELLED,
    Expired: OrderStatus.EXPIRED,
}
# (report, status) pairs the machine has; anything else is an invalid transition
TRANSITIONS: dict[type, frozenset[OrderStatus]] = {
    Acknowledged: frozenset(_W),
    VenueRejected: frozenset(_W),
    Cancelled: frozenset(_W),
    Expired: frozenset(_W),
    Amended: frozenset(_W),
    Filled: frozenset(_W),
}


class InvalidTransition(EngineError):
    """A report the order's current status does not allow (FAILED_PRECONDITION)."""

    def __init__(self, message: str) -> None:
        super().__init__("FAILED_PRECONDITION", message)


class InvalidReport(EngineError):
    """A report whose own fields are malformed (INVALID_ARGUMENT)."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_ARGUMENT", message)


def _finite_positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0.0


def is_repeat(order: WorkingOrder, body: OrderEventBody) -> bool:
    """The report was applied already: the same ending again, or a fill id seen before."""
    if isinstance(body, Filled):
        return bool(body.fill_id) and body.fill_id in (order.fill_ids or ())
    end = _ENDS.get(type(body))
    return end is not None and order.status == end


def check(order: WorkingOrder, body: OrderEventBody, coid: str) -> bool:
    """Validate ``body`` against ``order``; True if it repeats one already applied (then
    nothing changes). Raises :class:`InvalidTransition` or :class:`InvalidReport`."""
    allowed = TRANSITIONS.get(type(body))
    if allowed is None:
        raise InvalidReport("event: missing")
    if is_repeat(order, body):
        return True
    if order.status not in allowed:
        raise InvalidTransition(f"client_order_id: order {coid!r} is already {order.status.name}")
    if isinstance(body, Amended):
        if body.new_quantity is not None:
            if not _finite_positive(body.new_quantity):
                raise InvalidReport("amended.new_quantity: must be finite and positive")
            if body.new_quantity < order.filled - _EPS:
                raise InvalidTransition(
                    f"amended.new_quantity: below the filled quantity {plain(order.filled, 10)}"
                )
        if body.new_price is not None and not _finite_positive(body.new_price):
            raise InvalidReport("amended.new_price: must be finite and positive")
    elif isinstance(body, Filled):
        if not _finite_positive(body.fill_quantity):
            raise InvalidReport("filled.fill_quantity: must be finite and positive")
        if not _finite_positive(body.fill_price):
            raise InvalidReport("filled.fill_price: must be finite and positive")
        if body.fill_quantity > order.working + _EPS * max(1.0, order.quantity):
            raise InvalidTransition(
                f"filled.fill_quantity: {plain(body.fill_quantity, 10)} exceeds the working quantity "
                f"{plain(order.working, 10)}"
            )
    return False


def next_status(order: WorkingOrder, body: OrderEventBody) -> OrderStatus:
    """Where a valid, new report takes the order (read before the report is applied)."""
    end = _ENDS.get(type(body))
    if end is not None:
        return end
    if isinstance(body, Acknowledged):
        return OrderStatus.OPEN if order.status == OrderStatus.PENDING_ACK else order.status
    if isinstance(body, Filled):
        filled = order.filled + min(body.fill_quantity, order.working)
        if order.quantity - filled <= _EPS * max(1.0, order.quantity):
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED
    if isinstance(body, Amended):
        q = order.quantity if body.new_quantity is None else body.new_quantity
        return OrderStatus.FILLED if q - order.filled <= _EPS else order.status
    raise InvalidReport("event: missing")  # pragma: no cover - check() refused it
