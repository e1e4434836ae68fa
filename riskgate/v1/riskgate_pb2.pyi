import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_ORDER: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_ACCOUNT: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_INSTRUMENT: _ClassVar[RejectReason]
    REJECT_REASON_INSTRUMENT_EXPIRED: _ClassVar[RejectReason]
    REJECT_REASON_DUPLICATE_ORDER_ID_MISMATCH: _ClassVar[RejectReason]
    REJECT_REASON_ACCOUNT_HALTED: _ClassVar[RejectReason]
    REJECT_REASON_ACCOUNT_REDUCING_ONLY: _ClassVar[RejectReason]
    REJECT_REASON_MAX_ORDER_QUANTITY: _ClassVar[RejectReason]
    REJECT_REASON_MAX_ORDER_NOTIONAL: _ClassVar[RejectReason]
    REJECT_REASON_PRICE_BAND: _ClassVar[RejectReason]
    REJECT_REASON_MAX_OPEN_ORDERS: _ClassVar[RejectReason]
    REJECT_REASON_POSITION_LIMIT: _ClassVar[RejectReason]
    REJECT_REASON_INSUFFICIENT_MARGIN: _ClassVar[RejectReason]
    REJECT_REASON_LATENCY_BUDGET_EXCEEDED: _ClassVar[RejectReason]
    REJECT_REASON_MARKET_DATA_MISSING: _ClassVar[RejectReason]
    REJECT_REASON_INTERNAL_ERROR: _ClassVar[RejectReason]
    REJECT_REASON_REDUCE_ONLY_VIOLATION: _ClassVar[RejectReason]
    REJECT_REASON_MARKET_DATA_STALE: _ClassVar[RejectReason]
    REJECT_REASON_VELOCITY_LIMIT: _ClassVar[RejectReason]
    REJECT_REASON_CREDIT_LIMIT: _ClassVar[RejectReason]
    REJECT_REASON_LOSS_LIMIT: _ClassVar[RejectReason]
    REJECT_REASON_GROUP_LIMIT: _ClassVar[RejectReason]
    REJECT_REASON_MESSAGE_THROTTLE: _ClassVar[RejectReason]

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GOOD_TIL_CANCELLED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IMMEDIATE_OR_CANCEL: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FILL_OR_KILL: _ClassVar[TimeInForce]

class MarginPoolMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARGIN_POOL_MODE_UNSPECIFIED: _ClassVar[MarginPoolMode]
    MARGIN_POOL_MODE_CROSS: _ClassVar[MarginPoolMode]
    MARGIN_POOL_MODE_SEGREGATED: _ClassVar[MarginPoolMode]

class MarginMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARGIN_METHOD_UNSPECIFIED: _ClassVar[MarginMethod]
    MARGIN_METHOD_PORTFOLIO: _ClassVar[MarginMethod]
    MARGIN_METHOD_RULES_BASED: _ClassVar[MarginMethod]
    MARGIN_METHOD_AUTO: _ClassVar[MarginMethod]

class TradingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADING_STATE_UNSPECIFIED: _ClassVar[TradingState]
    TRADING_STATE_ACTIVE: _ClassVar[TradingState]
    TRADING_STATE_REDUCING: _ClassVar[TradingState]
    TRADING_STATE_HALTED: _ClassVar[TradingState]

class MarginStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARGIN_STATUS_UNSPECIFIED: _ClassVar[MarginStatus]
    MARGIN_STATUS_OK: _ClassVar[MarginStatus]
    MARGIN_STATUS_MARGIN_CALL: _ClassVar[MarginStatus]
    MARGIN_STATUS_LIQUIDATION: _ClassVar[MarginStatus]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_PENDING_ACK: _ClassVar[OrderStatus]
    ORDER_STATUS_OPEN: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
    ORDER_STATUS_EXPIRED: _ClassVar[OrderStatus]
    ORDER_STATUS_VENUE_REJECTED: _ClassVar[OrderStatus]
    ORDER_STATUS_RESERVATION_EXPIRED: _ClassVar[OrderStatus]

class InstrumentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTRUMENT_KIND_UNSPECIFIED: _ClassVar[InstrumentKind]
    INSTRUMENT_KIND_SPOT: _ClassVar[InstrumentKind]
    INSTRUMENT_KIND_PERPETUAL: _ClassVar[InstrumentKind]
    INSTRUMENT_KIND_FUTURE: _ClassVar[InstrumentKind]
    INSTRUMENT_KIND_CALL: _ClassVar[InstrumentKind]
    INSTRUMENT_KIND_PUT: _ClassVar[InstrumentKind]

