"""Latency of the replicated journal on loopback: starts a throwaway 3-node nats-server
cluster (per ``sync_interval`` setting), then measures

- ``ack``: one event at a time, ``write`` + ``wait_durable`` in sync mode (the publish ack
  round trip an order reply waits for), p50/p99/max;
- ``pipelined``: events/s when a burst of events is written, then waited for once;
- ``write``: the caller's cost of handing one event to the sink (no waiting);
- ``decision``: ``check_order`` end to end on an engine journaling to the stream (sync).

Run from the repository root: ``python scripts/bench_cluster.py [--events N]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskgate.cluster.local import NatsCluster
from riskgate.engine.events import Audited, Stamped
from riskgate.engine.journal.nats_journal import JetStreamJournal
from riskgate.engine.types import OrderRequest, Side
from tests.reference.engine_market import make_engine

_shards = itertools.count(1)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def fmt(name: str, ns: list[float]) -> str:
    return (
        f"  {name:<9} n={len(ns):<6} p50={pct(ns, 50) / 1e6:.3f} ms  "
        f"p99={pct(ns, 99) / 1e6:.3f} ms  max={max(ns) / 1e6:.3f} ms  "
        f"mean={statistics.fmean(ns) / 1e6:.3f} ms"
    )


def event(seq: int) -> Stamped:
    return Stamped(seq, time.time_ns(), Audited("gw", "CheckOrder", ("ACC1",), "OK", "x" * 64))


def bench_sink(urls: list[str], n: int) -> list[str]:
    out = []
    sink = JetStreamJournal(urls, next(_shards), mode="sync")
    try:
        seq = sink.start_seq
        for _ in range(50):  # warm up the connection and the stream leader
            seq += 1
            sink.write([event(seq)])
            sink.wait_durable(seq)
        acks, writes = [], []
        for _ in range(n):
            seq += 1
            ev = [event(seq)]
            t0 = time.perf_counter_ns()
            sink.write(ev)
            t1 = time.perf_counter_ns()
            sink.wait_durable(seq)
            t2 = time.perf_counter_ns()
            writes.append((t1 - t0) / 1.0)
            acks.append((t2 - t0) / 1.0)
        out.append(fmt("ack", acks))
        out.append(fmt("write", writes))
        out.append(f"  counters {sink.counters}")
        burst = [event(s) for s in range(seq + 1, seq + 1 + 10 * n)]
        t0 = time.perf_counter()
        for i in range(0, len(burst), 10):
            sink.write(burst[i : i + 10])
        sink.wait_durable(burst[-1].seq)
        dt = time.perf_counter() - t0
        out.append(
            f"  pipelined {len(burst)} events in {dt:.2f} s: {len(burst) / dt:,.0f} events/s"
        )
        out.append(f"  counters {sink.counters}")
    finally:
        sink.close()
    return out


def bench_decisions(urls: list[str], n: int) -> list[str]:
    sink = JetStreamJournal(urls, next(_shards), mode="sync")
    try:
        eng = make_engine(sink=sink)
        eng.upsert_account("A", collateral={"USD": 10_000_000.0})
        mark = eng.market.quotes["BTC-PERPETUAL"].mark
        lat = []
        for i in range(n):
            side = Side.BUY if i % 2 else Side.SELL
            t0 = time.perf_counter_ns()
            eng.check_order(OrderRequest("A", f"o{i}", "BTC-PERPETUAL", side, 0.1, mark))
            lat.append((time.perf_counter_ns() - t0) / 1.0)
        return [fmt("decision", lat[50:])]
    finally:
        sink.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--sync-interval", action="append", default=None)
    args = ap.parse_args()
    for sync in args.sync_interval or ["default", "always"]:
        with tempfile.TemporaryDirectory() as d:
            cluster = NatsCluster(d, sync_interval=None if sync == "default" else sync)
            with cluster:
                load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                print(f"R3 file stream, 3 nodes on 127.0.0.1, sync_interval={sync}, load {load}")
                for line in bench_sink(cluster.urls, args.events):
                    print(line)
                for line in bench_decisions(cluster.urls, min(args.events, 1000)):
                    print(line)


if __name__ == "__main__":
    main()
