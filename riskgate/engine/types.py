"""Engine-side value types. The enums carry the same numbers as the proto (riskgate.v1), so
the servicer converts by value; a test checks they agree."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from riskgate.engine.controls.model import ControlLimits
    from riskgate.engine.controls.views import ControlsView


class Reason(enum.IntEnum):
    ACCEPTED = 0
    INVALID_ORDER = 1
    UNKNOWN_ACCOUNT = 2
    UNKNOWN_INSTRUMENT = 3
    INSTRUMENT_EXPIRED = 4
    DUPLICATE_ORDER_ID_MISMATCH = 5
    ACCOUNT_HALTED = 6
    ACCOUNT_REDUCING_ONLY = 7
    MAX_ORDER_QUANTITY = 8
    MAX_ORDER_NOTIONAL = 9
    PRICE_BAND = 10
    MAX_OPEN_ORDERS = 11
    POSITION_LIMIT = 12
    INSUFFICIENT_MARGIN = 13
    LATENCY_BUDGET_EXCEEDED = 14
    MARKET_DATA_MISSING = 15
    INTERNAL_ERROR = 16
    REDUCE_ONLY_VIOLATION = 17
    MARKET_DATA_STALE = 18
    # pre-trade controls (riskgate/engine/controls)
    VELOCITY_LIMIT = 19
    CREDIT_LIMIT = 20
    LOSS_LIMIT = 21
    GROUP_LIMIT = 22
    MESSAGE_THROTTLE = 23


class Side(enum.IntEnum):
    BUY = 1
    SELL = 2

    @property
    def sign(self) -> float:
        return 1.0 if self is Side.BUY else -1.0


class OrderType(enum.IntEnum):
    LIMIT = 1
    MARKET = 2


class TradingState(enum.IntEnum):
    ACTIVE = 1
    REDUCING = 2
    HALTED = 3


class PoolMode(enum.IntEnum):
    CROSS = 1
    SEGREGATED = 2


class MarginMethod(enum.IntEnum):
    PORTFOLIO = 1
    RULES_BASED = 2
    AUTO = 3  # portfolio margin while equity >= the configured minimum, else rules-based


class MarginStatus(enum.IntEnum):
    OK = 1
    MARGIN_CALL = 2  # equity < initial margin
    LIQUIDATION = 3  # equity < maintenance margin


class OrderStatus(enum.IntEnum):
    PENDING_ACK = 1
    OPEN = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    CANCELLED = 5
    EXPIRED = 6
    VENUE_REJECTED = 7
    RESERVATION_EXPIRED = 8

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.PENDING_ACK, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class EngineError(Exception):
    """Bad input to an administrative or query call; ``code`` is the gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # INVALID_ARGUMENT | NOT_FOUND | FAILED_PRECONDITION | ALREADY_EXISTS
        self.message = message


def invalid(message: str) -> EngineError:
    return EngineError("INVALID_ARGUMENT", message)


def not_found(message: str) -> EngineError:
    return EngineError("NOT_FOUND", message)


def precondition(message: str) -> EngineError:
    return EngineError("FAILED_PRECONDITION", message)


@dataclass(frozen=True)
class EngineConfig:
    decision_budget_ns: int = 2_000_000
    reservation_ttl_ns: int = 30_000_000_000
    idempotency_window: int = 100_000  # decisions remembered per account, at most
    idempotency_ttl_ns: int = 86_400 * 10**9  # and for at most this long
    pm_equity_minimum_usd: float = 0.0
    max_batch_orders: int = 10_000
    max_account_id_bytes: int = 128
    max_client_order_id_bytes: int = 64
    # market data older than this (since it was received) rejects orders that raise margin
    max_market_age_ns: int = 0  # 0: no limit
    # a CheckOrders batch lets a waiting caller decide after holding the gate this long
    max_gate_hold_ns: int = 1_000_000
    default_limits: Limits = field(default_factory=lambda: Limits())
    # pre-trade controls: the trading day starts at this offset from 00:00 UTC; a gateway
    # principal may send at most throttle_max_orders orders per throttle_window_ns (0: off)
    day_roll_offset_ns: int = 0
    throttle_max_orders: int = 0
    throttle_window_ns: int = 1_000_000_000


class OrderRequest(NamedTuple):
    """One proposed order (a NamedTuple: built once per order on the hot path)."""

    account_id: str
    client_order_id: str
    symbol: str
    side: Side | int
    quantity: float
    price: float | None = None
    order_type: OrderType | int = OrderType.LIMIT
    reduce_only: bool = False
    time_in_force: int = 0

    def fingerprint(self) -> tuple:
        """What must match for a retry to count as the same order."""
        q, p = self.quantity, self.price
        # NaN != NaN: a retried bad order must still match its original
        return (
            self.symbol, int(self.side), q if q == q else "nan",
            p if p is None or p == p else "nan", int(self.order_type), self.reduce_only,
        )  # fmt: skip


class ScenarioInfo(NamedTuple):
    """The scenario that sets a margin (a NamedTuple: built on every decision)."""

    index: int
    price_move_fraction: float
    vol_move: str
    pool_currency: str
    underlying: str
    loss: float
    # (coin, price move) of every coin the scenario moves (a deribit pool's cell moves all
    # of its coins at once), sorted by coin
    price_moves: tuple[tuple[str, float], ...] = ()
    # the stress scenario's name when the cell is one (riskgate.models.stress), else ""
    name: str = ""


