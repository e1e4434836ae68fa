"""Administrative commands, validated into events: accounts and collateral, positions
(reconciliation), trading states. Bad input raises an :class:`EngineError` naming the field
and produces no event."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TypeVar

from riskgate.domain.instruments import USD_LIKE, InstrumentError, parse_symbol
from riskgate.engine.book import Account
from riskgate.engine.decide import too_long
from riskgate.engine.events import AccountUpserted, PositionsSet, TradingStateSet
from riskgate.engine.market import MarketState
from riskgate.engine.types import (
    EngineConfig,
    Limits,
    MarginMethod,
    PoolMode,
    TradingState,
    invalid,
    not_found,
    precondition,
)

E = TypeVar("E", bound=Enum)
# largest collateral balance or position quantity taken: sums of such stay far from overflow
MAX_AMOUNT = 1e15


def _finite_positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0.0


def check_account_id(account_id: str, config: EngineConfig) -> None:
    if not account_id:
        raise invalid("account_id: missing")
    if too_long(account_id, config.max_account_id_bytes):
        raise invalid(
            f"account_id: {account_id[:64]}… is longer than {config.max_account_id_bytes} bytes"
        )


def upsert_event(
    market: MarketState,
    config: EngineConfig,
    account_id: str,
    acc: Account | None,
    collateral: Mapping[str, float] | None,
    pool_mode: PoolMode | int | None,
    margin_method: MarginMethod | int | None,
    limits: Limits | None,
) -> AccountUpserted:
    """``acc``: the account as it stands (its lock held), or None to create it."""
    check_account_id(account_id, config)
    clean: dict[str, float] = {}
    for ccy, amount in (collateral or {}).items():
        code = ccy.upper()
        if not code:
            raise invalid("collateral: empty currency")
        if not math.isfinite(amount):
            raise invalid(f"collateral.{ccy}: must be finite")
        if abs(amount) > MAX_AMOUNT:
            raise invalid(f"collateral.{ccy}: {amount:g} is beyond ±{MAX_AMOUNT:g}")
        if code not in USD_LIKE and code not in market.snapshot.index_usd:
            raise invalid(f"collateral.{ccy}: unknown currency (no index price)")
        clean[code] = float(amount)
    if limits is not None:
        check_limits(limits)
    # members, not plain ints: the decision path compares them by identity
    mode = _member(PoolMode, pool_mode, "pool_mode")
    method = _member(MarginMethod, margin_method, "margin_method")
    busy = acc is not None and (
        bool(acc.positions) or any(o.status.is_working for o in acc.orders.values())
    )
    if busy and mode is not None and mode != acc.pool_mode:  # type: ignore[union-attr]
        raise precondition("pool_mode: cannot change while the account holds positions or orders")
    return AccountUpserted(account_id, mode, method, limits, tuple(clean.items()))


def positions_event(
    market: MarketState, account_id: str, positions: Sequence[tuple[str, float, float | None]]
) -> PositionsSet:
    target: dict[str, tuple[str, float, float | None]] = {}
    for k, (sym, qty, avg_price) in enumerate(positions):
        field = f"positions[{k}]"
        if not sym:
            raise invalid(f"{field}.symbol: missing")
        try:
            symbol = parse_symbol(sym).symbol
        except InstrumentError as exc:
            raise invalid(f"{field}.symbol: {exc}") from None
        if symbol not in market.instruments:
            raise not_found(f"{field}.symbol: {sym} is not priced by the current market")
        if not math.isfinite(qty):
            raise invalid(f"{field}.quantity: must be finite")
        if abs(qty) > MAX_AMOUNT:
            raise invalid(f"{field}.quantity: {qty:g} is beyond ±{MAX_AMOUNT:g}")
        if avg_price is not None and not _finite_positive(avg_price):
            raise invalid(f"{field}.avg_price: must be finite and positive")
        if symbol in target:
            raise invalid(f"{field}.symbol: {sym} listed twice")
        target[symbol] = (symbol, float(qty) + 0.0, None if avg_price is None else float(avg_price))
    return PositionsSet(account_id, tuple(target.values()))


def trading_state_event(
    account_id: str, all_accounts: bool, state: TradingState | int, reason: str
) -> TradingStateSet:
    if state not in (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED):
        raise invalid("state: must be ACTIVE, REDUCING or HALTED")
    if all_accounts and account_id:
        raise invalid("account_id: give either account_id or all_accounts, not both")
    return TradingStateSet(account_id, all_accounts, TradingState(state), reason)


def _member(enum_type: type[E], value: E | int | None, name: str) -> E | None:
    if value is None:
        return None
    try:
        return enum_type(value)
    except ValueError:
        raise invalid(f"{name}: unknown value {value!r}") from None


def check_limits(lim: Limits) -> None:
    for name in (
        "max_order_quantity",
        "max_order_notional_usd",
        "price_band_fraction",
        "default_position_limit",
    ):
        v = getattr(lim, name)
        if v is not None and not _finite_positive(v):
            raise invalid(f"limits.{name}: must be finite and positive")
    if lim.max_open_orders is not None and lim.max_open_orders < 1:
        raise invalid("limits.max_open_orders: must be >= 1")
    for sym, v in lim.position_limits.items():
        if not _finite_positive(v):
            raise invalid(f"limits.position_limits.{sym}: must be finite and positive")
    if lim.controls is not None:
        from riskgate.engine.controls.admin import check_control_limits

        check_control_limits(lim.controls)
