"""The health service: Check, Watch through start-up, shutdown and client cancellations.

Regression: with grpc_health's servicer, a client cancelling its Watch while the server
stopped (the status change is sent to every watcher) could deadlock the server: the send
waited for the polling thread, which waited for the lock the sender held."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from riskgate.server.app import RiskGateServer
from tests.reference.servers import server_settings, serving

SERVICE = "riskgate.v1.RiskGate"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
T = 10.0


def _settings():
    return server_settings(demo=False, log_level="warning")


def test_check_and_watch() -> None:
    with serving(_settings(), grace_s=0) as srv, grpc.insecure_channel(srv.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", SERVICE):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == SERVING
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=T)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        unknown = health.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=T)
        assert next(unknown).status == UNKNOWN
        unknown.cancel()
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=T)
        assert next(watch).status == SERVING
        # stopping: the watcher hears NOT_SERVING, then its stream ends
        stopper = threading.Thread(target=srv.stop, kwargs={"grace": 1.0})
        stopper.start()
        assert next(watch).status == NOT_SERVING
        rest = [m.status for m in watch]
        assert rest == [], rest
        stopper.join(T)
        assert not stopper.is_alive()


@pytest.mark.parametrize("round_", range(5))
def test_watchers_cancelled_while_the_server_stops_do_not_hang_it(round_: int) -> None:
    srv = RiskGateServer(_settings())
    srv.start()
    ch = grpc.insecure_channel(srv.address)
    health = health_pb2_grpc.HealthStub(ch)
    watches = []
    for _ in range(6):
        w = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=60)
        assert next(w).status == SERVING
        watches.append(w)
    stopper = threading.Thread(target=srv.stop, kwargs={"grace": 1.0}, daemon=True)
    for k, w in enumerate(watches):  # cancellations racing the shutdown's status change
        if k == 3:
            stopper.start()
        w.cancel()
    stopper.join(T)
    assert not stopper.is_alive(), "server stop hung"
    ch.close()
