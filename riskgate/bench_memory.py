"""``python -m riskgate.bench_memory``: resident memory under a long run of unique client
order ids, in process (the order path's per-account memory is bounded by the idempotency
window, the ended-orders window and the id length limits, so RSS must level off).

Each round accepts a batch of orders with fresh ids on a few accounts and cancels them
(what a gateway's flow of short-lived orders does); RSS is sampled after each round.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import time

import structlog

from riskgate.bench import BENCH_TIME
from riskgate.demo import demo_market
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.types import Cancelled, OrderRequest, Side
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params

PERP = "BTC_USDC-PERPETUAL"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run(accounts: int, rounds: int, per_round: int, window: int) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    eng = RiskEngine(
        load_model("deribit"),
        load_rules_params(),
        # a generous budget: this measures memory, and a loaded machine must not reject
        EngineConfig(idempotency_window=window, decision_budget_ns=10**9),
    )
    eng.warm_up()
    eng.load_snapshot(demo_market(BENCH_TIME).snapshot)
    ids = [f"mem-{a}" for a in range(accounts)]
    for a in ids:
        eng.upsert_account(a, collateral={"USD": 1e9})
    samples = []
    n = 0
    t0 = time.perf_counter()
    for r in range(rounds):
        for _ in range(per_round):
            a = ids[n % accounts]
            coid = f"{r}-{n}-{'x' * 24}"  # fresh, realistic-length ids
            d = eng.check_order(OrderRequest(a, coid, PERP, Side.BUY, 0.001, 70_000.0))
            if not d.accepted:
                raise RuntimeError(f"{coid}: {d.reason.name} {d.detail}")
            eng.order_event(a, coid, Cancelled())
            n += 1
        gc.collect()
        samples.append({"orders": n, "rss_mb": round(rss_mb(), 1)})
    kept = sum(len(acc.decisions) + len(acc.orders) for acc in eng.accounts.values())
    return {
        "accounts": accounts, "window": window, "orders": n, "samples": samples,
        "records_kept": kept, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m riskgate.bench_memory", description=__doc__)
    p.add_argument("--accounts", type=int, default=4)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--per-round", type=int, default=50_000)
    p.add_argument("--window", type=int, default=100_000, help="idempotency_window")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args(argv)
    r = run(a.accounts, a.rounds, a.per_round, a.window)
    print(f"{r['orders']:,} unique orders over {r['accounts']} accounts, window {r['window']:,}")
    for s in r["samples"]:
        print(f"  after {s['orders']:>9,} orders: RSS {s['rss_mb']:8.1f} MB")
    print(f"records kept: {r['records_kept']:,} ({r['seconds']} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
