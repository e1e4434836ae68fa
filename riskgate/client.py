"""Typed Python client for order gateways: a thin wrapper over the generated stub.

```python
from riskgate.client import RiskGateClient

with RiskGateClient("127.0.0.1:50051", timeout_s=0.05) as rg:
    d = rg.check_order("demo-1", "ord-1", "BTC-PERPETUAL", "buy", 0.5, 70_000.0)
    if d.accepted:
        ...  # route the order, then report what the venue did:
        rg.ack("demo-1", "ord-1", venue_order_id="123")
        rg.fill("demo-1", "ord-1", 0.5, 70_000.0, fill_id="t-1")
```

On a cluster (``riskgate serve --nats``), ``ClusterClient(nats_urls)`` takes the same calls
and sends each to the owner of its account's shard (riskgate/cluster/client.py).

With access control on, pass the caller's bearer token: ``RiskGateClient(target,
token=...)`` sends it with every call.

Every method returns the proto message of the RPC (``riskgate.v1``) and raises
``grpc.RpcError`` on a status other than OK (``e.code()``, ``e.details()``). Order-path
calls use the client's ``timeout_s`` as the gRPC deadline; the server answers a decision it
cannot make in time with the reject reason LATENCY_BUDGET_EXCEEDED (fail-closed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc

__all__ = ["DEFAULT_TARGET", "OrderSpec", "RiskGateClient", "make_order"]


def __getattr__(name: str) -> Any:
    # the cluster client (riskgate/cluster/client.py) needs nats-py: imported on first use
    if name == "ClusterClient":
        from riskgate.cluster.client import ClusterClient

        return ClusterClient
    raise AttributeError(name)


DEFAULT_TARGET = "127.0.0.1:50051"
SERVICE_NAME = "riskgate.v1.RiskGate"

SideLike = str | int | enum.IntEnum
OrderTypeLike = str | int | enum.IntEnum
EnumLike = str | int | enum.IntEnum
# An order for check_orders: a proto Order or the keyword arguments of make_order.
OrderSpec = pb.Order | Mapping[str, Any]


def _enum_value(value: EnumLike, proto_enum: Any, prefix: str, field: str) -> int:
    """``"buy"``, ``"BUY"``, ``"SIDE_BUY"``, ``1`` or an IntEnum -> the proto number."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a name or a number, got {value!r}")
    if isinstance(value, int):  # IntEnum included (engine enums share the proto numbers)
        return int(value)
    name = str(value).strip().upper().replace("-", "_")
    if not name.startswith(prefix):
        name = prefix + name
    try:
        return int(proto_enum.Value(name))
    except ValueError:
        names = [
            v.name[len(prefix) :].lower()
            for v in proto_enum.DESCRIPTOR.values
            if not v.name.endswith("UNSPECIFIED")
        ]
        raise ValueError(f"{field}: unknown value {value!r} (expected one of {names})") from None


def make_order(
    account_id: str,
    client_order_id: str,
    symbol: str,
    side: SideLike,
    quantity: float,
    price: float | None = None,
    order_type: OrderTypeLike = "limit",
    reduce_only: bool = False,
    time_in_force: EnumLike = 0,
) -> pb.Order:
    """A proto ``Order``; ``price=None`` leaves the optional field absent."""
    order = pb.Order(
        account_id=account_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=_enum_value(side, pb.Side, "SIDE_", "side"),
        order_type=_enum_value(order_type, pb.OrderType, "ORDER_TYPE_", "order_type"),
        quantity=quantity,
        reduce_only=reduce_only,
        time_in_force=_enum_value(time_in_force, pb.TimeInForce, "TIME_IN_FORCE_", "time_in_force"),
    )
    if price is not None:
        order.price = price
    return order


def _as_order(spec: OrderSpec) -> pb.Order:
    return spec if isinstance(spec, pb.Order) else make_order(**spec)


def _limits(limits: pb.Limits | Mapping[str, Any]) -> pb.Limits:
    return limits if isinstance(limits, pb.Limits) else pb.Limits(**limits)