@dataclass(slots=True)
class Decision:
    account_id: str
    client_order_id: str
    accepted: bool
    reason: Reason
    detail: str = ""
    context_field: str = ""
    context_limit: float | None = None
    context_actual: float | None = None
    context_unit: str = ""
    initial_margin_before: float = 0.0
    initial_margin_after: float = 0.0
    maintenance_margin_before: float = 0.0
    maintenance_margin_after: float = 0.0
    equity_before: float = 0.0
    equity_after: float = 0.0
    worst_scenario: ScenarioInfo | None = None
    pool_currency: str = ""
    risk_reducing: bool = False
    duplicate: bool = False
    margin_method: MarginMethod = MarginMethod.PORTFOLIO
    compute_ns: int = 0
    market_version: int = 0
    # margin rejects and WhatIf(explain): the legs behind the worst scenario, largest loss
    # first ((symbol, quantity, pnl) of riskgate.engine.attribution.LegPnl), summing to -loss
    attribution: tuple = ()


@dataclass(frozen=True, slots=True)
class MaxQuantityResult:
    account_id: str
    symbol: str
    max_buy_quantity: float
    max_sell_quantity: float
    buy_limited_by: Reason
    sell_limited_by: Reason
    compute_ns: int
    market_version: int


@dataclass(frozen=True, slots=True)
class Limits:
    """Static pre-trade limits; None = no limit."""

    max_order_quantity: float | None = None
    max_order_notional_usd: float | None = None
    price_band_fraction: float | None = None
    max_open_orders: int | None = None
    default_position_limit: float | None = None
    position_limits: dict[str, float] = field(default_factory=dict)
    # velocity, credit, loss and class limits (riskgate.engine.controls.model.ControlLimits)
    controls: ControlLimits | None = None
    active: bool = field(init=False, default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # the order path skips every static-limit check when none is set
        active = bool(self.position_limits) or any(
            v is not None
            for v in (
                self.max_order_quantity, self.max_order_notional_usd, self.price_band_fraction,
                self.max_open_orders, self.default_position_limit,
            )
        )  # fmt: skip
        object.__setattr__(self, "active", active)


# ---- order lifecycle events ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledged:
    venue_order_id: str = ""


@dataclass(frozen=True, slots=True)
class VenueRejected:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Cancelled:
    pass


@dataclass(frozen=True, slots=True)
class Expired:
    pass


@dataclass(frozen=True, slots=True)
class Amended:
    new_quantity: float | None = None
    new_price: float | None = None


@dataclass(frozen=True, slots=True)
class Filled:
    fill_quantity: float
    fill_price: float
    fill_id: str = ""


OrderEventBody = Acknowledged | VenueRejected | Cancelled | Expired | Amended | Filled


@dataclass(frozen=True, slots=True)
class EventAck:
    account_id: str
    client_order_id: str
    duplicate: bool
    order_status: OrderStatus
    filled_quantity: float
    working_quantity: float


# ---- views --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    # coin x multiplier; an inverse future's or perpetual's: its notional's coin at the mark
    quantity: float
    avg_price: float | None
    mark_price: float  # quote currency of the instrument
    value: float  # pool currency
    pool_currency: str
    notional_usd: float | None = None  # inverse futures and perpetuals: their fixed size


@dataclass(frozen=True, slots=True)
class WorkingOrderView:
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    filled_quantity: float
    working_quantity: float
    price: float | None
    reduce_only: bool
    status: OrderStatus
    venue_order_id: str
    accepted_time_ns: int
    time_in_force: int


@dataclass(frozen=True, slots=True)
class PoolView:
    currency: str
    equity: float
    initial_margin: float  # positions + open orders (the worse side)
    maintenance_margin: float
    positions_initial_margin: float  # positions only (margin status uses these)
    positions_maintenance_margin: float
    worst_scenario: ScenarioInfo | None
    add_ons: dict[str, float]
    margin_status: MarginStatus
    margin_method: MarginMethod


@dataclass(frozen=True, slots=True)
class AccountView:
    account_id: str
    trading_state: TradingState
    trading_state_reason: str
    pool_mode: PoolMode
    margin_method: MarginMethod
    margin_status: MarginStatus
    equity_usd: float
    initial_margin_usd: float
    maintenance_margin_usd: float
    worst_scenario: ScenarioInfo | None
    pools: list[PoolView]
    positions: list[PositionView]
    working_orders: list[WorkingOrderView]
    collateral: dict[str, float]
    limits: Limits
    market_version: int
    valuation_time_ns: int
    controls: ControlsView | None = None  # pre-trade controls, when the account has any


@dataclass(frozen=True, slots=True)
class MarginStatusEvent:
    account_id: str
    previous_status: MarginStatus
    status: MarginStatus
    pool_currency: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    time_ns: int
    market_version: int
    # a pre-trade control alert ("" for a margin status change): CREDIT_WARNING or
    # LOSS_LIMIT_TRIPPED, about a group (group_id) or the account
    alert: str = ""
    group_id: str = ""
    limit_name: str = ""
    limit_value: float = 0.0
    used: float = 0.0
    warning_fraction: float = 0.0


@dataclass(frozen=True, slots=True)
class MarketUpdateResult:
    market_version: int
    accounts_remargined: int
    compute_ns: int
