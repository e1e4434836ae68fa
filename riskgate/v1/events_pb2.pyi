from riskgate.v1 import riskgate_pb2 as _riskgate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Amounts(_message.Message):
    __slots__ = ("keys", "values")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "time_ns", "principal", "account_upserted", "positions_set", "trading_state_set", "order_accepted", "decision_remembered", "order_step", "reservations_expired", "market_applied", "audited", "market_sourced", "group_upserted", "account_group_set", "loss_limit_tripped", "trading_day_started")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_SET_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_SET_FIELD_NUMBER: _ClassVar[int]
    ORDER_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DECISION_REMEMBERED_FIELD_NUMBER: _ClassVar[int]
    ORDER_STEP_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    MARKET_APPLIED_FIELD_NUMBER: _ClassVar[int]
    AUDITED_FIELD_NUMBER: _ClassVar[int]
    MARKET_SOURCED_FIELD_NUMBER: _ClassVar[int]
    GROUP_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_GROUP_SET_FIELD_NUMBER: _ClassVar[int]
    LOSS_LIMIT_TRIPPED_FIELD_NUMBER: _ClassVar[int]
    TRADING_DAY_STARTED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time_ns: int
    principal: str
    account_upserted: AccountUpserted
    positions_set: PositionsSet
    trading_state_set: TradingStateSet
    order_accepted: OrderAccepted
    decision_remembered: DecisionRemembered
    order_step: _riskgate_pb2.OrderEvent
    reservations_expired: ReservationsExpired
    market_applied: MarketApplied
    audited: Audited
    market_sourced: MarketSourced
    group_upserted: GroupUpserted
    account_group_set: AccountGroupSet
    loss_limit_tripped: LossLimitTripped
    trading_day_started: TradingDayStarted
    def __init__(self, seq: _Optional[int] = ..., time_ns: _Optional[int] = ..., principal: _Optional[str] = ..., account_upserted: _Optional[_Union[AccountUpserted, _Mapping]] = ..., positions_set: _Optional[_Union[PositionsSet, _Mapping]] = ..., trading_state_set: _Optional[_Union[TradingStateSet, _Mapping]] = ..., order_accepted: _Optional[_Union[OrderAccepted, _Mapping]] = ..., decision_remembered: _Optional[_Union[DecisionRemembered, _Mapping]] = ..., order_step: _Optional[_Union[_riskgate_pb2.OrderEvent, _Mapping]] = ..., reservations_expired: _Optional[_Union[ReservationsExpired, _Mapping]] = ..., market_applied: _Optional[_Union[MarketApplied, _Mapping]] = ..., audited: _Optional[_Union[Audited, _Mapping]] = ..., market_sourced: _Optional[_Union[MarketSourced, _Mapping]] = ..., group_upserted: _Optional[_Union[GroupUpserted, _Mapping]] = ..., account_group_set: _Optional[_Union[AccountGroupSet, _Mapping]] = ..., loss_limit_tripped: _Optional[_Union[LossLimitTripped, _Mapping]] = ..., trading_day_started: _Optional[_Union[TradingDayStarted, _Mapping]] = ...) -> None: ...

class MarketSourced(_message.Message):
    __slots__ = ("market_seq", "refused")
    MARKET_SEQ_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    market_seq: int
    refused: str
    def __init__(self, market_seq: _Optional[int] = ..., refused: _Optional[str] = ...) -> None: ...