def _positions(
    positions: Mapping[str, float] | Iterable[Sequence[Any] | pb.Position],
) -> list[pb.Position]:
    if isinstance(positions, Mapping):
        return [pb.Position(symbol=s, quantity=q) for s, q in positions.items()]
    out = []
    for p in positions:
        if isinstance(p, pb.Position):
            out.append(p)
            continue
        msg = pb.Position(symbol=p[0], quantity=p[1])
        if len(p) > 2 and p[2] is not None:
            msg.avg_price = p[2]
        out.append(msg)
    return out


class RiskGateClient:
    """A channel to one riskgate service. Use as a context manager (closes the channel)."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        timeout_s: float | None = 1.0,
        *,
        admin_timeout_s: float | None = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        token: str | None = None,
    ) -> None:
        """``timeout_s``: deadline of order-path calls (CheckOrder, CheckOrders, WhatIf,
        ReportOrderEvent); ``admin_timeout_s``: of every other unary call. None = no
        deadline. ``credentials``: TLS; None = plaintext. ``token``: bearer token sent with
        every call (``authorization`` metadata; the CLI reads ``RISKGATE_TOKEN``)."""
        self.target = target
        # the metadata of every call: the bearer token, if any
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.timeout_s = timeout_s
        self.admin_timeout_s = admin_timeout_s
        self.channel: grpc.Channel = (
            grpc.secure_channel(target, credentials, options=list(options))
            if credentials is not None
            else grpc.insecure_channel(target, options=list(options))
        )
        self.stub = riskgate_pb2_grpc.RiskGateStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    # ---- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RiskGateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block until the channel is connected; ``grpc.FutureTimeoutError`` otherwise."""
        grpc.channel_ready_future(self.channel).result(timeout=timeout_s)

    def health(self, service: str = SERVICE_NAME, timeout_s: float | None = None) -> str:
        """The health status name: ``"SERVING"``, ``"NOT_SERVING"``, ... (``""`` = server)."""
        resp = self._health.Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=timeout_s if timeout_s is not None else self.admin_timeout_s,
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))

    # ---- order path -----------------------------------------------------------------------

    def check_order(
        self,
        account_id: str,
        client_order_id: str,
        symbol: str,
        side: SideLike,
        quantity: float,
        price: float | None = None,
        order_type: OrderTypeLike = "limit",
        reduce_only: bool = False,
        *,
        time_in_force: EnumLike = 0,
        timeout_s: float | None = None,
    ) -> pb.Decision:
        """Decide one order (an accepted order reserves margin until it ends)."""
        order = make_order(
            account_id, client_order_id, symbol, side, quantity, price, order_type,
            reduce_only, time_in_force,
        )  # fmt: skip
        return self.stub.CheckOrder(
            pb.CheckOrderRequest(order=order),
            timeout=self._order_timeout(timeout_s),
            metadata=self.metadata,
        )

    def check_orders(
        self, orders: Iterable[OrderSpec], *, timeout_s: float | None = None
    ) -> list[pb.Decision]:
        """Decide a batch in sequence; one decision per order, in order."""
        req = pb.CheckOrdersRequest(orders=[_as_order(o) for o in orders])
        resp = self.stub.CheckOrders(
            req, timeout=self._order_timeout(timeout_s), metadata=self.metadata
        )
        return list(resp.decisions)

    def whatif(
        self,
        account_id: str,
        symbol: str,
        side: SideLike,
        quantity: float,
        price: float | None = None,
        order_type: OrderTypeLike = "limit",
        reduce_only: bool = False,
        *,
        client_order_id: str = "",
        timeout_s: float | None = None,
        explain: bool = False,
    ) -> pb.Decision:
        """The decision CheckOrder would give now, reserving nothing; ``explain``: with the
        legs' P&L in the worst scenario (``Decision.attribution``) even when accepted."""
        order = make_order(
            account_id, client_order_id, symbol, side, quantity, price, order_type, reduce_only
        )
        return self.stub.WhatIf(
            pb.CheckOrderRequest(order=order, explain=explain),
            timeout=self._order_timeout(timeout_s),
            metadata=self.metadata,
        )

    def max_quantity(
        self, account_id: str, symbol: str, price: float | None = None
    ) -> pb.MaxQuantityResponse:
        """Largest acceptable buy and sell quantity of ``symbol`` now."""
        req = pb.MaxQuantityRequest(account_id=account_id, symbol=symbol)
        if price is not None:
            req.price = price
        return self.stub.MaxQuantity(req, timeout=self.admin_timeout_s, metadata=self.metadata)

    # ---- order lifecycle ------------------------------------------------------------------

    def _event(
        self, account_id: str, client_order_id: str, event_time: datetime | None, **body: Any
    ) -> pb.OrderEventAck:
        ev = pb.OrderEvent(account_id=account_id, client_order_id=client_order_id, **body)
        if event_time is not None:
            ev.event_time.FromDatetime(event_time)
        return self.stub.ReportOrderEvent(
            ev, timeout=self._order_timeout(None), metadata=self.metadata
        )

    def ack(
        self,
        account_id: str,
        client_order_id: str,
        venue_order_id: str = "",
        *,
        event_time: datetime | None = None,
    ) -> pb.OrderEventAck:
        """The venue acknowledged the order (its reservation no longer expires)."""
        return self._event(
            account_id,
            client_order_id,
            event_time,
            acknowledged=pb.VenueAcknowledged(venue_order_id=venue_order_id),
        )

    def venue_reject(
        self,
        account_id: str,
        client_order_id: str,
        reason: str = "",
        *,
        event_time: datetime | None = None,
    ) -> pb.OrderEventAck:
        """The venue rejected the order (its reservation is released)."""
        return self._event(
            account_id,
            client_order_id,
            event_time,
            venue_rejected=pb.VenueRejected(reason=reason),
        )

    def cancel(
        self, account_id: str, client_order_id: str, *, event_time: datetime | None = None
    ) -> pb.OrderEventAck:
        """The order's unfilled rest was cancelled."""
        return self._event(account_id, client_order_id, event_time, cancelled=pb.Cancelled())

    def expire(
        self, account_id: str, client_order_id: str, *, event_time: datetime | None = None
    ) -> pb.OrderEventAck:
        """The order expired at the venue."""
        return self._event(account_id, client_order_id, event_time, expired=pb.Expired())

    def amend(
        self,
        account_id: str,
        client_order_id: str,
        new_quantity: float | None = None,
        new_price: float | None = None,
        *,
        event_time: datetime | None = None,
    ) -> pb.OrderEventAck:
        """The venue amended the order (new total quantity and/or price)."""
        amended = pb.Amended()
        if new_quantity is not None:
            amended.new_quantity = new_quantity
        if new_price is not None:
            amended.new_price = new_price
        return self._event(account_id, client_order_id, event_time, amended=amended)

    def fill(
        self,
        account_id: str,
        client_order_id: str,
        quantity: float,
        price: float,
        fill_id: str = "",
        *,
        event_time: datetime | None = None,
    ) -> pb.OrderEventAck:
        """A (partial) fill; ``fill_id`` makes a retried fill idempotent."""
        return self._event(
            account_id,
            client_order_id,
            event_time,
            filled=pb.Filled(fill_quantity=quantity, fill_price=price, fill_id=fill_id),
        )

    # ---- administration -------------------------------------------------------------------

    def upsert_account(
        self,
        account_id: str,
        collateral: Mapping[str, float] | None = None,
        pool_mode: EnumLike | None = None,
        margin_method: EnumLike | None = None,
        limits: pb.Limits | Mapping[str, Any] | None = None,
    ) -> pb.UpsertAccountResponse:
        """Create or update an account. ``pool_mode``: "cross" | "segregated";
        ``margin_method``: "portfolio" | "rules_based" | "auto"; None = unchanged."""
        req = pb.UpsertAccountRequest(account_id=account_id, collateral=dict(collateral or {}))
        if pool_mode is not None:
            req.pool_mode = _enum_value(
                pool_mode, pb.MarginPoolMode, "MARGIN_POOL_MODE_", "pool_mode"
            )
        if margin_method is not None:
            req.margin_method = _enum_value(
                margin_method, pb.MarginMethod, "MARGIN_METHOD_", "margin_method"
            )
        if limits is not None:
            req.limits.CopyFrom(_limits(limits))
        return self.stub.UpsertAccount(req, timeout=self.admin_timeout_s, metadata=self.metadata)

    def set_positions(
        self,
        account_id: str,
        positions: Mapping[str, float] | Iterable[Sequence[Any] | pb.Position],
    ) -> pb.SetPositionsResponse:
        """Replace every position: ``{symbol: qty}`` or ``[(symbol, qty[, avg_price])]``."""
        req = pb.SetPositionsRequest(account_id=account_id, positions=_positions(positions))
        return self.stub.SetPositions(req, timeout=self.admin_timeout_s, metadata=self.metadata)

    def set_trading_state(
        self,
        state: EnumLike,
        account_id: str = "",
        *,
        all_accounts: bool = False,
        reason: str = "",
    ) -> pb.SetTradingStateResponse:
        """``state``: "active" | "reducing" | "halted"; ``all_accounts=True`` is the kill
        switch."""
        req = pb.SetTradingStateRequest(
            account_id=account_id,
            all_accounts=all_accounts,
            state=_enum_value(state, pb.TradingState, "TRADING_STATE_", "state"),
            reason=reason,
        )
        return self.stub.SetTradingState(req, timeout=self.admin_timeout_s, metadata=self.metadata)

    def update_market(
        self,
        index_usd: Mapping[str, float] | None = None,
        marks_usd: Mapping[str, float] | None = None,
        ivs: Mapping[str, float] | None = None,
        *,
        full_snapshot: bool = False,
        valuation_time: datetime | None = None,
        rate: float | None = None,
        override_guards: bool = False,
    ) -> pb.UpdateMarketResponse:
        """A partial update by default; ``full_snapshot=True`` replaces the whole market
        (``valuation_time`` then required; naive datetimes are taken as UTC).
        ``override_guards``: apply it although the server's market-data guards refuse it
        (audited)."""
        req = pb.UpdateMarketRequest(
            full_snapshot=full_snapshot,
            override_guards=override_guards,
            index_usd=dict(index_usd or {}),
            marks_usd=dict(marks_usd or {}),
            ivs=dict(ivs or {}),
        )
        if valuation_time is not None:
            if valuation_time.tzinfo is None:
                valuation_time = valuation_time.replace(tzinfo=UTC)
            req.valuation_time.FromDatetime(valuation_time)
        if rate is not None:
            req.rate = rate
        return self.stub.UpdateMarket(req, timeout=self.admin_timeout_s, metadata=self.metadata)

    # ---- queries and monitoring -----------------------------------------------------------

    def get_account(self, account_id: str) -> pb.AccountView:
        return self.stub.GetAccount(
            pb.GetAccountRequest(account_id=account_id),
            timeout=self.admin_timeout_s,
            metadata=self.metadata,
        )

    def list_instruments(
        self, underlying: str = "", kind: EnumLike = 0
    ) -> pb.ListInstrumentsResponse:
        """The instruments of the service's market data, optionally of one coin ("BTC") and
        one kind ("call", "put", "future", "perpetual", "spot"; 0 = any)."""
        req = pb.ListInstrumentsRequest(
            underlying=underlying,
            kind=_enum_value(kind, pb.InstrumentKind, "INSTRUMENT_KIND_", "kind"),
        )
        return self.stub.ListInstruments(req, timeout=self.admin_timeout_s, metadata=self.metadata)

    def stream_margin_status(
        self,
        account_ids: Iterable[str] = (),
        include_current: bool = False,
        timeout_s: float | None = None,
    ) -> Iterator[pb.MarginStatusEvent]:
        """Margin status changes (all accounts if ``account_ids`` is empty) until the
        server ends the stream or ``timeout_s`` runs out. The returned object is also a
        ``grpc.Call``: ``.cancel()`` ends it from the client side."""
        req = pb.StreamMarginStatusRequest(
            account_ids=list(account_ids), include_current=include_current
        )
        return self.stub.StreamMarginStatus(req, timeout=timeout_s, metadata=self.metadata)

    # ---- helpers --------------------------------------------------------------------------

    def _order_timeout(self, timeout_s: float | None) -> float | None:
        return self.timeout_s if timeout_s is None else timeout_s
