"""The baseline: a no-op server implementing the same ``riskgate.v1.RiskGate`` service.

Every RPC answers at once with a constant message (order ids echoed, fixed numbers) and does
no risk work, so driving it with the same generator and the same messages as riskgate
measures the transport ceiling: gRPC, protobuf and the Python server stack on this machine.
It runs the same server stack as riskgate (``grpc.server`` with a thread pool of the same
size, the same message-size options, the health service), so the ratio riskgate ÷
baseline isolates what riskgate's own work costs.

    python -m loadtest.baseline --listen 127.0.0.1:PORT [--workers N]
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from riskgate.config import Settings
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc

# the same unary thread-pool size and GIL switch interval as a riskgate server on its defaults
DEFAULT_WORKERS: int = Settings.__dataclass_fields__["grpc_workers"].default
SWITCH_INTERVAL_S: float = Settings.__dataclass_fields__["gil_switch_interval_us"].default / 1e6

__all__ = ["BaselineServicer", "build_server", "constant_decision", "main"]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVICE_NAME = "riskgate.v1.RiskGate"

# fixed numbers of every answer (shaped like a typical accepted riskgate decision)
_SCENARIO = pb.Scenario(
    index=7, price_move_fraction=-0.16, vol_move="up", pool_currency="USD", loss=12_345.0
)


def constant_decision(order: pb.Order) -> pb.Decision:
    """An accepted decision for ``order``: its ids echoed, every number fixed."""
    return pb.Decision(
        account_id=order.account_id,
        client_order_id=order.client_order_id,
        accepted=True,
        reason=pb.REJECT_REASON_UNSPECIFIED,
        initial_margin_before=100_000.0,
        initial_margin_after=100_500.0,
        maintenance_margin_before=80_000.0,
        maintenance_margin_after=80_400.0,
        equity_before=1_000_000.0,
        equity_after=1_000_000.0,
        worst_scenario=_SCENARIO,
        pool_currency="USD",
        risk_reducing=False,
        margin_method=pb.MARGIN_METHOD_PORTFOLIO,
        compute_ns=0,
        market_version=1,
    )


class BaselineServicer(riskgate_pb2_grpc.RiskGateServicer):
    """Constant answers, no state except a market version counter."""

    def __init__(self) -> None:
        self._versions = itertools.count(1)

    def CheckOrder(self, request: pb.CheckOrderRequest, context: Any) -> pb.Decision:
        return constant_decision(request.order)

    def CheckOrders(self, request: pb.CheckOrdersRequest, context: Any) -> pb.CheckOrdersResponse:
        return pb.CheckOrdersResponse(decisions=[constant_decision(o) for o in request.orders])

    def WhatIf(self, request: pb.CheckOrderRequest, context: Any) -> pb.Decision:
        return constant_decision(request.order)

    def MaxQuantity(self, request: pb.MaxQuantityRequest, context: Any) -> pb.MaxQuantityResponse:
        return pb.MaxQuantityResponse(
            account_id=request.account_id,
            symbol=request.symbol,
            max_buy_quantity=10.0,
            max_sell_quantity=10.0,
            buy_limited_by=pb.REJECT_REASON_INSUFFICIENT_MARGIN,
            sell_limited_by=pb.REJECT_REASON_INSUFFICIENT_MARGIN,
            market_version=1,
        )

    def ReportOrderEvent(self, request: pb.OrderEvent, context: Any) -> pb.OrderEventAck:
        return pb.OrderEventAck(
            account_id=request.account_id,
            client_order_id=request.client_order_id,
            order_status=pb.ORDER_STATUS_OPEN,
        )

    def _view(self, account_id: str) -> pb.AccountView:
        return pb.AccountView(
            account_id=account_id,
            trading_state=pb.TRADING_STATE_ACTIVE,
            pool_mode=pb.MARGIN_POOL_MODE_CROSS,
            margin_method=pb.MARGIN_METHOD_PORTFOLIO,
            margin_status=pb.MARGIN_STATUS_OK,
            equity_usd=1_000_000.0,
            initial_margin_usd=100_000.0,
            maintenance_margin_usd=80_000.0,
            market_version=1,
        )

    def UpsertAccount(
        self, request: pb.UpsertAccountRequest, context: Any
    ) -> pb.UpsertAccountResponse:
        return pb.UpsertAccountResponse(created=True, account=self._view(request.account_id))

    def SetPositions(
        self, request: pb.SetPositionsRequest, context: Any
    ) -> pb.SetPositionsResponse:
        return pb.SetPositionsResponse(account=self._view(request.account_id))

    def SetTradingState(
        self, request: pb.SetTradingStateRequest, context: Any
    ) -> pb.SetTradingStateResponse:
        return pb.SetTradingStateResponse(accounts_affected=1)

    def UpdateMarket(
        self, request: pb.UpdateMarketRequest, context: Any
    ) -> pb.UpdateMarketResponse:
        return pb.UpdateMarketResponse(market_version=next(self._versions))

    def GetAccount(self, request: pb.GetAccountRequest, context: Any) -> pb.AccountView:
        return self._view(request.account_id)

    def StreamMarginStatus(
        self, request: pb.StreamMarginStatusRequest, context: Any
    ) -> Iterator[pb.MarginStatusEvent]:
        return iter(())


def build_server(listen: str, workers: int = DEFAULT_WORKERS) -> tuple[grpc.Server, int, Any]:
    """A started-ready (not yet started) server: (server, bound port, health servicer)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="baseline-rpc"),
        options=(
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ),
    )
    riskgate_pb2_grpc.add_RiskGateServicer_to_server(BaselineServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise SystemExit(f"loadtest.baseline: cannot bind {listen}: {exc}") from None
    if not port:
        raise SystemExit(f"loadtest.baseline: cannot bind {listen}")
    return server, port, health_servicer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.baseline",
        description="No-op riskgate.v1.RiskGate server (constant answers, no risk work): "
        "the transport baseline of the load test. Stops on SIGTERM or SIGINT.",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:50052", help="HOST:PORT (default 127.0.0.1:50052)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"server thread pool size (riskgate's default: {DEFAULT_WORKERS})",
    )
    args = parser.parse_args(argv)
    server, port, health_servicer = build_server(args.listen, args.workers)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = args.listen.rpartition(":")[0]
    print(f"loadtest.baseline: serving {SERVICE_NAME} on {host}:{port}", flush=True)
    while not stop.wait(0.2):
        pass
    health_servicer.enter_graceful_shutdown()
    server.stop(2.0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
