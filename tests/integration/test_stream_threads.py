"""Open streams never starve the order path: margin-status streams and reflection sessions
run on their own thread pool (``stream_workers``), health Watch holds no thread at all, so
with more streams open than ``grpc_workers`` the unary calls are still answered."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from riskgate.server.app import RiskGateServer
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import server_settings, serving

UNARY_WORKERS = 2
STREAMS = 5  # status streams, more than the unary workers
T = 10.0


@pytest.fixture(scope="module")
def server() -> Iterator[RiskGateServer]:
    settings = server_settings(
        demo_accounts=2,
        log_level="warning",
        grpc_workers=UNARY_WORKERS,
        stream_workers=STREAMS + 3,
    )
    with serving(settings) as srv:
        yield srv


def test_open_streams_leave_the_order_path_its_threads(server: RiskGateServer) -> None:
    channel = grpc.insecure_channel(server.address)
    stub = riskgate_pb2_grpc.RiskGateStub(channel)
    account = server.demo_accounts[0]
    calls = []
    done = threading.Event()
    try:
        # margin-status streams: each is open once its first (current) event arrived
        for _ in range(STREAMS):
            call = stub.StreamMarginStatus(
                pb.StreamMarginStatusRequest(account_ids=[account], include_current=True),
                timeout=60,
            )
            first = next(call)
            assert first.account_id == account
            calls.append(call)
        # health watchers and a reflection session on top
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3):
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            calls.append(watch)
        requests: list[reflection_pb2.ServerReflectionRequest] = [
            reflection_pb2.ServerReflectionRequest(list_services="")
        ]

        def request_iter() -> Iterator[reflection_pb2.ServerReflectionRequest]:
            yield from requests
            done.wait(60)  # keep the session open until the test ends

        refl = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            request_iter(), timeout=60
        )
        names = {s.name for s in next(refl).list_services_response.service}
        assert "riskgate.v1.RiskGate" in names
        calls.append(refl)
        # with 5 status streams + 1 reflection session open and 2 unary workers, unary
        # calls are answered (on a shared pool they would wait until the streams end)
        for k in range(20):
            view = stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T)
            assert view.account_id == account
            d = stub.WhatIf(
                pb.CheckOrderRequest(
                    order=pb.Order(
                        account_id=account,
                        client_order_id=f"w{k}",
                        symbol="BTC-PERPETUAL",
                        side=pb.SIDE_BUY,
                        order_type=pb.ORDER_TYPE_MARKET,
                        quantity=0.1,
                    )
                ),
                timeout=T,
            )
            assert d.reason in (pb.REJECT_REASON_UNSPECIFIED, pb.REJECT_REASON_INSUFFICIENT_MARGIN)
    finally:
        done.set()
        for call in calls:
            call.cancel()
        channel.close()
