"""Plausible values by field name for :class:`loadtest.fuzz_gen.Generator`: ids of accounts
and orders that exist, listed symbols, prices near the mark, market data within (mostly)
the guards. A hint is keyed ``Message.field``, ``field``, or ``map_field.key`` / ``.value``;
``ctx`` holds what the message being filled already has (its account, symbol, order)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

if TYPE_CHECKING:
    from loadtest.fuzz_gen import Generator

__all__ = ["ALWAYS", "HINTS", "MESSAGE_HINTS", "presence"]

Hint = Callable[["Generator", dict[str, Any]], Any]


def presence(message: str, name: str) -> float:
    """How often an optional field or sub-message is set."""
    return {"limits": 0.25, "valuation_time": 0.2, "rate": 0.2, "event_time": 0.5}.get(name, 0.6)


def _pick(*values: Any) -> Hint:
    return lambda g, ctx: g.rng.choice(values)


def _weighted(*pairs: tuple[Any, float]) -> Hint:
    values, weights = zip(*pairs, strict=True)
    return lambda g, ctx: g.rng.choices(values, weights)[0]


def _account_id(g: Generator, ctx: dict[str, Any]) -> str:
    ctx["account_id"] = a = g.account()
    return a


def _symbol(g: Generator, ctx: dict[str, Any]) -> str:
    ctx["symbol"] = s = g.symbol()
    return s


def _quantity(g: Generator, ctx: dict[str, Any]) -> float:
    if g.chance(0.02):  # valid, and large
        return 10 ** g.rng.uniform(3, 12)
    return round(10 ** g.rng.uniform(-3, 0.5), 4)


def _position(g: Generator, ctx: dict[str, Any]) -> float:
    r = g.rng.random()
    if r < 0.1:
        return 0.0
    if r < 0.13:
        return g.rng.choice((1.0, -1.0)) * 10 ** g.rng.uniform(3, 15)
    return round(g.rng.uniform(-5.0, 5.0), 3)


def _collateral(g: Generator, ctx: dict[str, Any]) -> float:
    top = 15 if g.chance(0.03) else 6.5
    return g.rng.choice((1.0, 1.0, 1.0, -1.0)) * 10 ** g.rng.uniform(2, top)


def _fill_id(g: Generator, ctx: dict[str, Any]) -> str:
    ids = g.pools.fill_ids
    if ids and g.chance(0.2):
        return g.rng.choice(ids)
    fid = g.fresh("fill")
    ids.append(fid)
    return fid


def _event(g: Generator, msg: Message, ctx: dict[str, Any]) -> bool:
    ctx["event"] = True  # OrderEvent: known order ids more often
    return False


HINTS: dict[str, Hint] = {
    "account_id": _account_id,
    "account_ids": lambda g, ctx: g.account(),
    "client_order_id": lambda g, ctx: g.client_order_id(ctx),
    "symbol": _symbol,
    "side": _weighted((1, 0.48), (2, 0.48), (0, 0.02), (7, 0.02)),
    "order_type": _weighted((1, 0.45), (2, 0.5), (0, 0.03), (9, 0.02)),
    "time_in_force": _weighted((0, 0.4), (1, 0.3), (2, 0.15), (3, 0.13), (99, 0.02)),
    "quantity": _quantity,
    "price": lambda g, ctx: g.price(ctx),
    "avg_price": lambda g, ctx: g.price(ctx),
    "reduce_only": _weighted((False, 0.85), (True, 0.15)),
    "fill_quantity": lambda g, ctx: round(10 ** g.rng.uniform(-3, -0.5), 4),
    "fill_price": lambda g, ctx: g.price(ctx),
    "fill_id": _fill_id,
    "new_quantity": _quantity,
    "new_price": lambda g, ctx: g.price(ctx),
    "venue_order_id": lambda g, ctx: g.fresh("v"),
    "reason": _pick("risk desk", "fat finger", "", "margin call not met"),
    "collateral.key": lambda g, ctx: g.rng.choice(g.pools.currencies),
    "collateral.value": _collateral,
    "Position.quantity": _position,
    "pool_mode": _weighted((0, 0.6), (1, 0.2), (2, 0.2)),
    "margin_method": _weighted((0, 0.6), (1, 0.15), (2, 0.15), (3, 0.1)),
    "max_order_quantity": lambda g, ctx: g.rng.uniform(0.5, 200.0),
    "max_order_notional_usd": lambda g, ctx: 10 ** g.rng.uniform(4, 8),
    "price_band_fraction": lambda g, ctx: g.rng.uniform(0.01, 0.5),
    "max_open_orders": lambda g, ctx: g.rng.randint(1, 300),
    "default_position_limit": lambda g, ctx: g.rng.uniform(1.0, 1000.0),
    "position_limits.key": lambda g, ctx: g.symbol(),
    "position_limits.value": lambda g, ctx: g.rng.uniform(0.1, 500.0),
    "state": _weighted((1, 0.6), (2, 0.15), (3, 0.15), (0, 0.05), (99, 0.05)),
    "all_accounts": _weighted((False, 0.92), (True, 0.08)),
    "include_current": _pick(False, True),
    "full_snapshot": _weighted((False, 0.95), (True, 0.05)),
    "override_guards": _weighted((False, 0.85), (True, 0.15)),
    "index_usd.key": lambda g, ctx: g.rng.choice(g.pools.coins),
    "index_usd.value": lambda g, ctx: g.index_value(ctx),
    "marks_usd.key": lambda g, ctx: g.symbol(g.pools.linear),
    "marks_usd.value": lambda g, ctx: g.near(g.pools.marks.get(ctx["key"], 50_000.0), 0.01),
    "ivs.key": lambda g, ctx: g.symbol(g.pools.options),
    "ivs.value": lambda g, ctx: g.near(g.pools.ivs.get(ctx["key"], 0.6), 0.05),
    "rate": lambda g, ctx: g.rng.uniform(-0.02, 0.1),
}

# account ids come from the pools only (their odd ids included): any string an admin sends
# would be a new account, and every account costs each state check and market update
ALWAYS = frozenset({"account_id", "account_ids"})

MESSAGE_HINTS: dict[str, Callable[[Generator, Message, dict[str, Any]], bool]] = {
    "riskgate.v1.UpdateMarketRequest": lambda g, msg, ctx: g.full_market(msg, ctx),
    "riskgate.v1.OrderEvent": _event,
}
