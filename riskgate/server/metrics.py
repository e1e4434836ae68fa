"""Prometheus metrics of the service.

The request path only bumps plain integers under one short lock (no per-sample work of
``prometheus_client``); the numbers become Prometheus metric families when scraped, and
the account and market gauges are read from the engine at that moment.

Exposed (``metrics_address``, e.g. ``127.0.0.1:9464``, path ``/metrics``):
- ``riskgate_decisions_total{rpc, decision, reason}``: CheckOrder / CheckOrders / WhatIf
  decisions by outcome (accept, reject, or replay of an already-decided client order id)
  and reason;
- ``riskgate_decision_compute_seconds{rpc}``: histogram of the server compute per decision
  (the decision's ``compute_ns``);
- ``riskgate_market_updates_total``, ``riskgate_market_update_seconds`` (histogram),
  ``riskgate_market_version``, ``riskgate_market_valuation_timestamp_seconds``,
  ``riskgate_market_age_seconds``;
- ``riskgate_reservations_expired_total``;
- ``riskgate_accounts{margin_status}``, ``riskgate_working_orders``.

Any other path answers 404 (:func:`start_metrics_server`).
"""

from __future__ import annotations

import socket
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from riskgate.engine.types import Decision, MarginStatus, Reason

if TYPE_CHECKING:
    from riskgate.engine.engine import RiskEngine