class Audited(_message.Message):
    __slots__ = ("principal", "method", "accounts", "outcome", "detail")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    principal: str
    method: str
    accounts: _containers.RepeatedScalarFieldContainer[str]
    outcome: str
    detail: str
    def __init__(self, principal: _Optional[str] = ..., method: _Optional[str] = ..., accounts: _Optional[_Iterable[str]] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class AccountUpserted(_message.Message):
    __slots__ = ("account_id", "pool_mode", "margin_method", "limits", "collateral")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_MODE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_METHOD_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    COLLATERAL_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    pool_mode: _riskgate_pb2.MarginPoolMode
    margin_method: _riskgate_pb2.MarginMethod
    limits: _riskgate_pb2.Limits
    collateral: Amounts
    def __init__(self, account_id: _Optional[str] = ..., pool_mode: _Optional[_Union[_riskgate_pb2.MarginPoolMode, str]] = ..., margin_method: _Optional[_Union[_riskgate_pb2.MarginMethod, str]] = ..., limits: _Optional[_Union[_riskgate_pb2.Limits, _Mapping]] = ..., collateral: _Optional[_Union[Amounts, _Mapping]] = ...) -> None: ...

class PositionsSet(_message.Message):
    __slots__ = ("account_id", "positions")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    positions: _containers.RepeatedCompositeFieldContainer[_riskgate_pb2.Position]
    def __init__(self, account_id: _Optional[str] = ..., positions: _Optional[_Iterable[_Union[_riskgate_pb2.Position, _Mapping]]] = ...) -> None: ...

class TradingStateSet(_message.Message):
    __slots__ = ("account_id", "all_accounts", "state", "reason")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    all_accounts: bool
    state: _riskgate_pb2.TradingState
    reason: str
    def __init__(self, account_id: _Optional[str] = ..., all_accounts: _Optional[bool] = ..., state: _Optional[_Union[_riskgate_pb2.TradingState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class OrderAccepted(_message.Message):
    __slots__ = ("order", "decision", "symbol", "pool", "accepted_ns", "reserve_until_ns")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_NS_FIELD_NUMBER: _ClassVar[int]
    RESERVE_UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    order: _riskgate_pb2.Order
    decision: _riskgate_pb2.Decision
    symbol: str
    pool: str
    accepted_ns: int
    reserve_until_ns: int
    def __init__(self, order: _Optional[_Union[_riskgate_pb2.Order, _Mapping]] = ..., decision: _Optional[_Union[_riskgate_pb2.Decision, _Mapping]] = ..., symbol: _Optional[str] = ..., pool: _Optional[str] = ..., accepted_ns: _Optional[int] = ..., reserve_until_ns: _Optional[int] = ...) -> None: ...

class DecisionRemembered(_message.Message):
    __slots__ = ("order", "decision", "decided_ns")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_NS_FIELD_NUMBER: _ClassVar[int]
    order: _riskgate_pb2.Order
    decision: _riskgate_pb2.Decision
    decided_ns: int
    def __init__(self, order: _Optional[_Union[_riskgate_pb2.Order, _Mapping]] = ..., decision: _Optional[_Union[_riskgate_pb2.Decision, _Mapping]] = ..., decided_ns: _Optional[int] = ...) -> None: ...

class ReservationsExpired(_message.Message):
    __slots__ = ("account_id", "client_order_ids")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    client_order_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., client_order_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MarketApplied(_message.Message):
    __slots__ = ("version", "valuation_time_ns", "index_usd", "marks_usd", "ivs", "rate", "received_ns")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUATION_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    INDEX_USD_FIELD_NUMBER: _ClassVar[int]
    MARKS_USD_FIELD_NUMBER: _ClassVar[int]
    IVS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_NS_FIELD_NUMBER: _ClassVar[int]
    version: int
    valuation_time_ns: int
    index_usd: Amounts
    marks_usd: Amounts
    ivs: Amounts
    rate: float
    received_ns: int
    def __init__(self, version: _Optional[int] = ..., valuation_time_ns: _Optional[int] = ..., index_usd: _Optional[_Union[Amounts, _Mapping]] = ..., marks_usd: _Optional[_Union[Amounts, _Mapping]] = ..., ivs: _Optional[_Union[Amounts, _Mapping]] = ..., rate: _Optional[float] = ..., received_ns: _Optional[int] = ...) -> None: ...

class BookSnapshot(_message.Message):
    __slots__ = ("seq", "market", "halt_all", "halt_all_reason", "accounts", "state_hash", "model", "state_format", "market_seq", "groups", "day_start_ns")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MARKET_FIELD_NUMBER: _ClassVar[int]
    HALT_ALL_FIELD_NUMBER: _ClassVar[int]
    HALT_ALL_REASON_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    STATE_HASH_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MARKET_SEQ_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DAY_START_NS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    market: MarketApplied
    halt_all: bool
    halt_all_reason: str
    accounts: _containers.RepeatedCompositeFieldContainer[AccountState]
    state_hash: str
    model: str
    state_format: int
    market_seq: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupState]
    day_start_ns: int
    def __init__(self, seq: _Optional[int] = ..., market: _Optional[_Union[MarketApplied, _Mapping]] = ..., halt_all: _Optional[bool] = ..., halt_all_reason: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[AccountState, _Mapping]]] = ..., state_hash: _Optional[str] = ..., model: _Optional[str] = ..., state_format: _Optional[int] = ..., market_seq: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupState, _Mapping]]] = ..., day_start_ns: _Optional[int] = ...) -> None: ...

