"""What a margin reject's attribution costs: per model and account size, the what-if an
order already pays next to the attribution a margin reject (or WhatIf with explain) adds.

    .venv/bin/python scripts/bench_attribution.py [--runs 5] [--calls 200] [--stress FILE]

Median and p99 over runs (each the mean of --calls calls), in µs; in process, cross pool,
random legs of the demo market (as ``riskgate bench``). With ``--stress`` the model has the
file's scenarios as extra cells (what they add to the what-if)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from riskgate.bench import BENCH_TIME
from riskgate.demo import demo_market, random_portfolio
from riskgate.engine.attribution import explain_side
from riskgate.engine.state import PortfolioState, build_tables
from riskgate.models import load_model
from riskgate.models.risk_table import USD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--stress", metavar="FILE", help="stress scenarios appended to each model")
    args = ap.parse_args()
    market = demo_market(BENCH_TIME, strikes_per_expiry=31)
    rng = np.random.default_rng(3)
    print("| model | cells | legs | what-if µs (median / p99) | attribution µs (median / p99) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("deribit", "span", "tims"):
        model = load_model(name, stress_path=args.stress)
        tables = build_tables(model, market.snapshot, market.instruments, False)
        for legs in (10, 100, 500):
            state = PortfolioState(tables, segregated=False)
            state.set_collateral("USD", 1e6)
            for inst, q in random_portfolio(market, legs, rng).items():
                state.set_position(inst, q)
            pool = state.pools[USD]
            symbol = next(iter(pool.qty))
            out = pool.whatif_out(symbol, 1.0)
            explain_side(pool, out, symbol, 1.0)  # warm
            whatif, attribution = [], []
            for _ in range(args.runs):
                t = time.perf_counter_ns()
                for _ in range(args.calls):
                    out = pool.whatif_out(symbol, 1.0)
                whatif.append((time.perf_counter_ns() - t) / args.calls / 1e3)
                t = time.perf_counter_ns()
                for _ in range(args.calls):
                    explain_side(pool, out, symbol, 1.0)
                attribution.append((time.perf_counter_ns() - t) / args.calls / 1e3)
            w, a = np.array(whatif), np.array(attribution)
            print(
                f"| {name} | {model.n_cells} | {legs} | {np.median(w):.1f} / {np.percentile(w, 99):.1f} | "
                f"{np.median(a):.1f} / {np.percentile(a, 99):.1f} |"
            )


if __name__ == "__main__":
    main()
