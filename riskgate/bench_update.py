"""``riskgate bench-update``: how long a market update takes over many accounts, in process.

An engine holds ``--accounts`` accounts of ``--legs`` random legs (cross pool, portfolio
margin) on the embedded demo market; each update moves both indexes, the perpetual and
future marks with them and the option vols (a partial ``update_market``, as a feed sends
it). Reported per update: the whole call (new risk tables, then every account re-margined
under its own lock), next to the market-state build alone on the same snapshot, so the
per-account part is the difference. No order flow runs alongside: the load test
(``python -m loadtest --market-updates-per-s``) measures the effect on orders.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import structlog

from riskgate.bench import BENCH_TIME, add_bench_account, emit
from riskgate.demo import demo_market, random_portfolio
from riskgate.domain.instruments import Kind
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.market import build_market_state
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params


def run(
    model_name: str, accounts: int, legs: int, updates: int, seed: int, stress: str | None = None
) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    rng = np.random.default_rng(seed)
    market = demo_market(BENCH_TIME, strikes_per_expiry=21)
    snap = market.snapshot
    model = load_model(model_name, stress_path=stress)
    engine = RiskEngine(model, load_rules_params(), EngineConfig())
    engine.warm_up()
    engine.load_snapshot(snap)
    t0 = time.perf_counter()
    for a in range(accounts):
        add_bench_account(engine, f"bench-{a}", random_portfolio(market, legs, rng), 1e9)
    setup_s = time.perf_counter() - t0
    marked = [i.symbol for i in market.instruments if i.kind in (Kind.FUTURE, Kind.PERPETUAL)]
    options = [i.symbol for i in market.instruments if i.is_option]
    total_ms, build_ms, cpu_ms, build_cpu_ms = [], [], [], []
    for k in range(updates + 1):  # the first one warms the update path up
        move = float(np.exp(rng.normal(0.0, 5e-4)))
        current = engine.market.snapshot
        index = {c: v * move for c, v in current.index_usd.items()}
        marks = {s: current.marks_usd[s] * move for s in marked if s in current.marks_usd}
        vol = float(np.exp(rng.normal(0.0, 0.01)))
        ivs = {s: current.ivs[s] * vol for s in options}
        t, c = time.perf_counter_ns(), time.thread_time_ns()
        result = engine.update_market(
            full_snapshot=False, valuation_time=None, index_usd=index, marks_usd=marks, ivs=ivs
        )
        elapsed, cpu = time.perf_counter_ns() - t, time.thread_time_ns() - c
        if result.accounts_remargined != accounts:
            raise AssertionError(f"{result.accounts_remargined} of {accounts} re-margined")
        m = engine.market
        t, c = time.perf_counter_ns(), time.thread_time_ns()
        build_market_state(m.version + 1, m.snapshot, engine.model, engine.rules_params)
        build, build_cpu = time.perf_counter_ns() - t, time.thread_time_ns() - c
        if k:
            total_ms.append(elapsed / 1e6)
            build_ms.append(build / 1e6)
            cpu_ms.append(cpu / 1e6)
            build_cpu_ms.append(build_cpu / 1e6)
    total, build = np.array(total_ms), np.array(build_ms)
    per_account_us = (np.median(total) - np.median(build)) * 1e3 / accounts
    return {
        "model": model.identity,
        "cells": model.n_cells,
        "accounts": accounts,
        "legs": legs,
        "instruments": len(market.instruments),
        "updates": updates,
        "setup_s": setup_s,
        "update_ms": {
            "median": float(np.median(total)),
            "p99": float(np.percentile(total, 99)),
            "max": float(total.max()),
        },
        "build_ms": {"median": float(np.median(build)), "max": float(build.max())},
        # CPU time of the calling thread (the kernels run on it): what a loaded machine
        # inflates least
        "update_cpu_ms": {
            "median": float(np.median(cpu_ms)),
            "p99": float(np.percentile(cpu_ms, 99)),
        },
        "build_cpu_ms": {"median": float(np.median(build_cpu_ms))},
        "remargin_us_per_account": float(per_account_us),
        "updates_per_s": float(1e3 / np.median(total)),
    }


def render(r: dict) -> str:
    if "sweep" in r:
        return "\n\n".join(render(one) for one in r["sweep"]) + "\n\n" + render_scaling(r)
    u, b = r["update_ms"], r["build_ms"]
    return "\n".join(
        [
            f"riskgate bench-update · {r['accounts']} accounts x {r['legs']} legs, "
            f"{r['instruments']} instruments, model {r['model']} ({r['cells']} cells), "
            f"{r['updates']} updates "
            f"(set-up {r['setup_s']:.1f} s)",
            "",
            f"market update     median {u['median']:8.1f} ms   p99 {u['p99']:8.1f} ms"
            f"   max {u['max']:8.1f} ms"
            f"   ({r['updates_per_s']:.1f} updates/s back to back)",
            f"  of which build  median {b['median']:8.1f} ms   max {b['max']:8.1f} ms"
            "   (risk tables and quotes for the new snapshot)",
            f"  re-margin       {r['remargin_us_per_account']:.1f} µs per account",
            f"CPU time          median {r['update_cpu_ms']['median']:8.1f} ms   p99 "
            f"{r['update_cpu_ms']['p99']:8.1f} ms   (build "
            f"{r['build_cpu_ms']['median']:.1f} ms): this thread's, kernels included",
            "",
            "target: <= 20 ms per update at 10,000 accounts x 10 legs (10 updates/s with room)",
        ]
    )


def render_scaling(r: dict) -> str:
    """One line per account count: how the update time grows with the book."""
    lines = ["accounts    update median ms   p99 ms   re-margin µs/account   CPU median ms"]
    for one in r["sweep"]:
        u = one["update_ms"]
        lines.append(
            f"{one['accounts']:>8}    {u['median']:15.1f}   {u['p99']:6.1f}   "
            f"{one['remargin_us_per_account']:20.2f}   {one['update_cpu_ms']['median']:13.1f}"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    counts = args.accounts if isinstance(args.accounts, list) else [args.accounts]
    sweep = [run(args.model, n, args.legs, args.updates, args.seed, args.stress) for n in counts]
    results = sweep[0] if len(sweep) == 1 else {"sweep": sweep}
    return emit(results, render(results), args.json)