class AccountState(_message.Message):
    __slots__ = ("account_id", "pool_mode", "margin_method", "limits", "trading_state", "trading_state_reason", "collateral", "avg_price", "working_buy", "working_sell", "orders", "decisions", "open_orders", "pending", "ended", "status", "method_in_use", "pools", "futures_basis", "controls")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_MODE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_METHOD_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    COLLATERAL_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_FIELD_NUMBER: _ClassVar[int]
    WORKING_BUY_FIELD_NUMBER: _ClassVar[int]
    WORKING_SELL_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METHOD_IN_USE_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    FUTURES_BASIS_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    pool_mode: _riskgate_pb2.MarginPoolMode
    margin_method: _riskgate_pb2.MarginMethod
    limits: _riskgate_pb2.Limits
    trading_state: _riskgate_pb2.TradingState
    trading_state_reason: str
    collateral: Amounts
    avg_price: Amounts
    working_buy: Amounts
    working_sell: Amounts
    orders: _containers.RepeatedCompositeFieldContainer[WorkingOrderState]
    decisions: _containers.RepeatedCompositeFieldContainer[RememberedDecision]
    open_orders: int
    pending: _containers.RepeatedCompositeFieldContainer[PendingReservation]
    ended: _containers.RepeatedScalarFieldContainer[str]
    status: _riskgate_pb2.MarginStatus
    method_in_use: _riskgate_pb2.MarginMethod
    pools: _containers.RepeatedCompositeFieldContainer[PoolState]
    futures_basis: Amounts
    controls: AccountControlState
    def __init__(self, account_id: _Optional[str] = ..., pool_mode: _Optional[_Union[_riskgate_pb2.MarginPoolMode, str]] = ..., margin_method: _Optional[_Union[_riskgate_pb2.MarginMethod, str]] = ..., limits: _Optional[_Union[_riskgate_pb2.Limits, _Mapping]] = ..., trading_state: _Optional[_Union[_riskgate_pb2.TradingState, str]] = ..., trading_state_reason: _Optional[str] = ..., collateral: _Optional[_Union[Amounts, _Mapping]] = ..., avg_price: _Optional[_Union[Amounts, _Mapping]] = ..., working_buy: _Optional[_Union[Amounts, _Mapping]] = ..., working_sell: _Optional[_Union[Amounts, _Mapping]] = ..., orders: _Optional[_Iterable[_Union[WorkingOrderState, _Mapping]]] = ..., decisions: _Optional[_Iterable[_Union[RememberedDecision, _Mapping]]] = ..., open_orders: _Optional[int] = ..., pending: _Optional[_Iterable[_Union[PendingReservation, _Mapping]]] = ..., ended: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[_riskgate_pb2.MarginStatus, str]] = ..., method_in_use: _Optional[_Union[_riskgate_pb2.MarginMethod, str]] = ..., pools: _Optional[_Iterable[_Union[PoolState, _Mapping]]] = ..., futures_basis: _Optional[_Union[Amounts, _Mapping]] = ..., controls: _Optional[_Union[AccountControlState, _Mapping]] = ...) -> None: ...

