"""``riskgate bench``: incremental what-if vs full revaluation, and risk-array build time.

For an account of N legs over BTC and ETH (cross pool), both models:
- what-if: ``PoolState.whatif(symbol, qty)`` through the public Python API, one order at a
  time, timed per call (median, p99);
- full revaluation of the same portfolio plus the order (``full_revaluation``), timed the
  same way in the same run;
- the risk-table build for an option chain of ``--chain`` options.
Before timing, a sample of what-ifs is checked against full revaluation (1e-9 relative),
so the two timed paths compute the same number.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from riskgate.demo import demo_market, random_portfolio
from riskgate.domain.instruments import Instrument
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.state import PortfolioState, build_tables
from riskgate.engine.types import MarginMethod, PoolMode
from riskgate.models import load_model
from riskgate.models.risk_table import USD, build_table

if TYPE_CHECKING:
    from riskgate.engine.engine import RiskEngine

BENCH_TIME = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def add_bench_account(
    engine: RiskEngine, account_id: str, portfolio: Mapping[Instrument, float], usd: float
) -> None:
    """A cross-pool, portfolio-margined account holding ``portfolio`` on ``usd`` of cash."""
    engine.upsert_account(
        account_id,
        collateral={"USD": usd},
        pool_mode=PoolMode.CROSS,
        margin_method=MarginMethod.PORTFOLIO,
    )
    engine.set_positions(account_id, [(i.symbol, q, None) for i, q in portfolio.items()])


def emit(results: dict, text: str, json_path: str | None) -> int:
    """Print a benchmark's table; write its results as JSON too when asked."""
    print(text)
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


def _stats_us(samples_ns: np.ndarray) -> dict[str, float]:
    us = samples_ns / 1e3
    return {
        "median_us": float(np.median(us)),
        "p90_us": float(np.percentile(us, 90)),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
        "n": int(us.size),
    }


def _chain_build(model_name: str, n_options: int, repeats: int = 7) -> dict[str, float]:
    # one coin, inverse calls and puts; widen the strike grid until the chain is big enough
    per_expiry = 8
    while True:
        market = demo_market(
            BENCH_TIME, coins=("BTC",), strikes_per_expiry=per_expiry, linear_options=False
        )
        options = [i for i in market.instruments if i.is_option]
        if len(options) >= n_options:
            break
        per_expiry = int(per_expiry * 1.25) + 1
    options = options[:n_options]
    model = load_model(model_name)
    build_table(model, market.snapshot, options[:10], USD)  # compile/warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        build_table(model, market.snapshot, options, USD)
        times.append(time.perf_counter_ns() - t0)
    ms = np.array(times) / 1e6
    return {"options": len(options), "median_ms": float(np.median(ms)), "max_ms": float(ms.max())}


def run(legs: int, orders: int, full_revals: int, chain: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    market = demo_market(BENCH_TIME, strikes_per_expiry=31)
    results: dict = {"legs": legs, "instruments": len(market.instruments), "models": {}}
    for model_name in ("deribit", "span"):
        model = load_model(model_name)
        portfolio = random_portfolio(market, legs, rng)
        collateral = {"USD": 1_000_000.0}
        tables = build_tables(model, market.snapshot, market.instruments, segregated=False)
        state = PortfolioState(tables, segregated=False)
        state.set_collateral("USD", collateral["USD"])
        for inst, q in portfolio.items():
            state.set_position(inst, q)
        pool = state.pools[USD]
        # orders: random instruments of the whole venue, random signed sizes
        order_idx = rng.integers(0, len(market.instruments), size=orders)
        order_qty = np.round(rng.uniform(0.1, 3.0, size=orders), 1) * rng.choice([-1, 1], orders)
        order_syms = [market.instruments[int(k)].symbol for k in order_idx]

        # correctness: sampled what-ifs equal full revaluation of portfolio + order
        for k in range(5):
            inst = market.instruments[int(order_idx[k])]
            im_inc, _ = pool.whatif(inst.symbol, state.units(inst, float(order_qty[k])))
            after = dict(portfolio)
            after[inst] = after.get(inst, 0.0) + float(order_qty[k])
            ref = full_revaluation(model, market.snapshot, after, collateral, False)[USD]
            if not np.isclose(im_inc, ref.initial_margin, rtol=1e-9, atol=1e-6):
                raise AssertionError(f"what-if {im_inc} != full revaluation {ref.initial_margin}")

        for k in range(min(1000, orders)):  # warm caches and the dispatcher
            pool.whatif(order_syms[k], float(order_qty[k]))
        whatif_ns = np.empty(orders, dtype=np.int64)
        clock = time.perf_counter_ns
        for k in range(orders):
            sym, q = order_syms[k], float(order_qty[k])
            t0 = clock()
            pool.whatif(sym, q)
            whatif_ns[k] = clock() - t0

        full_ns = np.empty(full_revals, dtype=np.int64)
        for k in range(full_revals):
            inst = market.instruments[int(order_idx[k])]
            after = dict(portfolio)
            after[inst] = after.get(inst, 0.0) + float(order_qty[k])
            t0 = clock()
            full_revaluation(model, market.snapshot, after, collateral, False)
            full_ns[k] = clock() - t0

        w, f = _stats_us(whatif_ns), _stats_us(full_ns)
        results["models"][model_name] = {
            "cells": model.n_cells,
            "whatif": w,
            "full_revaluation": f,
            "speedup_median": f["median_us"] / w["median_us"],
            "speedup_p99": f["p99_us"] / w["p99_us"],
            "chain_build": _chain_build(model_name, chain),
        }
    return results


def render(results: dict) -> str:
    lines = [
        f"riskgate bench · {results['legs']}-leg account over BTC and ETH "
        f"({results['instruments']} listed instruments), cross USD pool",
        "",
        f"{'model':<8}{'cells':>6}{'what-if p50':>13}{'p99':>10}{'full reval p50':>16}"
        f"{'p99':>11}{'speed-up p50':>14}{'p99':>8}{'chain build':>22}",
    ]
    for name, m in results["models"].items():
        w, f, c = m["whatif"], m["full_revaluation"], m["chain_build"]
        lines.append(
            f"{name:<8}{m['cells']:>6}{w['median_us']:>10.2f} µs{w['p99_us']:>7.2f} µs"
            f"{f['median_us']:>13.0f} µs{f['p99_us']:>8.0f} µs{m['speedup_median']:>13.0f}x"
            f"{m['speedup_p99']:>7.0f}x"
            f"{c['median_ms']:>10.1f} ms ({c['options']} options)"
        )
    lines.append("")
    lines.append("targets: what-if p99 <= 20 µs, >= 100x faster than full revaluation")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    results = run(args.legs, args.orders, args.full_revals, args.chain, args.seed)
    return emit(results, render(results), args.json)
