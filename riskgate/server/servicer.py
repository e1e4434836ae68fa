"""The ``riskgate.v1.RiskGate`` servicer: convert, call the engine, convert back.

Status codes: the engine's :class:`~riskgate.engine.types.EngineError` carries the gRPC
status name and a message naming the field; anything unexpected becomes INTERNAL on admin
and query RPCs, and a fail-closed ``INTERNAL_ERROR`` reject on the order path (logged with
its traceback).

Logging: one ``decision`` event per CheckOrder / CheckOrders decision. Rejects are logged at
info (latency-budget rejects at warning); accepts are sampled, one in
``round(1 / accept_log_sample_rate)`` by a counter. WhatIf decisions are logged at debug.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from riskgate.config import Settings
from riskgate.engine.engine import RiskEngine
from riskgate.engine.types import Decision, EngineError, OrderRequest, Reason, precondition
from riskgate.server import convert, market_guard
from riskgate.server.access import current_principal
from riskgate.server.controls_rpc import ControlsRpc
from riskgate.server.logging import get_logger, log_level
from riskgate.server.metrics import ServiceMetrics
from riskgate.server.validate import clip, clip_message
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc

T = TypeVar("T")

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["RiskGate"].full_name

# A remaining time above this is "no deadline" (grpc reports a far-future deadline then).
_NO_DEADLINE_S = 10.0 * 86_400.0
_STREAM_POLL_S = 0.5
_SIDES = {1: "buy", 2: "sell"}
_LATENCY = Reason.LATENCY_BUDGET_EXCEEDED


def _status_code(name: str) -> grpc.StatusCode:
    try:
        return grpc.StatusCode[name]
    except KeyError:
        return grpc.StatusCode.UNKNOWN


class AcceptSampler:
    """Counter-based sampler: ``rate`` 1 logs every accept, 0 none, 0.01 one in 100."""

    def __init__(self, rate: float) -> None:
        self.period = 0 if rate <= 0.0 else max(1, round(1.0 / rate))
        self._counter = itertools.count()

    def __call__(self) -> bool:
        period = self.period
        if period == 0:
            return False
        return period == 1 or next(self._counter) % period == 0


class RiskGateServicer(ControlsRpc, riskgate_pb2_grpc.RiskGateServicer):
    def __init__(self, engine: RiskEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._clock_ns = engine.clock_ns
        self._sample_accept = AcceptSampler(settings.accept_log_sample_rate)
        self._log_whatifs = log_level(settings.log_level) <= logging.DEBUG
        self._log = get_logger("riskgate.decision")
        self._rpc_log = get_logger("riskgate.rpc")
        self._closing = threading.Event()
        self.metrics = ServiceMetrics()
        self._guards = market_guard.GuardLimits.from_settings(settings)
        # cluster mode: market updates go to every shard through this (riskgate/cluster)
        self.market_source: Callable[[pb.UpdateMarketRequest], Any] | None = None

    def close(self) -> None:
        """End open margin-status streams (their callers see the stream complete)."""
        self._closing.set()

    # ------------------------------------------------------------------ helpers -----------

    def _deadline_ns(self, context: grpc.ServicerContext) -> int | None:
        remaining = context.time_remaining()
        if remaining is None or remaining > _NO_DEADLINE_S:
            return None
        return self._clock_ns() + int(remaining * 1e9)

    def _call(
        self, context: grpc.ServicerContext, rpc: str, fn: Callable[..., T], *args: Any, **kw: Any
    ) -> T:
        """Run an engine call; EngineError -> its status code, anything else -> INTERNAL."""
        try:
            return fn(*args, **kw)
        except EngineError as exc:
            code, message = _status_code(exc.code), clip_message(exc.message)
            self._rpc_log.info("rpc_error", rpc=rpc, code=exc.code, message=message)
        except Exception as exc:
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"
            self._rpc_log.exception("rpc_internal_error", rpc=rpc)
        context.abort(code, message)
        raise AssertionError("unreachable")  # context.abort raises

    def _decide(
        self, order: OrderRequest, deadline_ns: int | None, reserve: bool, explain: bool = False
    ) -> Decision:
        try:
            if explain:  # WhatIf with explain: the attribution too
                return self.engine.whatif(order, deadline_ns, explain=True)
            return self.engine.check_order(order, deadline_ns, reserve=reserve)
        except Exception as exc:  # fail closed: a reject, never an accept or a crash
            self._log.exception(
                "decision_internal_error",
                account=clip(order.account_id),
                client_order_id=clip(order.client_order_id),
                symbol=clip(order.symbol),
            )
            return convert.internal_error_decision(
                order, f"internal error: {type(exc).__name__}; nothing reserved"
            )

    def _log_decision(self, order: OrderRequest, d: Decision, whatif: bool = False) -> None:
        if whatif:
            if not self._log_whatifs:
                return
            method = self._log.debug
        elif d.accepted:
            if not self._sample_accept():
                return
            method = self._log.info
        elif d.reason == _LATENCY:
            method = self._log.warning
        else:
            method = self._log.info
        method(
            "whatif" if whatif else "decision",
            account=clip(order.account_id),
            client_order_id=clip(order.client_order_id),
            symbol=clip(order.symbol),
            side=_SIDES.get(order.side, str(order.side)),
            qty=order.quantity,
            price=order.price,
            decision="accept" if d.accepted else "reject",
            reason=d.reason.name,
            detail=d.detail or None,
            duplicate=d.duplicate,
            im_before=d.initial_margin_before,
            im_after=d.initial_margin_after,
            equity=d.equity_before,
            pool=d.pool_currency,
            compute_us=d.compute_ns / 1000.0,
        )

    # ------------------------------------------------------------------ order path --------

    def CheckOrder(
        self, request: pb.CheckOrderRequest, context: grpc.ServicerContext
    ) -> pb.Decision:
        if not request.HasField("order"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order: missing")
        order = convert.order_from_proto(request.order)
        d = self._decide(order, self._deadline_ns(context), True)
        self.metrics.decision("CheckOrder", d)
        if not d.accepted or self._sample_accept.period:  # most accepts are not logged
            self._log_decision(order, d)
        return convert.decision_to_proto(d)

    def CheckOrders(
        self, request: pb.CheckOrdersRequest, context: grpc.ServicerContext
    ) -> pb.CheckOrdersResponse:
        orders = convert.orders_from_proto(request.orders)
        decisions = self._call(
            context, "CheckOrders", self.engine.check_orders, orders, self._deadline_ns(context)
        )
        record = self.metrics.decision
        for order, d in zip(orders, decisions, strict=True):
            record("CheckOrders", d)
            self._log_decision(order, d)
        resp = pb.CheckOrdersResponse()
        add = resp.decisions.add
        for d in decisions:
            convert.fill_decision(add(), d)
        return resp

    def WhatIf(self, request: pb.CheckOrderRequest, context: grpc.ServicerContext) -> pb.Decision:
        if not request.HasField("order"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order: missing")
        order = convert.order_from_proto(request.order)
        d = self._decide(order, self._deadline_ns(context), False, request.explain)
        self.metrics.decision("WhatIf", d)
        self._log_decision(order, d, whatif=True)
        return convert.decision_to_proto(d)

    def MaxQuantity(
        self, request: pb.MaxQuantityRequest, context: grpc.ServicerContext
    ) -> pb.MaxQuantityResponse:
        price = request.price if request.HasField("price") else None
        result = self._call(
            context,
            "MaxQuantity",
            self.engine.max_quantity,
            request.account_id,
            request.symbol,
            price,
        )
        return convert.max_quantity_to_proto(result)

    # ------------------------------------------------------------------ lifecycle ---------

    def ReportOrderEvent(
        self, request: pb.OrderEvent, context: grpc.ServicerContext
    ) -> pb.OrderEventAck:
        event = self._call(context, "ReportOrderEvent", convert.order_event_from_proto, request)
        ack = self._call(
            context,
            "ReportOrderEvent",
            self.engine.order_event,
            request.account_id,
            request.client_order_id,
            event,
        )
        return convert.event_ack_to_proto(ack)

    # ------------------------------------------------------------------ administration ----

    def UpsertAccount(
        self, request: pb.UpsertAccountRequest, context: grpc.ServicerContext
    ) -> pb.UpsertAccountResponse:
        def run() -> tuple[bool, Any]:
            limits = (
                convert.limits_from_proto(request.limits, self.engine.config.default_limits)
                if request.HasField("limits")
                else None
            )
            return self.engine.upsert_account(
                request.account_id,
                collateral=dict(request.collateral),
                pool_mode=convert.pool_mode_from_proto(request.pool_mode),
                margin_method=convert.margin_method_from_proto(request.margin_method),
                limits=limits,
            )

        created, view = self._call(context, "UpsertAccount", run)
        self._rpc_log.info("account_upserted", account=request.account_id, created=created)
        return pb.UpsertAccountResponse(
            created=created, account=convert.account_view_to_proto(view)
        )

    def SetPositions(
        self, request: pb.SetPositionsRequest, context: grpc.ServicerContext
    ) -> pb.SetPositionsResponse:
        positions = convert.positions_from_proto(request.positions)
        view = self._call(
            context, "SetPositions", self.engine.set_positions, request.account_id, positions
        )
        self._rpc_log.info("positions_set", account=request.account_id, n=len(positions))
        return pb.SetPositionsResponse(account=convert.account_view_to_proto(view))

    def SetTradingState(
        self, request: pb.SetTradingStateRequest, context: grpc.ServicerContext
    ) -> pb.SetTradingStateResponse:
        def run() -> int:
            state = convert.trading_state_from_proto(request.state)
            return self.engine.set_trading_state(
                request.account_id, request.all_accounts, state, request.reason
            )

        n = self._call(context, "SetTradingState", run)
        self._rpc_log.warning(
            "trading_state_set",
            account=request.account_id or None,
            all_accounts=request.all_accounts,
            state=pb.TradingState.Name(request.state),
            reason=request.reason,
            accounts_affected=n,
        )
        return pb.SetTradingStateResponse(accounts_affected=n)

    def UpdateMarket(
        self, request: pb.UpdateMarketRequest, context: grpc.ServicerContext
    ) -> pb.UpdateMarketResponse:
        market = self.engine.market
        problems = market_guard.check_update(
            request, market.snapshot if market else None, self._guards
        )
        if problems:
            refusal = market_guard.refusal(problems, request.override_guards)
            if refusal is not None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, clip_message(refusal))
            principal = current_principal()
            self._rpc_log.warning(
                "market_guards_overridden",
                principal=principal.name if principal else None,
                problems=[clip_message(p.message) for p in problems[:20]],
                n=len(problems),
            )

        def run() -> Any:
            if self.market_source is not None:
                return self.market_source(request)
            return self.engine.update_market(
                full_snapshot=request.full_snapshot,
                valuation_time=convert.valuation_time_from_proto(request),
                index_usd=dict(request.index_usd),
                marks_usd=dict(request.marks_usd),
                ivs=dict(request.ivs),
                rate=request.rate if request.HasField("rate") else None,
            )

        result = self._call(context, "UpdateMarket", run)
        self.metrics.market_update(result.compute_ns)
        self._rpc_log.info(
            "market_updated",
            market_version=result.market_version,
            full_snapshot=request.full_snapshot,
            accounts_remargined=result.accounts_remargined,
            compute_ms=result.compute_ns / 1e6,
        )
        return convert.market_update_to_proto(result)

    # ------------------------------------------------------------------ queries -----------

    def GetAccount(
        self, request: pb.GetAccountRequest, context: grpc.ServicerContext
    ) -> pb.AccountView:
        view = self._call(context, "GetAccount", self.engine.account_view, request.account_id)
        return convert.account_view_to_proto(view)

    def ListInstruments(
        self, request: pb.ListInstrumentsRequest, context: grpc.ServicerContext
    ) -> pb.ListInstrumentsResponse:
        def run() -> pb.ListInstrumentsResponse:
            market = self.engine.market  # immutable; swapped whole by a market update
            if market is None:
                raise precondition("market: no market data loaded yet (UpdateMarket first)")
            return convert.instruments_to_proto(market, request.underlying, request.kind)

        return self._call(context, "ListInstruments", run)

    def StreamMarginStatus(
        self, request: pb.StreamMarginStatusRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.MarginStatusEvent]:
        ids = list(dict.fromkeys(request.account_ids))
        for aid in ids:
            if not aid:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "account_ids: empty account id")
            if aid not in self.engine.accounts:
                context.abort(
                    grpc.StatusCode.NOT_FOUND, f"account_ids: unknown account {clip(aid)!r}"
                )
        wanted = set(ids) if ids else None
        q = self.engine.subscribe()  # before the snapshot, so no change falls in between
        try:
            if request.include_current:
                targets = ids or sorted(self.engine.accounts)
                if targets:
                    current = self._call(
                        context, "StreamMarginStatus", self.engine.current_status_events, targets
                    )
                    for ev in current:
                        yield convert.status_event_to_proto(ev, current=True)
            while context.is_active() and not self._closing.is_set():
                try:
                    ev = q.get(timeout=_STREAM_POLL_S)
                except queue.Empty:
                    continue
                if wanted is None or ev.account_id in wanted:
                    yield convert.status_event_to_proto(ev)
        finally:
            self.engine.unsubscribe(q)