class GroupUpserted(_message.Message):
    __slots__ = ("group_id", "parent_id", "limits")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    parent_id: str
    limits: _riskgate_pb2.ControlLimits
    def __init__(self, group_id: _Optional[str] = ..., parent_id: _Optional[str] = ..., limits: _Optional[_Union[_riskgate_pb2.ControlLimits, _Mapping]] = ...) -> None: ...

class AccountGroupSet(_message.Message):
    __slots__ = ("account_id", "group_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    group_id: str
    def __init__(self, account_id: _Optional[str] = ..., group_id: _Optional[str] = ...) -> None: ...

class LossLimitTripped(_message.Message):
    __slots__ = ("group", "scope_id", "state", "pnl_usd", "limit_usd", "reason")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PNL_USD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    group: bool
    scope_id: str
    state: _riskgate_pb2.TradingState
    pnl_usd: float
    limit_usd: float
    reason: str
    def __init__(self, group: _Optional[bool] = ..., scope_id: _Optional[str] = ..., state: _Optional[_Union[_riskgate_pb2.TradingState, str]] = ..., pnl_usd: _Optional[float] = ..., limit_usd: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class TradingDayStarted(_message.Message):
    __slots__ = ("day_start_ns",)
    DAY_START_NS_FIELD_NUMBER: _ClassVar[int]
    day_start_ns: int
    def __init__(self, day_start_ns: _Optional[int] = ...) -> None: ...

class ExposureState(_message.Message):
    __slots__ = ("gross", "net_buy", "net_sell")
    GROSS_FIELD_NUMBER: _ClassVar[int]
    NET_BUY_FIELD_NUMBER: _ClassVar[int]
    NET_SELL_FIELD_NUMBER: _ClassVar[int]
    gross: str
    net_buy: str
    net_sell: str
    def __init__(self, gross: _Optional[str] = ..., net_buy: _Optional[str] = ..., net_sell: _Optional[str] = ...) -> None: ...

class WindowState(_message.Message):
    __slots__ = ("last", "ids", "counts", "sums", "count", "total")
    LAST_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    SUMS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    last: int
    ids: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    sums: _containers.RepeatedScalarFieldContainer[str]
    count: int
    total: str
    def __init__(self, last: _Optional[int] = ..., ids: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ..., sums: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., total: _Optional[str] = ...) -> None: ...

class ScopeState(_message.Message):
    __slots__ = ("tripped", "exposure", "alerted", "orders_window", "notional_window")
    TRIPPED_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    ALERTED_FIELD_NUMBER: _ClassVar[int]
    ORDERS_WINDOW_FIELD_NUMBER: _ClassVar[int]
    NOTIONAL_WINDOW_FIELD_NUMBER: _ClassVar[int]
    tripped: bool
    exposure: ExposureState
    alerted: _containers.RepeatedScalarFieldContainer[bool]
    orders_window: WindowState
    notional_window: WindowState
    def __init__(self, tripped: _Optional[bool] = ..., exposure: _Optional[_Union[ExposureState, _Mapping]] = ..., alerted: _Optional[_Iterable[bool]] = ..., orders_window: _Optional[_Union[WindowState, _Mapping]] = ..., notional_window: _Optional[_Union[WindowState, _Mapping]] = ...) -> None: ...

class AccountControlState(_message.Message):
    __slots__ = ("group_id", "baseline_usd", "scope")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_USD_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    baseline_usd: float
    scope: ScopeState
    def __init__(self, group_id: _Optional[str] = ..., baseline_usd: _Optional[float] = ..., scope: _Optional[_Union[ScopeState, _Mapping]] = ...) -> None: ...

class GroupState(_message.Message):
    __slots__ = ("group_id", "parent_id", "limits", "members", "scope")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    parent_id: str
    limits: _riskgate_pb2.ControlLimits
    members: _containers.RepeatedScalarFieldContainer[str]
    scope: ScopeState
    def __init__(self, group_id: _Optional[str] = ..., parent_id: _Optional[str] = ..., limits: _Optional[_Union[_riskgate_pb2.ControlLimits, _Mapping]] = ..., members: _Optional[_Iterable[str]] = ..., scope: _Optional[_Union[ScopeState, _Mapping]] = ...) -> None: ...

class PendingReservation(_message.Message):
    __slots__ = ("client_order_id", "reserve_until_ns")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVE_UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    reserve_until_ns: int
    def __init__(self, client_order_id: _Optional[str] = ..., reserve_until_ns: _Optional[int] = ...) -> None: ...

class WorkingOrderState(_message.Message):
    __slots__ = ("order", "symbol", "side", "pool", "quantity", "price", "accepted_ns", "reserve_until_ns", "filled", "status", "venue_order_id", "fill_ids", "has_fill_ids", "unit")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_NS_FIELD_NUMBER: _ClassVar[int]
    RESERVE_UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FILL_IDS_FIELD_NUMBER: _ClassVar[int]
    HAS_FILL_IDS_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    order: _riskgate_pb2.Order
    symbol: str
    side: _riskgate_pb2.Side
    pool: str
    quantity: float
    price: float
    accepted_ns: int
    reserve_until_ns: int
    filled: float
    status: _riskgate_pb2.OrderStatus
    venue_order_id: str
    fill_ids: _containers.RepeatedScalarFieldContainer[str]
    has_fill_ids: bool
    unit: float
    def __init__(self, order: _Optional[_Union[_riskgate_pb2.Order, _Mapping]] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_riskgate_pb2.Side, str]] = ..., pool: _Optional[str] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., accepted_ns: _Optional[int] = ..., reserve_until_ns: _Optional[int] = ..., filled: _Optional[float] = ..., status: _Optional[_Union[_riskgate_pb2.OrderStatus, str]] = ..., venue_order_id: _Optional[str] = ..., fill_ids: _Optional[_Iterable[str]] = ..., has_fill_ids: _Optional[bool] = ..., unit: _Optional[float] = ...) -> None: ...

