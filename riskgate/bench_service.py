"""``riskgate bench-service``: server-side decision latency through the gRPC servicer method.

For accounts of 10, 100 and 500 legs and both models, every order is a real
``CheckOrderRequest`` handed to ``RiskGateServicer.CheckOrder`` in process (conversion, the
whole decision flow, reservation, the reply message): the time of that call is the
server-side compute per decision, without the network. Next to it, in the same run:
the engine's own ``compute_ns`` and the raw margin kernel (one what-if on the same arrays).

``--journal`` puts the engine on a :class:`~riskgate.engine.journal.store.DataStore` in a
temporary directory (``batch``, ``always`` or ``none``: its fsync policy), so each accept is
encoded and written to the journal before the reply, as ``riskgate serve --data-dir`` does.
``--journal compare`` builds two engines in the same run, one in memory and one journaling
with fsync ``batch``, with the same accounts and the same orders, and interleaves rounds
between them (ABBA) so that machine noise hits both; it reports both and the difference,
and times the journal's two parts on the accepts just written: encoding the event, and
appending the record (``os.write`` included). The run uses the server's GIL switch interval
(``gil_switch_interval_us``): with a journal, its fsync thread takes the GIL in turn.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import structlog

from riskgate.bench import BENCH_TIME, add_bench_account, emit
from riskgate.config import load_settings
from riskgate.demo import demo_market, random_portfolio
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.journal import codec
from riskgate.engine.journal.file import FileJournal
from riskgate.engine.journal.store import DataStore
from riskgate.models import load_model
from riskgate.models.risk_table import USD
from riskgate.models.rules import load_rules_params
from riskgate.server.app import tune_gc
from riskgate.server.servicer import RiskGateServicer
from riskgate.v1 import riskgate_pb2 as pb

JOURNAL_MODES = ("off", "batch", "always", "none", "compare")
COMPARE_FSYNC = "batch"


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
        "p99_9_us": float(np.percentile(us, 99.9)),
        "max_us": float(us.max()),
    }


class _Variant:
    """One engine of the run: in memory (``fsync`` None) or journaling into ``data_dir``."""

    def __init__(self, name: str, model_name: str, fsync: str | None, data_dir: str, cfg) -> None:
        self.name = name
        self.fsync = fsync
        self.store = (
            DataStore(os.path.join(data_dir, f"{model_name}-{name}"), fsync=fsync)
            if fsync is not None
            else None
        )
        self.engine = RiskEngine(load_model(model_name), load_rules_params(), cfg, sink=self.store)
        self.servicer: RiskGateServicer | None = None
        # one row's samples (the timed calls, in request order) and accepts
        self.call_ns = self.engine_ns = np.empty(0, dtype=np.int64)
        self.round_p99: list[float] = []
        self.accepted = 0

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _journal_parts(store: DataStore, scratch_dir: str, last: int) -> dict[str, Any]:
    """The journal's work per accept, timed again on the last ``last`` records written:
    encoding the event (``codec.encode_event``) and appending its record to a journal of its
    own (``FileJournal.append``: CRCs, header, lock, ``os.write``), plus the bare ``os.write``
    of the same bytes to a plain file."""
    journal = store.journal
    first = max(journal.first_seq, journal.last_seq - last + 1)
    stamped = [codec.decode_event(p) for _, p in journal.records(first)]
    stamped = [s for s in stamped if type(s.event).__name__ == "OrderAccepted"]
    if not stamped:
        return {}
    clock = time.perf_counter_ns
    enc = np.empty(len(stamped), dtype=np.int64)
    payloads = []
    for k, s in enumerate(stamped):
        t0 = clock()
        p = codec.encode_event(s)
        enc[k] = clock() - t0
        payloads.append(p)
    app = np.empty(len(payloads), dtype=np.int64)
    write = np.empty(len(payloads), dtype=np.int64)
    with FileJournal(os.path.join(scratch_dir, "journal"), fsync="none") as scratch:
        for k, p in enumerate(payloads, 1):
            t0 = clock()
            scratch.append(k, p)
            app[k - 1] = clock() - t0
    fd = os.open(os.path.join(scratch_dir, "raw"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for k, p in enumerate(payloads):
            t0 = clock()
            os.write(fd, p)
            write[k] = clock() - t0
    finally:
        os.close(fd)
    return {
        "events": len(stamped),
        "record_bytes_mean": float(np.mean([len(p) for p in payloads])),
        "encode": _pct(enc),
        "append": _pct(app),
        "os_write": _pct(write),
    }


def _rounds(n: int, rounds: int) -> Iterator[tuple[int, slice]]:
    edges = np.linspace(0, n, rounds + 1).astype(int)
    for r in range(rounds):
        yield r, slice(int(edges[r]), int(edges[r + 1]))


def run(
    leg_counts: list[int],
    orders: int,
    seed: int,
    journal: str = "off",
    rounds: int = 10,
    journal_dir: str | None = None,
    compare_fsync: str = COMPARE_FSYNC,
) -> dict:
    if journal not in JOURNAL_MODES:
        raise ValueError(f"journal: expected one of {', '.join(JOURNAL_MODES)}, got {journal!r}")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    market = demo_market(BENCH_TIME, strikes_per_expiry=31)
    snap = market.snapshot
    settings = load_settings(env={}, demo=False, accept_log_sample_rate=0.0)
    if journal == "compare":
        specs: list[tuple[str, str | None]] = [("off", None), (compare_fsync, compare_fsync)]
    else:
        specs = [(journal, None if journal == "off" else journal)]
    rounds = max(1, rounds) if len(specs) > 1 else 1
    results: dict = {
        "orders": orders,
        "instruments": len(market.instruments),
        "journal": journal,
        "rows": [],
    }
    if len(specs) > 1:
        results["rounds"] = rounds
        results["compare_fsync"] = compare_fsync
    ctx = _Context()
    cfg = EngineConfig(decision_budget_ns=10**9, idempotency_window=orders + 10)
    # the server's GIL switch interval: with a journal, its fsync thread takes the GIL in turn
    results["gil_switch_interval_us"] = settings.gil_switch_interval_us
    with contextlib.ExitStack() as stack:
        stack.callback(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(settings.gil_switch_interval_us / 1e6)
        data_dir = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="riskgate-bench-", dir=journal_dir)
        )
        if any(f for _, f in specs):
            results["journal_dir"] = os.path.dirname(data_dir)
        rng = np.random.default_rng(seed)
        for model_name in ("deribit", "span"):
            variants = [_Variant(n, model_name, f, data_dir, cfg) for n, f in specs]
            for v in variants:
                stack.callback(v.close)
                v.engine.warm_up()
                v.engine.load_snapshot(snap)
                v.servicer = RiskGateServicer(v.engine, settings)
            tune_gc()  # as the server does after warm-up
            for legs in leg_counts:
                acct = f"bench-{model_name}-{legs}"
                portfolio = random_portfolio(market, legs, rng)
                for v in variants:
                    add_bench_account(v.engine, acct, portfolio, 1e12)
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
                timed = requests[warm:]
                for v in variants:
                    for req in requests[:warm]:
                        v.servicer.WhatIf(req, ctx)  # type: ignore[union-attr]
                    v.call_ns = np.empty(len(timed), dtype=np.int64)
                    v.engine_ns = np.empty(len(timed), dtype=np.int64)
                    v.round_p99 = []
                    v.accepted = 0
                clock = time.perf_counter_ns
                for r, part in _rounds(len(timed), rounds):
                    # ABBA: each variant goes first in every other round
                    for v in variants if r % 2 == 0 else variants[::-1]:
                        call = v.servicer.CheckOrder  # type: ignore[union-attr]
                        call_ns, engine_ns = v.call_ns, v.engine_ns
                        accepted = 0
                        for k in range(part.start, part.stop):
                            req = timed[k]
                            t0 = clock()
                            reply = call(req, ctx)
                            call_ns[k] = clock() - t0
                            engine_ns[k] = reply.compute_ns
                            accepted += reply.accepted
                        v.accepted += accepted
                        if part.stop > part.start:
                            v.round_p99.append(float(np.percentile(call_ns[part], 99)) / 1e3)
                for v in variants:
                    # what was timed really decided and reserved: one working order per accept
                    working = len(v.engine.accounts[acct].orders)
                    if working != v.accepted:
                        raise AssertionError(
                            f"{v.name}: {v.accepted} accepted but {working} orders reserved"
                        )
                first = variants[0]
                row = {
                    "model": model_name,
                    "legs": legs,
                    "accepted": first.accepted,
                    "servicer": _pct(first.call_ns),
                    "engine": _pct(first.engine_ns),
                    "kernel": _kernel(first.engine, acct, market, picks),
                }
                if first.store is not None:
                    row["journal_parts"] = _journal_parts(
                        first.store, stack.enter_context(tempfile.TemporaryDirectory(dir=data_dir)),
                        len(timed),
                    )  # fmt: skip
                if len(variants) > 1:
                    on = variants[1]
                    row["journal_on"] = {
                        "fsync": on.fsync,
                        "accepted": on.accepted,
                        "servicer": _pct(on.call_ns),
                        "engine": _pct(on.engine_ns),
                        "servicer_added_us": _added(row["servicer"], _pct(on.call_ns)),
                        "servicer_ratio": _ratio(row["servicer"], _pct(on.call_ns)),
                        "p99_added_median_of_rounds_us": float(
                            np.median(np.subtract(on.round_p99, first.round_p99))
                        ),
                        "journal_parts": _journal_parts(
                            on.store,  # type: ignore[arg-type]
                            stack.enter_context(tempfile.TemporaryDirectory(dir=data_dir)),
                            len(timed),
                        ),
                    }
                results["rows"].append(row)
            for v in variants:
                v.close()
    return results


def _added(off: dict[str, float], on: dict[str, float]) -> dict[str, float]:
    return {k: on[k] - off[k] for k in ("p50_us", "p99_us", "p99_9_us")}


def _ratio(off: dict[str, float], on: dict[str, float]) -> dict[str, float]:
    return {k.replace("_us", ""): on[k] / off[k] for k in ("p50_us", "p99_us", "p99_9_us")}


def _kernel(engine: RiskEngine, acct: str, market, picks: np.ndarray) -> dict[str, float]:
    """The raw kernel: one what-if on the same account arrays, nothing else."""
    pool = engine.accounts[acct].pools[USD]
    state, table = pool.B, pool.table
    kern = table.model.whatif_kernel
    syms = [market.instruments[int(j)].symbol for j in picks[:2000]]
    rows = [table.row[s] for s in syms]
    kernel_ns = np.empty(len(rows), dtype=np.int64)
    spnl, saux = state.pnl.copy(), state.aux.copy()
    out = np.zeros((len(table.coins) + 1, 10))
    args = (table.und_price, table.gparams, table.uparams, spnl, saux, out)
    clock = time.perf_counter_ns
    for k, i in enumerate(rows):
        t0 = clock()
        kern(state.pnl, state.aux, table.risk, table.attr, i, 0.0, 0.1, *args)
        kernel_ns[k] = clock() - t0
    return _pct(kernel_ns)


def render(results: dict) -> str:
    journal = results.get("journal", "off")
    where = {
        "off": "in memory",
        "compare": f"in memory vs journal (fsync {results.get('compare_fsync')}), "
        f"{results.get('rounds')} "
        "interleaved rounds",
    }.get(journal, f"journal fsync {journal}")
    lines = [
        f"riskgate bench-service · CheckOrder through the servicer in process, "
        f"{results['orders']} orders per row ({results['instruments']} listed instruments), "
        f"{where}",
        "",
    ]
    if journal != "compare":
        lines.append(
            f"{'model':<8}{'legs':>5}{'servicer p50':>14}{'p99':>9}{'engine p50':>12}{'p99':>9}"
            f"{'kernel p50':>12}{'p99':>9}{'accepted':>10}"
        )
        for r in results["rows"]:
            s, e, k = r["servicer"], r["engine"], r["kernel"]
            lines.append(
                f"{r['model']:<8}{r['legs']:>5}{s['p50_us']:>11.1f} µs{s['p99_us']:>6.1f} µs"
                f"{e['p50_us']:>9.1f} µs{e['p99_us']:>6.1f} µs{k['p50_us']:>9.2f} µs"
                f"{k['p99_us']:>6.2f} µs{r['accepted']:>10}"
            )
    else:
        lines.append(
            f"{'model':<8}{'legs':>5}  {'servicer off p50 / p99 / p99.9':>31}"
            f"  {'on p50 / p99 / p99.9':>25}  {'added p50 / p99 / p99.9':>24}"
            f"{'p99 added (rounds)':>20}"
        )
        for r in results["rows"]:
            off, j = r["servicer"], r["journal_on"]
            on, add = j["servicer"], j["servicer_added_us"]
            lines.append(
                f"{r['model']:<8}{r['legs']:>5}  "
                f"{off['p50_us']:>10.1f} /{off['p99_us']:>6.1f} /{off['p99_9_us']:>6.1f} µs  "
                f"{on['p50_us']:>7.1f} /{on['p99_us']:>6.1f} /{on['p99_9_us']:>6.1f} µs  "
                f"{add['p50_us']:>+6.1f} /{add['p99_us']:>+6.1f} /{add['p99_9_us']:>+6.1f} µs"
                f"{j['p99_added_median_of_rounds_us']:>+15.1f} µs"
            )
    parts = [
        (r, p) for r in results["rows"] if (p := (r.get("journal_on") or r).get("journal_parts"))
    ]
    if parts:
        lines += [
            "",
            "journal work per accept, timed again on the records written (median / p99):",
            f"{'model':<8}{'legs':>5}{'bytes':>7}{'encode':>18}{'append':>18}"
            f"{'of which os.write':>22}",
        ]
        for r, p in parts:
            e, a, w = p["encode"], p["append"], p["os_write"]
            lines.append(
                f"{r['model']:<8}{r['legs']:>5}{p['record_bytes_mean']:>7.0f}"
                f"{e['p50_us']:>8.2f} /{e['p99_us']:>5.1f} µs{a['p50_us']:>8.2f} /"
                f"{a['p99_us']:>5.1f} µs{w['p50_us']:>12.2f} /{w['p99_us']:>5.1f} µs"
            )
    lines += ["", "target: p99 <= 30 µs of server-side compute per decision at 500 legs"]
    if journal == "compare":
        lines.append(
            f"target: the journal (fsync {results['compare_fsync']}) adds <= 5 µs to the p99 "
            "at 500 legs"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "controls", False):  # the pre-trade controls' cost
        from riskgate import bench_controls

        res = bench_controls.run(args.legs, args.orders, args.seed, getattr(args, "rounds", 10))
        return emit(res, bench_controls.render(res), args.json)
    results = run(
        args.legs,
        args.orders,
        args.seed,
        journal=getattr(args, "journal", "off"),
        rounds=getattr(args, "rounds", 10),
        journal_dir=getattr(args, "journal_dir", None),
        compare_fsync=getattr(args, "compare_fsync", COMPARE_FSYNC),
    )
    return emit(results, render(results), args.json)