DECISION_RPCS = ("CheckOrder", "CheckOrders", "WhatIf")
# decision label: a retried client order id gets its original decision replayed
_OUTCOMES = ("accept", "reject", "replay")
_N_REASONS = max(Reason) + 1
# upper bounds (seconds) of the decision-compute buckets: the order path's targets are tens
# of microseconds, its fail-closed budget milliseconds
DECISION_BOUNDS_S = (5e-6, 10e-6, 20e-6, 30e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3)
MARKET_UPDATE_BOUNDS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Histogram:
    """Cumulative-on-export histogram: per-bucket counts and a sum (seconds)."""

    __slots__ = ("bounds_ns", "bounds_s", "counts", "sum_ns")

    def __init__(self, bounds_s: tuple[float, ...]) -> None:
        self.bounds_s = bounds_s
        self.bounds_ns = tuple(round(b * 1e9) for b in bounds_s)
        self.counts = [0] * (len(bounds_s) + 1)  # the last is +Inf
        self.sum_ns = 0

    def observe_ns(self, ns: int) -> None:
        self.counts[bisect_left(self.bounds_ns, ns)] += 1
        self.sum_ns += ns

    def buckets(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip((*self.bounds_s, float("inf")), self.counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out


class ServiceMetrics:
    """What the servicer and the server count; exported by :class:`MetricsCollector`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # per RPC: counts indexed by outcome * len(Reason) + reason (list indexing, not
        # hashing enum keys: this runs on every decision)
        self._counts = {rpc: [0] * (len(_OUTCOMES) * _N_REASONS) for rpc in DECISION_RPCS}
        self._compute = {rpc: _Histogram(DECISION_BOUNDS_S) for rpc in DECISION_RPCS}
        self._market_update = _Histogram(MARKET_UPDATE_BOUNDS_S)
        self._expired = 0

    def decision(self, rpc: str, d: Decision) -> None:
        replay = d.duplicate
        i = (2 if replay else 0 if d.accepted else 1) * _N_REASONS + d.reason
        with self._lock:
            self._counts[rpc][i] += 1
            if not replay:  # a replay carries its original's compute time
                h = self._compute[rpc]
                h.counts[bisect_left(h.bounds_ns, d.compute_ns)] += 1
                h.sum_ns += d.compute_ns

    def market_update(self, compute_ns: int) -> None:
        with self._lock:
            self._market_update.observe_ns(compute_ns)

    def reservations_expired(self, n: int) -> None:
        with self._lock:
            self._expired += n

    def snapshot(self) -> tuple[dict, dict, _Histogram, int]:
        """Copies taken under the lock: (decisions, compute histograms, updates, expired)."""
        with self._lock:
            compute = {}
            for rpc, h in self._compute.items():
                c = _Histogram(h.bounds_s)
                c.counts, c.sum_ns = list(h.counts), h.sum_ns
                compute[rpc] = c
            mu = _Histogram(self._market_update.bounds_s)
            mu.counts, mu.sum_ns = list(self._market_update.counts), self._market_update.sum_ns
            decisions = {}
            for rpc, counts in self._counts.items():
                for i, n in enumerate(counts):
                    if n:
                        outcome, reason = divmod(i, _N_REASONS)
                        decisions[rpc, _OUTCOMES[outcome], Reason(reason)] = n
            return decisions, compute, mu, self._expired


class MetricsCollector(Collector):
    """Turns :class:`ServiceMetrics` and the engine's state into metric families on scrape."""

    def __init__(self, metrics: ServiceMetrics, engine: RiskEngine) -> None:
        self.metrics = metrics
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        decisions, compute, updates, expired = self.metrics.snapshot()
        fam = CounterMetricFamily(
            "riskgate_decisions",
            "Order decisions by RPC, outcome (accept, reject, replay of a retried id) and reason.",
            labels=["rpc", "decision", "reason"],
        )
        for (rpc, outcome, reason), n in sorted(decisions.items()):
            fam.add_metric([rpc, outcome, reason.name], n)
        yield fam
        hist = HistogramMetricFamily(
            "riskgate_decision_compute_seconds",
            "Server compute per decision (the decision's compute_ns; replays not counted).",
            labels=["rpc"],
        )
        for rpc, h in compute.items():
            hist.add_metric([rpc], h.buckets(), h.sum_ns / 1e9)
        yield hist
        yield HistogramMetricFamily(
            "riskgate_market_update_seconds",
            "Duration of market updates: risk-array build and re-margining every account.",
            buckets=updates.buckets(),
            sum_value=updates.sum_ns / 1e9,
        )
        yield CounterMetricFamily(
            "riskgate_market_updates",
            "Market updates applied through UpdateMarket.",
            value=sum(updates.counts),
        )
        yield CounterMetricFamily(
            "riskgate_reservations_expired",
            "Accepted orders whose reservation expired unacknowledged.",
            value=expired,
        )
        market = self.engine.market
        yield GaugeMetricFamily(
            "riskgate_market_version",
            "Version of the market data in use (0: none loaded).",
            value=market.version if market is not None else 0,
        )
        yield GaugeMetricFamily(
            "riskgate_market_valuation_timestamp_seconds",
            "Valuation time of the market data in use (Unix seconds; 0: none loaded).",
            value=market.valuation_time.timestamp() if market is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "riskgate_market_age_seconds",
            "Seconds since the market data in use arrived (orders that raise margin are "
            "rejected past max_market_age_s; 0: none loaded).",
            value=(time.time_ns() - market.received_ns) / 1e9 if market is not None else 0.0,
        )
        by_status = dict.fromkeys(MarginStatus, 0)
        working = 0
        for acc in list(self.engine.accounts.values()):
            by_status[acc.status] += 1
            working += acc.open_orders
        accounts = GaugeMetricFamily(
            "riskgate_accounts", "Accounts by margin status.", labels=["margin_status"]
        )
        for status, n in by_status.items():
            accounts.add_metric([status.name], n)
        yield accounts
        yield GaugeMetricFamily(
            "riskgate_working_orders",
            "Accepted orders still working (reserving margin), all accounts.",
            value=working,
        )


def registry_for(metrics: ServiceMetrics, engine: RiskEngine) -> CollectorRegistry:
    """A registry of its own (not the process-wide default): one per server."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics, engine))
    return registry


METRICS_PATH = "/metrics"
_NOT_FOUND = b"not found: riskgate serves its metrics at /metrics\n"


def metrics_only(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``app`` at ``/metrics``, 404 everywhere else (prometheus_client's own app
    answers every path, which makes a mistyped scrape target look healthy)."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") != METRICS_PATH:
            start_response(
                "404 Not Found",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(_NOT_FOUND))),
                ],
            )
            return [_NOT_FOUND]
        return app(environ, start_response)

    return serve


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def start_metrics_server(
    host: str, port: int, registry: CollectorRegistry
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` at ``http://host:port/metrics`` on a daemon thread. Raises
    ``OSError`` if the address cannot be bound."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    httpd = make_server(
        host, port, metrics_only(make_wsgi_app(registry)), Server, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, name="riskgate-metrics", daemon=True)
    thread.start()
    return httpd, thread