class RememberedDecision(_message.Message):
    __slots__ = ("order", "decision", "decided_ns")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_NS_FIELD_NUMBER: _ClassVar[int]
    order: _riskgate_pb2.Order
    decision: _riskgate_pb2.Decision
    decided_ns: int
    def __init__(self, order: _Optional[_Union[_riskgate_pb2.Order, _Mapping]] = ..., decision: _Optional[_Union[_riskgate_pb2.Decision, _Mapping]] = ..., decided_ns: _Optional[int] = ...) -> None: ...

class PoolState(_message.Message):
    __slots__ = ("currency", "states", "rules", "track_rules", "figures", "scenario_keys")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    TRACK_RULES_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_KEYS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    states: _containers.RepeatedCompositeFieldContainer[ScenarioState]
    rules: _containers.RepeatedScalarFieldContainer[float]
    track_rules: bool
    figures: _containers.RepeatedScalarFieldContainer[float]
    scenario_keys: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, currency: _Optional[str] = ..., states: _Optional[_Iterable[_Union[ScenarioState, _Mapping]]] = ..., rules: _Optional[_Iterable[float]] = ..., track_rules: _Optional[bool] = ..., figures: _Optional[_Iterable[float]] = ..., scenario_keys: _Optional[_Iterable[float]] = ...) -> None: ...

class ScenarioState(_message.Message):
    __slots__ = ("quantities", "cash_balances", "cash", "pnl", "aux")
    QUANTITIES_FIELD_NUMBER: _ClassVar[int]
    CASH_BALANCES_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    AUX_FIELD_NUMBER: _ClassVar[int]
    quantities: Amounts
    cash_balances: Amounts
    cash: float
    pnl: bytes
    aux: bytes
    def __init__(self, quantities: _Optional[_Union[Amounts, _Mapping]] = ..., cash_balances: _Optional[_Union[Amounts, _Mapping]] = ..., cash: _Optional[float] = ..., pnl: _Optional[bytes] = ..., aux: _Optional[bytes] = ...) -> None: ...
