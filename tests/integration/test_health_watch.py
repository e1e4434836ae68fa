"""The health service: Check, Watch through start-up, shutdown and client cancellations.

Regression: with grpc_health's servicer, a client cancelling its Watch while the server
stopped (the status change is sent to every watcher) could deadlock the server: the send
waited for the polling thread, which waited for the lock the sender held."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from riskgate.server.app import RiskGateServer
from riskgate.server.health import HealthService
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


def test_concurrent_status_changes_keep_the_server_alive_and_watchers_current() -> None:
    # two senders on one call at once kill grpc's polling thread: each watcher must send
    # one message at a time, and the last it sends must be the current status
    svc = HealthService()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(svc, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            svc.set("s", SERVING)
            watches = [
                stub.Watch(health_pb2.HealthCheckRequest(service="s"), timeout=30) for _ in range(5)
            ]
            for w in watches:
                assert next(w).status == SERVING
            start = threading.Barrier(2)

            def flip(a: int, b: int) -> None:
                start.wait()
                for _ in range(200):
                    svc.set("s", a)
                    svc.set("s", b)

            flippers = [
                threading.Thread(target=flip, args=(SERVING, NOT_SERVING), daemon=True),
                threading.Thread(target=flip, args=(NOT_SERVING, SERVING), daemon=True),
            ]
            for t in flippers:
                t.start()
            for t in flippers:
                t.join(T)
                assert not t.is_alive()
            svc.set("s", UNKNOWN)  # a last, distinct status: every watcher ends up on it
            for w in watches:
                seen = None
                while seen != UNKNOWN:
                    seen = next(w).status
                w.cancel()
            assert stub.Check(health_pb2.HealthCheckRequest(service="s"), timeout=T).status
    finally:
        assert server.stop(0).wait(T)
