"""``riskgate bench-service --controls``: what the pre-trade controls cost per decision.

Two engines in the same run, in memory, with the same accounts and the same orders: one
without controls, one with every control configured (velocity windows on orders and
notional, gross and net credit with a warning fraction, a loss limit, class quantity and
price-band limits, the account inside a desk inside a firm, both groups with velocity,
credit and loss limits, and the message throttle). The limits are set far above what the
orders use, so both engines accept the same orders and every check runs to its end.
Rounds interleave the two engines (ABBA) so that machine noise hits both; every order is a
real ``CheckOrderRequest`` through ``RiskGateServicer.CheckOrder`` (LIMIT at the mark, so
the price bands are checked).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time

import numpy as np
import structlog

from riskgate.bench import BENCH_TIME, add_bench_account
from riskgate.bench_service import _Context, _pct, _rounds
from riskgate.config import load_settings
from riskgate.demo import demo_market, random_portfolio
from riskgate.engine.controls.model import ControlLimits
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.types import Limits
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params
from riskgate.server.app import tune_gc
from riskgate.server.servicer import RiskGateServicer
from riskgate.v1 import riskgate_pb2 as pb

BIG = 1e15
EVERY_CONTROL = ControlLimits(
    max_orders=10**9, orders_window_ns=10**9, max_notional_usd=BIG, notional_window_ns=60 * 10**9,
    max_gross_usd=BIG, max_net_usd=BIG, credit_warning_fraction=0.99, max_loss_usd=BIG,
    class_max_quantity={"option": BIG, "future": BIG, "spot": BIG},
    class_price_band={"option": 10.0, "future": 10.0, "spot": 10.0},
)  # fmt: skip
GROUP_CONTROL = ControlLimits(
    max_orders=10**9, max_notional_usd=BIG, max_gross_usd=BIG, max_net_usd=BIG,
    credit_warning_fraction=0.99, max_loss_usd=BIG,
)  # fmt: skip


def run(leg_counts: list[int], orders: int, seed: int, rounds: int = 10) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    market = demo_market(BENCH_TIME, strikes_per_expiry=31)
    settings = load_settings(env={}, demo=False, accept_log_sample_rate=0.0)
    ctx = _Context()
    base = {"decision_budget_ns": 10**9, "idempotency_window": orders + 10}
    configs = {
        "off": EngineConfig(**base),
        "account": EngineConfig(**base, throttle_max_orders=10**9),
        "controls": EngineConfig(**base, throttle_max_orders=10**9),
    }
    results: dict = {"orders": orders, "rounds": rounds, "rows": []}
    rng = np.random.default_rng(seed)
    with contextlib.ExitStack() as stack:
        stack.callback(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(settings.gil_switch_interval_us / 1e6)
        for model_name in ("deribit", "span"):
            engines = {
                name: RiskEngine(load_model(model_name), load_rules_params(), cfg)
                for name, cfg in configs.items()
            }
            servicers = {}
            for name, eng in engines.items():
                eng.warm_up()
                eng.load_snapshot(market.snapshot)
                servicers[name] = RiskGateServicer(eng, settings)
            ctl = engines["controls"]
            ctl.upsert_group("firm", None, GROUP_CONTROL)
            ctl.upsert_group("desk", "firm", GROUP_CONTROL)
            tune_gc()
            for legs in leg_counts:
                acct = f"bench-{model_name}-{legs}"
                portfolio = random_portfolio(market, legs, rng)
                for eng in engines.values():
                    add_bench_account(eng, acct, portfolio, 1e12)
                for name in ("account", "controls"):
                    engines[name].upsert_account(acct, limits=Limits(controls=EVERY_CONTROL))
                ctl.set_account_group(acct, "desk")
                picks = rng.integers(0, len(market.instruments), size=orders)
                quotes = engines["off"].market.quotes
                requests = []
                for k, j in enumerate(picks):
                    sym = market.instruments[int(j)].symbol
                    requests.append(
                        pb.CheckOrderRequest(
                            order=pb.Order(
                                account_id=acct, client_order_id=f"{acct}-{k}", symbol=sym,
                                side=pb.SIDE_BUY if k % 2 else pb.SIDE_SELL,
                                order_type=pb.ORDER_TYPE_LIMIT, quantity=0.1,
                                price=quotes[sym].mark,
                            )
                        )
                    )  # fmt: skip
                warm = min(500, orders // 10)
                timed = requests[warm:]
                call_ns = {n: np.empty(len(timed), dtype=np.int64) for n in engines}
                accepted = dict.fromkeys(engines, 0)
                for srv in servicers.values():
                    for req in requests[:warm]:
                        srv.WhatIf(req, ctx)
                clock = time.perf_counter_ns
                names = list(engines)
                for r, part in _rounds(len(timed), rounds):
                    # each variant in every position over the rounds (ABC, CBA, BCA, ...)
                    order = names[r % 3 :] + names[: r % 3]
                    for name in order if r % 2 == 0 else order[::-1]:
                        call, out = servicers[name].CheckOrder, call_ns[name]
                        n_acc = 0
                        for k in range(part.start, part.stop):
                            t0 = clock()
                            reply = call(timed[k], ctx)
                            out[k] = clock() - t0
                            n_acc += reply.accepted
                        accepted[name] += n_acc
                if len(set(accepted.values())) != 1:
                    raise AssertionError(f"accepts differ: {accepted}")
                off, acc_only, on = (_pct(call_ns[n]) for n in names)
                keys = ("p50_us", "p99_us", "p99_9_us")
                results["rows"].append(
                    {
                        "model": model_name, "legs": legs, "accepted": accepted["off"],
                        "off": off, "account": acc_only, "controls": on,
                        "account_added_us": {k: acc_only[k] - off[k] for k in keys},
                        "added_us": {k: on[k] - off[k] for k in keys},
                    }
                )  # fmt: skip
    return results


def render(results: dict) -> str:
    lines = [
        "riskgate bench-service --controls · CheckOrder through the servicer in process, "
        f"{results['orders']} orders per row, no controls vs every control, "
        f"{results['rounds']} interleaved rounds",
        "",
        "(account: every control of the account and the throttle; + groups: the account also",
        "in a desk inside a firm, both with velocity, credit and loss limits)",
        "",
        f"{'model':<8}{'legs':>5}  {'none p50 / p99':>18}  {'account added p50 / p99':>24}"
        f"  {'+ groups added p50 / p99':>25}{'accepted':>10}",
    ]
    for r in results["rows"]:
        off, a, add = r["off"], r["account_added_us"], r["added_us"]
        lines.append(
            f"{r['model']:<8}{r['legs']:>5}  {off['p50_us']:>8.1f} /{off['p99_us']:>6.1f} µs"
            f"  {a['p50_us']:>+14.2f} /{a['p99_us']:>+6.1f} µs"
            f"  {add['p50_us']:>+15.2f} /{add['p99_us']:>+6.1f} µs{r['accepted']:>10}"
        )
    lines += ["", "target: every control adds <= 2 µs per decision at p50"]
    return "\n".join(lines)
