"""The standard ``grpc.health.v1.Health`` service: ``Check`` and a non-blocking ``Watch``.

Why not grpc_health's ``HealthServicer``: it sends watcher responses while holding its
lock. A send on grpc's synchronous server waits for its completion event, which the
server's polling thread delivers — and that thread runs the close callback of a watcher
whose client went away, which needs the same lock. A client cancelling its Watch while the
server changes status (at shutdown, typically) deadlocked the server. Here no lock is held
while sending, and ``close_watches`` ends open watches at shutdown (otherwise each would
hold the drain for the whole grace period).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_Response = health_pb2.HealthCheckResponse
SERVING = _Response.SERVING
NOT_SERVING = _Response.NOT_SERVING
SERVICE_UNKNOWN = _Response.SERVICE_UNKNOWN


class _Watcher:
    """One open Watch: sends each change of status until the stream ends (then ignores
    everything)."""

    __slots__ = ("_ended", "_last", "_lock", "_send")

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        self._ended = False
        self._last: int | None = None  # the status last sent: a repeat is not sent again
        self._lock = threading.Lock()  # guards the fields only, never held while sending

    def send(self, status: int) -> None:
        with self._lock:
            if self._ended or status == self._last:
                return
            self._last = status
        self._send(_Response(status=status))

    def end(self) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self._send(None)  # None ends the stream


class HealthService(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, int] = {"": SERVING}
        self._watchers: dict[str, set[_Watcher]] = {}
        self._shutting_down = False

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        with self._lock:
            status = self._status.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return _Response(status=status)

    def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.ServicerContext,
        send_response_callback: Callable[[Any], None] | None = None,
    ) -> None:
        if send_response_callback is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Watch needs non-blocking streams")
        service = request.service
        watcher = _Watcher(send_response_callback)
        with self._lock:
            status = self._status.get(service, SERVICE_UNKNOWN)
            self._watchers.setdefault(service, set()).add(watcher)
        if not context.add_callback(lambda: self._drop(service, watcher)):
            self._drop(service, watcher)  # the call has already ended
            return
        watcher.send(status)
        # a status set between registering and that send may have gone out first: make
        # sure the last word the watcher got is the current status
        with self._lock:
            current = self._status.get(service, SERVICE_UNKNOWN)
        if current != status:
            watcher.send(current)

    # grpc's synchronous server calls a behaviour with this attribute with a response
    # callback and holds no thread for the stream
    Watch.experimental_non_blocking = True  # type: ignore[attr-defined]

    def _drop(self, service: str, watcher: _Watcher) -> None:
        with self._lock:
            self._watchers.get(service, set()).discard(watcher)
        watcher.end()

    def set(self, service: str, status: int) -> None:
        """Set a service's status (ignored once shutting down) and tell its watchers."""
        with self._lock:
            if self._shutting_down:
                return
            self._status[service] = status
            watchers = list(self._watchers.get(service, ()))
        for w in watchers:
            w.send(status)

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on; watchers are told."""
        with self._lock:
            if self._shutting_down:
                return
            self._shutting_down = True
            for service in self._status:
                self._status[service] = NOT_SERVING
            watchers = [w for ws in self._watchers.values() for w in ws]
        for w in watchers:
            w.send(NOT_SERVING)

    def close_watches(self) -> None:
        """End every open Watch stream (at shutdown, after the NOT_SERVING)."""
        with self._lock:
            watchers = [w for ws in self._watchers.values() for w in ws]
            self._watchers.clear()
        for w in watchers:
            w.end()
