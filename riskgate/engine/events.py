"""State-change events: what happened, with every number needed to apply it again.

Deciding reads state and returns an event; :func:`riskgate.engine.apply.apply` is the only
code that writes state, and it reads nothing but the event and the book (no clock, no
randomness, no I/O), so the same stream of events always rebuilds the same book. The engine
stamps each event with a sequence number and a wall-clock time when it commits it
(:class:`Stamped`); the journal stores it as a ``riskgate.v1.Event`` protobuf message.

A market update's effect on each account (variation margin of futures settled into
collateral, scenario vectors rebuilt on the new risk tables) is not an event of its own: it
is a pure function of :class:`MarketApplied` and the account, applied to every account before
any later event touches it (``apply.bind``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple

from riskgate.domain.market import MarketSnapshot
from riskgate.engine.controls.model import ControlLimits
from riskgate.engine.types import (
    Decision,
    Limits,
    MarginMethod,
    OrderEventBody,
    OrderRequest,
    PoolMode,
    TradingState,
)


class AccountUpserted(NamedTuple):
    """An account created, or its settings or collateral balances changed (None: unchanged)."""

    account_id: str
    pool_mode: PoolMode | None
    margin_method: MarginMethod | None
    limits: Limits | None
    collateral: tuple[tuple[str, float], ...]  # (currency, amount) set to these balances


class PositionsSet(NamedTuple):
    """Reconciliation: the account's positions become exactly these."""

    account_id: str
    positions: tuple[tuple[str, float, float | None], ...]  # (symbol, quantity, avg price)


class TradingStateSet(NamedTuple):
    """ACTIVE / REDUCING / HALTED for one account, or for every account (the kill switch)."""

    account_id: str  # "" with all_accounts
    all_accounts: bool
    state: TradingState
    reason: str


class OrderAccepted(NamedTuple):
    """An accepted order: it reserves margin as a working order until its venue reports."""

    request: OrderRequest
    decision: Decision
    symbol: str  # listed (canonical) symbol
    pool: str  # margin pool currency
    accepted_ns: int  # wall clock
    reserve_until_ns: int  # wall clock: released unless acknowledged by then


class DecisionRemembered(NamedTuple):
    """A reject kept for idempotent retries of its client order id."""

    request: OrderRequest
    decision: Decision
    decided_ns: int  # wall clock


class OrderStep(NamedTuple):
    """One step of a working order's life, as reported by the gateway."""

    account_id: str
    client_order_id: str
    body: OrderEventBody


class ReservationsExpired(NamedTuple):
    """Accepted orders never acknowledged by the venue within the reservation TTL."""

    account_id: str
    client_order_ids: tuple[str, ...]


class Audited(NamedTuple):
    """A call that changed nothing but is kept for the audit trail (a refused call)."""

    principal: str
    method: str
    accounts: tuple[str, ...]  # ("*",) for a call about every account
    outcome: str  # a gRPC status name
    detail: str


class MarketApplied(NamedTuple):
    """A market snapshot (the whole of it, as it stands after the update) becomes current."""

    version: int
    snapshot: MarketSnapshot
    received_ns: int = 0  # wall clock: when the update arrived (the market's age counts from it)


class MarketSourced(NamedTuple):
    """Cluster mode: the shard took message ``market_seq`` of the market stream (applied it,
    or refused it: ``refused`` says why); it takes ``market_seq + 1`` next."""

    market_seq: int
    refused: str = ""


# ---- pre-trade controls (riskgate/engine/controls)


class GroupUpserted(NamedTuple):
    """An account group created or changed (None: unchanged; parent "" = top level)."""

    group_id: str
    parent_id: str | None
    limits: ControlLimits | None


class AccountGroupSet(NamedTuple):
    """An account joins a group ("" = leaves its group)."""

    account_id: str
    group_id: str


class LossLimitTripped(NamedTuple):
    """A loss limit crossed: the account, or every account of the group, takes ``state``
    (committed by the engine under the system principal, never decided by apply)."""

    group: bool
    scope_id: str  # account id or group id
    state: TradingState
    pnl_usd: float
    limit_usd: float
    reason: str


class TradingDayStarted(NamedTuple):
    """The trading day starts: loss baselines become the equity now, trips re-arm."""

    day_start_ns: int  # wall clock


Event = (
    AccountUpserted
    | PositionsSet
    | TradingStateSet
    | OrderAccepted
    | DecisionRemembered
    | OrderStep
    | ReservationsExpired
    | MarketApplied
    | Audited
    | MarketSourced
    | GroupUpserted
    | AccountGroupSet
    | LossLimitTripped
    | TradingDayStarted
)

# who is making the call being served (set by the server's access interceptor); the engine
# journals it with each event the call commits
ACTOR: ContextVar[str] = ContextVar("riskgate_actor", default="")


class Stamped(NamedTuple):
    """An event as committed: its place in the stream and when it was committed."""

    seq: int
    time_ns: int  # wall clock
    event: Event
    principal: str = ""  # who made the call that committed it ("" = not known)


def event_account(event: Event) -> str:
    """The account an event changes ("" for market data and all-account events)."""
    if isinstance(event, OrderAccepted | DecisionRemembered):
        return event.request.account_id
    if isinstance(event, MarketApplied | MarketSourced | GroupUpserted | TradingDayStarted):
        return ""
    if isinstance(event, LossLimitTripped):
        return "" if event.group else event.scope_id
    if isinstance(event, Audited):
        return event.accounts[0] if len(event.accounts) == 1 else ""
    return event.account_id
