"""Prometheus metrics of a cluster process (scraped with the service's own, at /metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from riskgate.cluster.node import OWNER, STANDBY, STEPPED_DOWN, ClusterNode


class ClusterCollector:
    """Role, journal lag (events handed to JetStream, not yet acknowledged: the async
    mode's exposure), acknowledged sequence, take-overs."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Any]:
        node = self.node
        role = GaugeMetricFamily(
            "riskgate_cluster_role", "1 for the role this process has now", labels=["role"]
        )
        for r in (OWNER, STANDBY, STEPPED_DOWN):
            role.add_metric([r], 1.0 if node.role == r else 0.0)
        yield role
        sink = node.sink
        yield GaugeMetricFamily(
            "riskgate_cluster_journal_lag_events",
            "events written to the shard's stream and not yet acknowledged by JetStream",
            value=float(sink.lag) if sink is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "riskgate_cluster_journal_acked_seq",
            "the last event of the shard JetStream acknowledged (owner) or applied (standby)",
            value=float(sink.acked if sink is not None else node.engine.seq),
        )
        yield CounterMetricFamily(
            "riskgate_cluster_takeovers", "times this process became the shard's owner",
            value=float(node.takeovers),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "riskgate_cluster_last_takeover_seconds",
            "lease taken to serving, the last take-over",
            value=node.last_takeover_s,
        )