class Settlement(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTLEMENT_UNSPECIFIED: _ClassVar[Settlement]
    SETTLEMENT_LINEAR: _ClassVar[Settlement]
    SETTLEMENT_INVERSE: _ClassVar[Settlement]

class ControlAlert(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_ALERT_UNSPECIFIED: _ClassVar[ControlAlert]
    CONTROL_ALERT_CREDIT_WARNING: _ClassVar[ControlAlert]
    CONTROL_ALERT_LOSS_LIMIT_TRIPPED: _ClassVar[ControlAlert]
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_INVALID_ORDER: RejectReason
REJECT_REASON_UNKNOWN_ACCOUNT: RejectReason
REJECT_REASON_UNKNOWN_INSTRUMENT: RejectReason
REJECT_REASON_INSTRUMENT_EXPIRED: RejectReason
REJECT_REASON_DUPLICATE_ORDER_ID_MISMATCH: RejectReason
REJECT_REASON_ACCOUNT_HALTED: RejectReason
REJECT_REASON_ACCOUNT_REDUCING_ONLY: RejectReason
REJECT_REASON_MAX_ORDER_QUANTITY: RejectReason
REJECT_REASON_MAX_ORDER_NOTIONAL: RejectReason
REJECT_REASON_PRICE_BAND: RejectReason
REJECT_REASON_MAX_OPEN_ORDERS: RejectReason
REJECT_REASON_POSITION_LIMIT: RejectReason
REJECT_REASON_INSUFFICIENT_MARGIN: RejectReason
REJECT_REASON_LATENCY_BUDGET_EXCEEDED: RejectReason
REJECT_REASON_MARKET_DATA_MISSING: RejectReason
REJECT_REASON_INTERNAL_ERROR: RejectReason
REJECT_REASON_REDUCE_ONLY_VIOLATION: RejectReason
REJECT_REASON_MARKET_DATA_STALE: RejectReason
REJECT_REASON_VELOCITY_LIMIT: RejectReason
REJECT_REASON_CREDIT_LIMIT: RejectReason
REJECT_REASON_LOSS_LIMIT: RejectReason
REJECT_REASON_GROUP_LIMIT: RejectReason
REJECT_REASON_MESSAGE_THROTTLE: RejectReason
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_MARKET: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GOOD_TIL_CANCELLED: TimeInForce
TIME_IN_FORCE_IMMEDIATE_OR_CANCEL: TimeInForce
TIME_IN_FORCE_FILL_OR_KILL: TimeInForce
MARGIN_POOL_MODE_UNSPECIFIED: MarginPoolMode
MARGIN_POOL_MODE_CROSS: MarginPoolMode
MARGIN_POOL_MODE_SEGREGATED: MarginPoolMode
MARGIN_METHOD_UNSPECIFIED: MarginMethod
MARGIN_METHOD_PORTFOLIO: MarginMethod
MARGIN_METHOD_RULES_BASED: MarginMethod
MARGIN_METHOD_AUTO: MarginMethod
TRADING_STATE_UNSPECIFIED: TradingState
TRADING_STATE_ACTIVE: TradingState
TRADING_STATE_REDUCING: TradingState
TRADING_STATE_HALTED: TradingState
MARGIN_STATUS_UNSPECIFIED: MarginStatus
MARGIN_STATUS_OK: MarginStatus
MARGIN_STATUS_MARGIN_CALL: MarginStatus
MARGIN_STATUS_LIQUIDATION: MarginStatus
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_PENDING_ACK: OrderStatus
ORDER_STATUS_OPEN: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus
ORDER_STATUS_EXPIRED: OrderStatus
ORDER_STATUS_VENUE_REJECTED: OrderStatus
ORDER_STATUS_RESERVATION_EXPIRED: OrderStatus
INSTRUMENT_KIND_UNSPECIFIED: InstrumentKind
INSTRUMENT_KIND_SPOT: InstrumentKind
INSTRUMENT_KIND_PERPETUAL: InstrumentKind
INSTRUMENT_KIND_FUTURE: InstrumentKind
INSTRUMENT_KIND_CALL: InstrumentKind
INSTRUMENT_KIND_PUT: InstrumentKind
SETTLEMENT_UNSPECIFIED: Settlement
SETTLEMENT_LINEAR: Settlement
SETTLEMENT_INVERSE: Settlement
CONTROL_ALERT_UNSPECIFIED: ControlAlert
CONTROL_ALERT_CREDIT_WARNING: ControlAlert
CONTROL_ALERT_LOSS_LIMIT_TRIPPED: ControlAlert

class Order(_message.Message):
    __slots__ = ("account_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price", "reduce_only", "time_in_force")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    price: float
    reduce_only: bool
    time_in_force: TimeInForce
    def __init__(self, account_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., order_type: _Optional[_Union[OrderType, str]] = ..., quantity: _Optional[float] = ..., price: _Optional[float] = ..., reduce_only: _Optional[bool] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ...) -> None: ...

class CheckOrderRequest(_message.Message):
    __slots__ = ("order", "explain")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    order: Order
    explain: bool
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., explain: _Optional[bool] = ...) -> None: ...

class CheckOrdersRequest(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class CheckOrdersResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class RejectContext(_message.Message):
    __slots__ = ("field", "limit_value", "actual_value", "unit")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_VALUE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    field: str
    limit_value: float
    actual_value: float
    unit: str
    def __init__(self, field: _Optional[str] = ..., limit_value: _Optional[float] = ..., actual_value: _Optional[float] = ..., unit: _Optional[str] = ...) -> None: ...

class Scenario(_message.Message):
    __slots__ = ("index", "price_move_fraction", "vol_move", "pool_currency", "underlying", "loss", "price_moves", "name")
    class PriceMovesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PRICE_MOVE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    VOL_MOVE_FIELD_NUMBER: _ClassVar[int]
    POOL_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    PRICE_MOVES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    index: int
    price_move_fraction: float
    vol_move: str
    pool_currency: str
    underlying: str
    loss: float
    price_moves: _containers.ScalarMap[str, float]
    name: str
    def __init__(self, index: _Optional[int] = ..., price_move_fraction: _Optional[float] = ..., vol_move: _Optional[str] = ..., pool_currency: _Optional[str] = ..., underlying: _Optional[str] = ..., loss: _Optional[float] = ..., price_moves: _Optional[_Mapping[str, float]] = ..., name: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("account_id", "client_order_id", "accepted", "reason", "detail", "context", "initial_margin_before", "initial_margin_after", "maintenance_margin_before", "maintenance_margin_after", "equity_before", "equity_after", "worst_scenario", "pool_currency", "risk_reducing", "duplicate", "margin_method", "compute_ns", "market_version", "attribution")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MARGIN_BEFORE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MARGIN_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_MARGIN_BEFORE_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_MARGIN_AFTER_FIELD_NUMBER: _ClassVar[int]
    EQUITY_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EQUITY_AFTER_FIELD_NUMBER: _ClassVar[int]
    WORST_SCENARIO_FIELD_NUMBER: _ClassVar[int]
    POOL_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    RISK_REDUCING_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_METHOD_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_NS_FIELD_NUMBER: _ClassVar[int]
    MARKET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    client_order_id: str
    accepted: bool
    reason: RejectReason
    detail: str
    context: RejectContext
    initial_margin_before: float
    initial_margin_after: float
    maintenance_margin_before: float
    maintenance_margin_after: float
    equity_before: float
    equity_after: float
    worst_scenario: Scenario
    pool_currency: str
    risk_reducing: bool
    duplicate: bool
    margin_method: MarginMethod
    compute_ns: int
    market_version: int
    attribution: _containers.RepeatedCompositeFieldContainer[LegAttribution]
    def __init__(self, account_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ..., context: _Optional[_Union[RejectContext, _Mapping]] = ..., initial_margin_before: _Optional[float] = ..., initial_margin_after: _Optional[float] = ..., maintenance_margin_before: _Optional[float] = ..., maintenance_margin_after: _Optional[float] = ..., equity_before: _Optional[float] = ..., equity_after: _Optional[float] = ..., worst_scenario: _Optional[_Union[Scenario, _Mapping]] = ..., pool_currency: _Optional[str] = ..., risk_reducing: _Optional[bool] = ..., duplicate: _Optional[bool] = ..., margin_method: _Optional[_Union[MarginMethod, str]] = ..., compute_ns: _Optional[int] = ..., market_version: _Optional[int] = ..., attribution: _Optional[_Iterable[_Union[LegAttribution, _Mapping]]] = ...) -> None: ...

class LegAttribution(_message.Message):
    __slots__ = ("symbol", "quantity", "pnl")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PNL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    pnl: float
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., pnl: _Optional[float] = ...) -> None: ...

class MaxQuantityRequest(_message.Message):
    __slots__ = ("account_id", "symbol", "price")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    symbol: str
    price: float
    def __init__(self, account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., price: _Optional[float] = ...) -> None: ...

class MaxQuantityResponse(_message.Message):
    __slots__ = ("account_id", "symbol", "max_buy_quantity", "max_sell_quantity", "buy_limited_by", "sell_limited_by", "compute_ns", "market_version")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MAX_BUY_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SELL_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BUY_LIMITED_BY_FIELD_NUMBER: _ClassVar[int]
    SELL_LIMITED_BY_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_NS_FIELD_NUMBER: _ClassVar[int]
    MARKET_VERSION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    symbol: str
    max_buy_quantity: float
    max_sell_quantity: float
    buy_limited_by: RejectReason
    sell_limited_by: RejectReason
    compute_ns: int
    market_version: int
    def __init__(self, account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., max_buy_quantity: _Optional[float] = ..., max_sell_quantity: _Optional[float] = ..., buy_limited_by: _Optional[_Union[RejectReason, str]] = ..., sell_limited_by: _Optional[_Union[RejectReason, str]] = ..., compute_ns: _Optional[int] = ..., market_version: _Optional[int] = ...) -> None: ...

class OrderEvent(_message.Message):
    __slots__ = ("account_id", "client_order_id", "event_time", "acknowledged", "venue_rejected", "cancelled", "expired", "amended", "filled")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    VENUE_REJECTED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    AMENDED_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    client_order_id: str
    event_time: _timestamp_pb2.Timestamp
    acknowledged: VenueAcknowledged
    venue_rejected: VenueRejected
    cancelled: Cancelled
    expired: Expired
    amended: Amended
    filled: Filled
    def __init__(self, account_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged: _Optional[_Union[VenueAcknowledged, _Mapping]] = ..., venue_rejected: _Optional[_Union[VenueRejected, _Mapping]] = ..., cancelled: _Optional[_Union[Cancelled, _Mapping]] = ..., expired: _Optional[_Union[Expired, _Mapping]] = ..., amended: _Optional[_Union[Amended, _Mapping]] = ..., filled: _Optional[_Union[Filled, _Mapping]] = ...) -> None: ...

class VenueAcknowledged(_message.Message):
    __slots__ = ("venue_order_id",)
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    venue_order_id: str
    def __init__(self, venue_order_id: _Optional[str] = ...) -> None: ...

class VenueRejected(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Cancelled(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Expired(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Amended(_message.Message):
    __slots__ = ("new_quantity", "new_price")
    NEW_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    NEW_PRICE_FIELD_NUMBER: _ClassVar[int]
    new_quantity: float
    new_price: float
    def __init__(self, new_quantity: _Optional[float] = ..., new_price: _Optional[float] = ...) -> None: ...

class Filled(_message.Message):
    __slots__ = ("fill_quantity", "fill_price", "fill_id")
    FILL_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    FILL_ID_FIELD_NUMBER: _ClassVar[int]
    fill_quantity: float
    fill_price: float
    fill_id: str
    def __init__(self, fill_quantity: _Optional[float] = ..., fill_price: _Optional[float] = ..., fill_id: _Optional[str] = ...) -> None: ...

class OrderEventAck(_message.Message):
    __slots__ = ("account_id", "client_order_id", "duplicate", "order_status", "filled_quantity", "working_quantity")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ORDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    WORKING_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    client_order_id: str
    duplicate: bool
    order_status: OrderStatus
    filled_quantity: float
    working_quantity: float
    def __init__(self, account_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., duplicate: _Optional[bool] = ..., order_status: _Optional[_Union[OrderStatus, str]] = ..., filled_quantity: _Optional[float] = ..., working_quantity: _Optional[float] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_order_quantity", "max_order_notional_usd", "price_band_fraction", "max_open_orders", "default_position_limit", "position_limits", "controls")
    class PositionLimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MAX_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDER_NOTIONAL_USD_FIELD_NUMBER: _ClassVar[int]
    PRICE_BAND_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_POSITION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    POSITION_LIMITS_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    max_order_quantity: float
    max_order_notional_usd: float
    price_band_fraction: float
    max_open_orders: int
    default_position_limit: float
    position_limits: _containers.ScalarMap[str, float]
    controls: ControlLimits
    def __init__(self, max_order_quantity: _Optional[float] = ..., max_order_notional_usd: _Optional[float] = ..., price_band_fraction: _Optional[float] = ..., max_open_orders: _Optional[int] = ..., default_position_limit: _Optional[float] = ..., position_limits: _Optional[_Mapping[str, float]] = ..., controls: _Optional[_Union[ControlLimits, _Mapping]] = ...) -> None: ...

class ControlLimits(_message.Message):
    __slots__ = ("max_orders", "orders_window_ms", "max_notional_usd", "notional_window_ms", "max_gross_notional_usd", "max_net_notional_usd", "credit_warning_fraction", "max_daily_loss_usd", "loss_action", "class_max_quantity", "class_price_band")
    class ClassMaxQuantityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ClassPriceBandEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MAX_ORDERS_FIELD_NUMBER: _ClassVar[int]
    ORDERS_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_NOTIONAL_USD_FIELD_NUMBER: _ClassVar[int]
    NOTIONAL_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_GROSS_NOTIONAL_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_NET_NOTIONAL_USD_FIELD_NUMBER: _ClassVar[int]
    CREDIT_WARNING_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_DAILY_LOSS_USD_FIELD_NUMBER: _ClassVar[int]
    LOSS_ACTION_FIELD_NUMBER: _ClassVar[int]
    CLASS_MAX_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CLASS_PRICE_BAND_FIELD_NUMBER: _ClassVar[int]
    max_orders: int
    orders_window_ms: int
    max_notional_usd: float
    notional_window_ms: int
    max_gross_notional_usd: float
    max_net_notional_usd: float
    credit_warning_fraction: float
    max_daily_loss_usd: float
    loss_action: TradingState
    class_max_quantity: _containers.ScalarMap[str, float]
    class_price_band: _containers.ScalarMap[str, float]
    def __init__(self, max_orders: _Optional[int] = ..., orders_window_ms: _Optional[int] = ..., max_notional_usd: _Optional[float] = ..., notional_window_ms: _Optional[int] = ..., max_gross_notional_usd: _Optional[float] = ..., max_net_notional_usd: _Optional[float] = ..., credit_warning_fraction: _Optional[float] = ..., max_daily_loss_usd: _Optional[float] = ..., loss_action: _Optional[_Union[TradingState, str]] = ..., class_max_quantity: _Optional[_Mapping[str, float]] = ..., class_price_band: _Optional[_Mapping[str, float]] = ...) -> None: ...

class LimitUsage(_message.Message):
    __slots__ = ("scope", "limit", "limit_value", "used", "unit")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_VALUE_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    scope: str
    limit: str
    limit_value: float
    used: float
    unit: str
    def __init__(self, scope: _Optional[str] = ..., limit: _Optional[str] = ..., limit_value: _Optional[float] = ..., used: _Optional[float] = ..., unit: _Optional[str] = ...) -> None: ...

class ControlsView(_message.Message):
    __slots__ = ("groups", "day_pnl_usd", "loss_limit_tripped", "trading_day_start_ns", "usage")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DAY_PNL_USD_FIELD_NUMBER: _ClassVar[int]
    LOSS_LIMIT_TRIPPED_FIELD_NUMBER: _ClassVar[int]
    TRADING_DAY_START_NS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedScalarFieldContainer[str]
    day_pnl_usd: float
    loss_limit_tripped: bool
    trading_day_start_ns: int
    usage: _containers.RepeatedCompositeFieldContainer[LimitUsage]
    def __init__(self, groups: _Optional[_Iterable[str]] = ..., day_pnl_usd: _Optional[float] = ..., loss_limit_tripped: _Optional[bool] = ..., trading_day_start_ns: _Optional[int] = ..., usage: _Optional[_Iterable[_Union[LimitUsage, _Mapping]]] = ...) -> None: ...

class UpsertGroupRequest(_message.Message):
    __slots__ = ("group_id", "parent_id", "limits")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    parent_id: str
    limits: ControlLimits
    def __init__(self, group_id: _Optional[str] = ..., parent_id: _Optional[str] = ..., limits: _Optional[_Union[ControlLimits, _Mapping]] = ...) -> None: ...

class SetAccountGroupRequest(_message.Message):
    __slots__ = ("account_id", "group_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    group_id: str
    def __init__(self, account_id: _Optional[str] = ..., group_id: _Optional[str] = ...) -> None: ...

class SetAccountGroupResponse(_message.Message):
    __slots__ = ("controls",)
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    controls: ControlsView
    def __init__(self, controls: _Optional[_Union[ControlsView, _Mapping]] = ...) -> None: ...

class GetGroupRequest(_message.Message):
    __slots__ = ("group_id",)
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    def __init__(self, group_id: _Optional[str] = ...) -> None: ...

class GroupView(_message.Message):
    __slots__ = ("group_id", "parent_id", "accounts", "child_groups", "limits", "day_pnl_usd", "loss_limit_tripped", "usage")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    CHILD_GROUPS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DAY_PNL_USD_FIELD_NUMBER: _ClassVar[int]
    LOSS_LIMIT_TRIPPED_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    parent_id: str
    accounts: _containers.RepeatedScalarFieldContainer[str]
    child_groups: _containers.RepeatedScalarFieldContainer[str]
    limits: ControlLimits
    day_pnl_usd: float
    loss_limit_tripped: bool
    usage: _containers.RepeatedCompositeFieldContainer[LimitUsage]
    def __init__(self, group_id: _Optional[str] = ..., parent_id: _Optional[str] = ..., accounts: _Optional[_Iterable[str]] = ..., child_groups: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[ControlLimits, _Mapping]] = ..., day_pnl_usd: _Optional[float] = ..., loss_limit_tripped: _Optional[bool] = ..., usage: _Optional[_Iterable[_Union[LimitUsage, _Mapping]]] = ...) -> None: ...

class UpsertAccountRequest(_message.Message):
    __slots__ = ("account_id", "collateral", "pool_mode", "margin_method", "limits")
    class CollateralEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    COLLATERAL_FIELD_NUMBER: _ClassVar[int]
    POOL_MODE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_METHOD_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    collateral: _containers.ScalarMap[str, float]
    pool_mode: MarginPoolMode
    margin_method: MarginMethod
    limits: Limits
    def __init__(self, account_id: _Optional[str] = ..., collateral: _Optional[_Mapping[str, float]] = ..., pool_mode: _Optional[_Union[MarginPoolMode, str]] = ..., margin_method: _Optional[_Union[MarginMethod, str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class UpsertAccountResponse(_message.Message):
    __slots__ = ("created", "account")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    created: bool
    account: AccountView
    def __init__(self, created: _Optional[bool] = ..., account: _Optional[_Union[AccountView, _Mapping]] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "quantity", "avg_price")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    avg_price: float
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., avg_price: _Optional[float] = ...) -> None: ...

class SetPositionsRequest(_message.Message):
    __slots__ = ("account_id", "positions")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, account_id: _Optional[str] = ..., positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class SetPositionsResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: AccountView
    def __init__(self, account: _Optional[_Union[AccountView, _Mapping]] = ...) -> None: ...

class SetTradingStateRequest(_message.Message):
    __slots__ = ("account_id", "all_accounts", "state", "reason")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    all_accounts: bool
    state: TradingState
    reason: str
    def __init__(self, account_id: _Optional[str] = ..., all_accounts: _Optional[bool] = ..., state: _Optional[_Union[TradingState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetTradingStateResponse(_message.Message):
    __slots__ = ("accounts_affected",)
    ACCOUNTS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    accounts_affected: int
    def __init__(self, accounts_affected: _Optional[int] = ...) -> None: ...

class UpdateMarketRequest(_message.Message):
    __slots__ = ("full_snapshot", "valuation_time", "index_usd", "marks_usd", "ivs", "rate", "override_guards")
    class IndexUsdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class MarksUsdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class IvsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    FULL_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    VALUATION_TIME_FIELD_NUMBER: _ClassVar[int]
    INDEX_USD_FIELD_NUMBER: _ClassVar[int]
    MARKS_USD_FIELD_NUMBER: _ClassVar[int]
    IVS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_GUARDS_FIELD_NUMBER: _ClassVar[int]
    full_snapshot: bool
    valuation_time: _timestamp_pb2.Timestamp
    index_usd: _containers.ScalarMap[str, float]
    marks_usd: _containers.ScalarMap[str, float]
    ivs: _containers.ScalarMap[str, float]
    rate: float
    override_guards: bool
    def __init__(self, full_snapshot: _Optional[bool] = ..., valuation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., index_usd: _Optional[_Mapping[str, float]] = ..., marks_usd: _Optional[_Mapping[str, float]] = ..., ivs: _Optional[_Mapping[str, float]] = ..., rate: _Optional[float] = ..., override_guards: _Optional[bool] = ...) -> None: ...

class UpdateMarketResponse(_message.Message):
    __slots__ = ("market_version", "accounts_remargined", "compute_ns")
    MARKET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_REMARGINED_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_NS_FIELD_NUMBER: _ClassVar[int]
    market_version: int
    accounts_remargined: int
    compute_ns: int
    def __init__(self, market_version: _Optional[int] = ..., accounts_remargined: _Optional[int] = ..., compute_ns: _Optional[int] = ...) -> None: ...

class ListInstrumentsRequest(_message.Message):
    __slots__ = ("underlying", "kind")
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    underlying: str
    kind: InstrumentKind
    def __init__(self, underlying: _Optional[str] = ..., kind: _Optional[_Union[InstrumentKind, str]] = ...) -> None: ...

class InstrumentInfo(_message.Message):
    __slots__ = ("symbol", "kind", "underlying", "settlement", "expiry", "strike_usd", "multiplier", "mark_price", "quote_currency", "implied_vol")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    STRIKE_USD_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MARK_PRICE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    IMPLIED_VOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    kind: InstrumentKind
    underlying: str
    settlement: Settlement
    expiry: _timestamp_pb2.Timestamp
    strike_usd: float
    multiplier: float
    mark_price: float
    quote_currency: str
    implied_vol: float
    def __init__(self, symbol: _Optional[str] = ..., kind: _Optional[_Union[InstrumentKind, str]] = ..., underlying: _Optional[str] = ..., settlement: _Optional[_Union[Settlement, str]] = ..., expiry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., strike_usd: _Optional[float] = ..., multiplier: _Optional[float] = ..., mark_price: _Optional[float] = ..., quote_currency: _Optional[str] = ..., implied_vol: _Optional[float] = ...) -> None: ...

class ListInstrumentsResponse(_message.Message):
    __slots__ = ("instruments", "market_version", "valuation_time")
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    MARKET_VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUATION_TIME_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedCompositeFieldContainer[InstrumentInfo]
    market_version: int
    valuation_time: _timestamp_pb2.Timestamp
    def __init__(self, instruments: _Optional[_Iterable[_Union[InstrumentInfo, _Mapping]]] = ..., market_version: _Optional[int] = ..., valuation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class PositionView(_message.Message):
    __slots__ = ("symbol", "quantity", "avg_price", "mark_price", "value", "pool_currency", "notional_usd")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_FIELD_NUMBER: _ClassVar[int]
    MARK_PRICE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    POOL_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    NOTIONAL_USD_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    avg_price: float
    mark_price: float
    value: float
    pool_currency: str
    notional_usd: float
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., avg_price: _Optional[float] = ..., mark_price: _Optional[float] = ..., value: _Optional[float] = ..., pool_currency: _Optional[str] = ..., notional_usd: _Optional[float] = ...) -> None: ...

class WorkingOrder(_message.Message):
    __slots__ = ("client_order_id", "symbol", "side", "order_type", "quantity", "filled_quantity", "working_quantity", "price", "reduce_only", "status", "venue_order_id", "accepted_time", "time_in_force")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    WORKING_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    filled_quantity: float
    working_quantity: float
    price: float
    reduce_only: bool
    status: OrderStatus
    venue_order_id: str
    accepted_time: _timestamp_pb2.Timestamp
    time_in_force: TimeInForce
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., order_type: _Optional[_Union[OrderType, str]] = ..., quantity: _Optional[float] = ..., filled_quantity: _Optional[float] = ..., working_quantity: _Optional[float] = ..., price: _Optional[float] = ..., reduce_only: _Optional[bool] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., venue_order_id: _Optional[str] = ..., accepted_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ...) -> None: ...

class PoolView(_message.Message):
    __slots__ = ("currency", "equity", "initial_margin", "maintenance_margin", "worst_scenario", "add_ons", "margin_status", "margin_method")
    class AddOnsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MARGIN_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    WORST_SCENARIO_FIELD_NUMBER: _ClassVar[int]
    ADD_ONS_FIELD_NUMBER: _ClassVar[int]
    MARGIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    MARGIN_METHOD_FIELD_NUMBER: _ClassVar[int]
    currency: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    worst_scenario: Scenario
    add_ons: _containers.ScalarMap[str, float]
    margin_status: MarginStatus
    margin_method: MarginMethod
    def __init__(self, currency: _Optional[str] = ..., equity: _Optional[float] = ..., initial_margin: _Optional[float] = ..., maintenance_margin: _Optional[float] = ..., worst_scenario: _Optional[_Union[Scenario, _Mapping]] = ..., add_ons: _Optional[_Mapping[str, float]] = ..., margin_status: _Optional[_Union[MarginStatus, str]] = ..., margin_method: _Optional[_Union[MarginMethod, str]] = ...) -> None: ...

class AccountView(_message.Message):
    __slots__ = ("account_id", "trading_state", "trading_state_reason", "pool_mode", "margin_method", "margin_status", "equity_usd", "initial_margin_usd", "maintenance_margin_usd", "worst_scenario", "pools", "positions", "working_orders", "collateral", "limits", "market_version", "valuation_time", "controls")
    class CollateralEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    POOL_MODE_FIELD_NUMBER: _ClassVar[int]
    MARGIN_METHOD_FIELD_NUMBER: _ClassVar[int]
    MARGIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    EQUITY_USD_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MARGIN_USD_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_MARGIN_USD_FIELD_NUMBER: _ClassVar[int]
    WORST_SCENARIO_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    WORKING_ORDERS_FIELD_NUMBER: _ClassVar[int]
    COLLATERAL_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MARKET_VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUATION_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    trading_state: TradingState
    trading_state_reason: str
    pool_mode: MarginPoolMode
    margin_method: MarginMethod
    margin_status: MarginStatus
    equity_usd: float
    initial_margin_usd: float
    maintenance_margin_usd: float
    worst_scenario: Scenario
    pools: _containers.RepeatedCompositeFieldContainer[PoolView]
    positions: _containers.RepeatedCompositeFieldContainer[PositionView]
    working_orders: _containers.RepeatedCompositeFieldContainer[WorkingOrder]
    collateral: _containers.ScalarMap[str, float]
    limits: Limits
    market_version: int
    valuation_time: _timestamp_pb2.Timestamp
    controls: ControlsView
    def __init__(self, account_id: _Optional[str] = ..., trading_state: _Optional[_Union[TradingState, str]] = ..., trading_state_reason: _Optional[str] = ..., pool_mode: _Optional[_Union[MarginPoolMode, str]] = ..., margin_method: _Optional[_Union[MarginMethod, str]] = ..., margin_status: _Optional[_Union[MarginStatus, str]] = ..., equity_usd: _Optional[float] = ..., initial_margin_usd: _Optional[float] = ..., maintenance_margin_usd: _Optional[float] = ..., worst_scenario: _Optional[_Union[Scenario, _Mapping]] = ..., pools: _Optional[_Iterable[_Union[PoolView, _Mapping]]] = ..., positions: _Optional[_Iterable[_Union[PositionView, _Mapping]]] = ..., working_orders: _Optional[_Iterable[_Union[WorkingOrder, _Mapping]]] = ..., collateral: _Optional[_Mapping[str, float]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., market_version: _Optional[int] = ..., valuation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., controls: _Optional[_Union[ControlsView, _Mapping]] = ...) -> None: ...

class StreamMarginStatusRequest(_message.Message):
    __slots__ = ("account_ids", "include_current")
    ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CURRENT_FIELD_NUMBER: _ClassVar[int]
    account_ids: _containers.RepeatedScalarFieldContainer[str]
    include_current: bool
    def __init__(self, account_ids: _Optional[_Iterable[str]] = ..., include_current: _Optional[bool] = ...) -> None: ...

class MarginStatusEvent(_message.Message):
    __slots__ = ("account_id", "previous_status", "status", "pool_currency", "equity", "initial_margin", "maintenance_margin", "time", "market_version", "alert", "group_id", "limit_name", "limit_value", "used", "warning_fraction")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POOL_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MARGIN_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_MARGIN_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    MARKET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_VALUE_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    WARNING_FRACTION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    previous_status: MarginStatus
    status: MarginStatus
    pool_currency: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    time: _timestamp_pb2.Timestamp
    market_version: int
    alert: ControlAlert
    group_id: str
    limit_name: str
    limit_value: float
    used: float
    warning_fraction: float
    def __init__(self, account_id: _Optional[str] = ..., previous_status: _Optional[_Union[MarginStatus, str]] = ..., status: _Optional[_Union[MarginStatus, str]] = ..., pool_currency: _Optional[str] = ..., equity: _Optional[float] = ..., initial_margin: _Optional[float] = ..., maintenance_margin: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., market_version: _Optional[int] = ..., alert: _Optional[_Union[ControlAlert, str]] = ..., group_id: _Optional[str] = ..., limit_name: _Optional[str] = ..., limit_value: _Optional[float] = ..., used: _Optional[float] = ..., warning_fraction: _Optional[float] = ...) -> None: ...
