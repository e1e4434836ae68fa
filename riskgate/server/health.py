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


_NOTHING = object()  # no status waiting


class _Watcher:
    """One open Watch. grpc's synchronous server cannot take two sends on one call at once
    (the second completion kills its polling thread), so a watcher sends one message at a
    time: ``offer`` records the latest status to send (under the service's lock, so offers
    follow the order of status changes), ``drain`` sends with no lock held; a drain that
    finds another thread sending leaves the rest to that thread. A waiting status goes out
    before a waiting end of stream; repeats of the last status sent are skipped; after the
    end nothing is sent."""

    __slots__ = ("_busy", "_end_wanted", "_ended", "_last", "_lock", "_pending", "_send")

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        self._lock = threading.Lock()  # guards the fields, never held while sending
        self._pending: object = _NOTHING
        self._end_wanted = False
        self._last: object = None
        self._busy = False
        self._ended = False

    def offer(self, status: int) -> None:
        with self._lock:
            if not self._ended and not self._end_wanted:
                self._pending = status

    def offer_end(self) -> None:
        with self._lock:
            self._end_wanted = True

    def closed(self) -> None:
        """The call is over (the client went away): nothing more to send."""
        with self._lock:
            self._ended = True
            self._pending = _NOTHING

    def drain(self) -> None:
        with self._lock:
            if self._busy:
                return  # the sending thread sends what is waiting
            self._busy = True
        while True:
            with self._lock:
                message: Any
                if self._ended:
                    self._busy = False
                    return
                if self._pending is not _NOTHING:
                    status, self._pending = self._pending, _NOTHING
                    if status == self._last:
                        continue
                    self._last = status
                    message = _Response(status=status)
                elif self._end_wanted:
                    self._ended = True
                    message = None  # None ends the stream
                else:
                    self._busy = False
                    return
            self._send(message)


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
            self._watchers.setdefault(service, set()).add(watcher)
            watcher.offer(self._status.get(service, SERVICE_UNKNOWN))
        if not context.add_callback(lambda: self._drop(service, watcher)):
            self._drop(service, watcher)  # the call has already ended
            return
        watcher.drain()

    # grpc's synchronous server calls a behaviour with this attribute with a response
    # callback and holds no thread for the stream
    Watch.experimental_non_blocking = True  # type: ignore[attr-defined]

    def _drop(self, service: str, watcher: _Watcher) -> None:
        with self._lock:
            watchers = self._watchers.get(service)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[service]
        watcher.closed()

    def set(self, service: str, status: int) -> None:
        """Set a service's status (ignored once shutting down) and tell its watchers."""
        with self._lock:
            if self._shutting_down:
                return
            self._status[service] = status
            watchers = list(self._watchers.get(service, ()))
            for w in watchers:
                w.offer(status)
        for w in watchers:
            w.drain()

    def enter_graceful_shutdown(self) -> None:
        """Every known service NOT_SERVING from now on; their watchers are told."""
        with self._lock:
            if self._shutting_down:
                return
            self._shutting_down = True
            watchers = []
            for service in self._status:
                self._status[service] = NOT_SERVING
                for w in self._watchers.get(service, ()):
                    w.offer(NOT_SERVING)
                    watchers.append(w)
        for w in watchers:
            w.drain()

    def close_watches(self) -> None:
        """End every open Watch stream (at shutdown, after the NOT_SERVING)."""
        with self._lock:
            watchers = [w for ws in self._watchers.values() for w in ws]
            self._watchers.clear()
            for w in watchers:
                w.offer_end()
        for w in watchers:
            w.drain()
