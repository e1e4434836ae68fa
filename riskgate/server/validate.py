"""Hostile input checks the server makes before any engine work, and short error messages.

- :func:`request_problem`: enum numbers the schema does not define (``state = 99``,
  ``time_in_force = 99``) and empty map keys, anywhere in a request, named by their field
  path (``orders[3].time_in_force``, ``limits.position_limits``). On the order path only
  ``time_in_force`` is checked here: an order's unknown side or order type is a reject of
  the order (REJECT_REASON_INVALID_ORDER naming the field), as the API promises.
- :func:`clip` / :func:`clip_message`: a message quotes at most a short prefix of a bad
  value, so that a 200 kB account id cannot blow up a status message or a log line.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from riskgate.v1 import riskgate_pb2 as pb

__all__ = ["QUOTE_CHARS", "clip", "clip_message", "request_problem", "shape_check"]

QUOTE_CHARS = 64  # longest run of a value quoted in a message
MESSAGE_CHARS = 512  # longest message
_LONG_RUN = re.compile(rf"\S{{{QUOTE_CHARS + 1},}}")


def clip(value: str, limit: int = QUOTE_CHARS) -> str:
    """``value``, or its first ``limit`` characters and an ellipsis."""
    return value if len(value) <= limit else value[:limit] + "…"


def clip_message(message: str) -> str:
    """Every run of more than ``QUOTE_CHARS`` non-blank characters cut to that many plus an
    ellipsis, and the whole message to ``MESSAGE_CHARS``."""
    if len(message) <= QUOTE_CHARS:
        return message
    out = _LONG_RUN.sub(lambda m: m.group(0)[:QUOTE_CHARS] + "…", message)
    return clip(out, MESSAGE_CHARS)


# ---- enum numbers and map keys ------------------------------------------------------------

_ENUM = FieldDescriptor.TYPE_ENUM
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
# (field name, kind, detail, repeated): kind "enum" (detail: (defined numbers, names)),
# "map" (detail: the value's plan or None), "message" (detail: the plan)
_Plan = tuple[tuple[str, str, Any, bool], ...]
_plans: dict[str, _Plan] = {}


def _is_map(f: FieldDescriptor) -> bool:
    return f.type == _MESSAGE and f.message_type.GetOptions().map_entry


def _plan(d: Descriptor) -> _Plan:
    """What to look at in a message of type ``d`` (cached per type)."""
    plan = _plans.get(d.full_name)
    if plan is not None:
        return plan
    _plans[d.full_name] = ()  # recursive types see an empty plan while this one is built
    out = []
    for f in d.fields:
        repeated = f.is_repeated
        if f.type == _ENUM:
            values = f.enum_type.values
            out.append(
                (
                    f.name,
                    "enum",
                    (frozenset(v.number for v in values), [v.name for v in values]),
                    repeated,
                )
            )
        elif _is_map(f):
            value = f.message_type.fields_by_name["value"]
            out.append(
                (
                    f.name,
                    "map",
                    _plan(value.message_type) if value.type == _MESSAGE else None,
                    False,
                )
            )
        elif f.type == _MESSAGE:
            sub = _plan(f.message_type)
            if sub:
                out.append((f.name, "message", sub, repeated))
    plan = _plans[d.full_name] = tuple(out)
    return plan


def _walk(msg: Any, plan: _Plan, path: str) -> str | None:
    for name, kind, detail, repeated in plan:
        if kind == "enum":
            numbers, names = detail
            values = getattr(msg, name) if repeated else (getattr(msg, name),)
            for k, v in enumerate(values):
                if v not in numbers:
                    where = f"{path}{name}[{k}]" if repeated else f"{path}{name}"
                    return f"{where}: unknown value {v} (expected one of {', '.join(names)})"
        elif kind == "map":
            entries = getattr(msg, name)
            if "" in entries:
                return f"{path}{name}: empty key"
            if detail:
                for key, value in entries.items():
                    found = _walk(value, detail, f"{path}{name}[{clip(key)!r}].")
                    if found:
                        return found
        elif repeated:
            for k, item in enumerate(getattr(msg, name)):
                found = _walk(item, detail, f"{path}{name}[{k}].")
                if found:
                    return found
        elif msg.HasField(name):
            found = _walk(getattr(msg, name), detail, f"{path}{name}.")
            if found:
                return found
    return None


_TIFS = frozenset(pb.TimeInForce.values())
_TIF_NAMES = ", ".join(pb.TimeInForce.keys())


def _order_problem(o: pb.Order, path: str) -> str | None:
    # An order's unknown side or order type is a reject naming the field (the engine's
    # decision, like every problem with an order's content); the engine does not look at
    # time_in_force, so an unknown one is refused here.
    if o.time_in_force in _TIFS:
        return None
    return f"{path}time_in_force: unknown value {o.time_in_force} (expected one of {_TIF_NAMES})"


def _check_order(r: pb.CheckOrderRequest) -> str | None:
    o = r.order
    return None if o.time_in_force in _TIFS else _order_problem(o, "order.")


def _check_orders(r: pb.CheckOrdersRequest) -> str | None:
    for k, o in enumerate(r.orders):
        if o.time_in_force not in _TIFS:
            return _order_problem(o, f"orders[{k}].")
    return None


def shape_check(message_class: Any) -> Any:
    """The check of :func:`request_problem` for requests of ``message_class``, or None if
    such requests have nothing to check (no enum or map fields)."""
    if message_class is pb.CheckOrderRequest:
        return _check_order
    if message_class is pb.CheckOrdersRequest:
        return _check_orders
    plan = _plan(message_class.DESCRIPTOR)
    if not plan:
        return None
    return lambda request: _walk(request, plan, "")


def request_problem(request: Any) -> str | None:
    """The first unknown enum number or empty map key in ``request``, worded for an
    INVALID_ARGUMENT message naming the field; None if there is none."""
    if isinstance(request, pb.CheckOrderRequest):
        return _order_problem(request.order, "order.")
    if isinstance(request, pb.CheckOrdersRequest):
        for k, o in enumerate(request.orders):
            found = _order_problem(o, f"orders[{k}].")
            if found:
                return found
        return None
    plan = _plan(request.DESCRIPTOR)
    return _walk(request, plan, "") if plan else None
