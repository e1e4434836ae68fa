"""``riskgate bench-service``: server-side decision latency through the gRPC servicer method.

For accounts of 10, 100 and 500 legs and both models, every order is a real
``CheckOrderRequest`` handed to ``RiskGateServicer.CheckOrder`` in process (conversion, the
whole decision flow, reservation, the reply message): the time of that call is the
server-side compute per decision, without the network. Next to it, in the same run:
the engine's own ``compute_ns`` and the raw margin kernel (one what-if on the same arrays).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import structlog

from riskgate.bench import BENCH_TIME, add_bench_account, emit
from riskgate.config import load_settings
from riskgate.demo import demo_market, random_portfolio
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.models import load_model
from riskgate.models.risk_table import USD
from riskgate.models.rules import load_rules_params
from riskgate.server.app import tune_gc
from riskgate.server.servicer import RiskGateServicer
from riskgate.v1 import riskgate_pb2 as pb


class _Context:
    """The two things the servicer asks of a grpc.ServicerContext on the order path."""

    def time_remaining(self) -> None:
        return None

    def abort(self, code, message):  # pragma: no cover - the benchmark sends valid requests
        raise RuntimeError(f"{code}: {message}")


def _pct(ns: np.ndarray) -> dict[str, float]:
    us = ns / 1e3
    return {
        "p50_us": float(np.percentile(us, 50)),
        "p90_us": float(np.percentile(us, 90)),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
    }


def run(leg_counts: list[int], orders: int, seed: int) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    market = demo_market(BENCH_TIME, strikes_per_expiry=31)
    snap = market.snapshot
    rng = np.random.default_rng(seed)
    settings = load_settings(env={}, demo=False, accept_log_sample_rate=0.0)
    results: dict = {"orders": orders, "instruments": len(market.instruments), "rows": []}
    ctx = _Context()
    for model_name in ("deribit", "span"):
        engine = RiskEngine(
            load_model(model_name),
            load_rules_params(),
            EngineConfig(decision_budget_ns=10**9, idempotency_window=orders + 10),
        )
        engine.warm_up()
        engine.load_snapshot(snap)
        servicer = RiskGateServicer(engine, settings)
        tune_gc()  # as the server does after warm-up
        for legs in leg_counts:
            acct = f"bench-{model_name}-{legs}"
            add_bench_account(engine, acct, random_portfolio(market, legs, rng), 1e12)
            picks = rng.integers(0, len(market.instruments), size=orders)
            requests = [
                pb.CheckOrderRequest(
                    order=pb.Order(
                        account_id=acct,
                        client_order_id=f"{acct}-{k}",
                        symbol=market.instruments[int(j)].symbol,
                        side=pb.SIDE_BUY if k % 2 else pb.SIDE_SELL,
                        order_type=pb.ORDER_TYPE_MARKET,
                        quantity=0.1,
                    )
                )
                for k, j in enumerate(picks)
            ]
            warm = min(500, orders // 10)
            for req in requests[:warm]:
                servicer.WhatIf(req, ctx)
            call_ns = np.empty(orders - warm, dtype=np.int64)
            engine_ns = np.empty(orders - warm, dtype=np.int64)
            accepted = 0
            clock = time.perf_counter_ns
            for k, req in enumerate(requests[warm:]):
                t0 = clock()
                reply = servicer.CheckOrder(req, ctx)
                call_ns[k] = clock() - t0
                engine_ns[k] = reply.compute_ns
                accepted += reply.accepted
            # what was timed really decided and reserved: one working order per accept
            working = len(engine.accounts[acct].orders)
            if working != accepted:
                raise AssertionError(f"{accepted} accepted but {working} orders reserved")
            # raw kernel: one what-if on the same account arrays, nothing else
            pool = engine.accounts[acct].pools[USD]
            state, table = pool.B, pool.table
            kern = table.model.whatif_kernel
            syms = [market.instruments[int(j)].symbol for j in picks[:2000]]
            rows = [table.row[s] for s in syms]
            kernel_ns = np.empty(len(rows), dtype=np.int64)
            spnl, saux = state.pnl.copy(), state.aux.copy()
            out = np.zeros((len(table.coins) + 1, 10))
            args = (table.und_price, table.gparams, table.uparams, spnl, saux, out)
            for k, i in enumerate(rows):
                t0 = clock()
                kern(state.pnl, state.aux, table.risk, table.attr, i, 0.0, 0.1, *args)
                kernel_ns[k] = clock() - t0
            results["rows"].append(
                {
                    "model": model_name,
                    "legs": legs,
                    "accepted": accepted,
                    "servicer": _pct(call_ns),
                    "engine": _pct(engine_ns),
                    "kernel": _pct(kernel_ns),
                }
            )
    return results


def render(results: dict) -> str:
    lines = [
        f"riskgate bench-service · CheckOrder through the servicer in process, "
        f"{results['orders']} orders per row ({results['instruments']} listed instruments)",
        "",
        f"{'model':<8}{'legs':>5}{'servicer p50':>14}{'p99':>9}{'engine p50':>12}{'p99':>9}"
        f"{'kernel p50':>12}{'p99':>9}{'accepted':>10}",
    ]
    for r in results["rows"]:
        s, e, k = r["servicer"], r["engine"], r["kernel"]
        lines.append(
            f"{r['model']:<8}{r['legs']:>5}{s['p50_us']:>11.1f} µs{s['p99_us']:>6.1f} µs"
            f"{e['p50_us']:>9.1f} µs{e['p99_us']:>6.1f} µs{k['p50_us']:>9.2f} µs"
            f"{k['p99_us']:>6.2f} µs{r['accepted']:>10}"
        )
    lines += ["", "target: p99 <= 30 µs of server-side compute per decision at 500 legs"]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    results = run(args.legs, args.orders, args.seed)
    return emit(results, render(results), args.json)
