"""One measurement phase: P client processes against one target, a market-update side
task, a progress bar, and the merged result."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing as mp
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
from tqdm import tqdm

from loadtest import report
from loadtest.driver import DriverConfig, worker_main
from loadtest.workload import MarketUpdater
from riskgate.domain.market import MarketSnapshot
from riskgate.v1 import riskgate_pb2_grpc

__all__ = ["HarnessError", "run_phase", "split_config"]

START_DELAY_NS = 300_000_000  # common start this long after every process is ready
READY_TIMEOUT_S = 120.0


class HarnessError(RuntimeError):
    """The harness itself failed (a client process crashed, never got ready, ...)."""


def split_config(base: DriverConfig, processes: int) -> list[DriverConfig]:
    """Per-process configs: rate / P each (constant arrivals interleaved by a phase offset
    so the merged stream is evenly spaced), concurrency split as evenly as possible."""
    out = []
    for k in range(processes):
        conc = base.concurrency // processes + (1 if k < base.concurrency % processes else 0)
        out.append(
            dataclasses.replace(
                base,
                rate=base.rate / processes,
                phase_s=(k / base.rate) if base.rate > 0 else 0.0,
                concurrency=max(1, conc),
                stream=k,
            )
        )
    return out


class _MarketUpdates(threading.Thread):
    """Partial UpdateMarket calls at ``rate`` per second from ``start_ns`` to ``end_ns``,
    one at a time, like a conflating market-data feed: an update slower than the period
    delays the next one (sent as soon as it returns, carrying the latest prices); missed
    slots are skipped, never sent in a burst. The achieved rate is reported."""

    def __init__(
        self, address: str, snapshot: MarketSnapshot, rate: float, seed: int,
        start_ns: int, end_ns: int, deadline_s: float,
    ) -> None:  # fmt: skip
        super().__init__(name="market-updates", daemon=True)
        self.address, self.rate = address, rate
        self.updater = MarketUpdater(snapshot, seed)
        self.start_ns, self.end_ns, self.deadline_s = start_ns, end_ns, deadline_s
        self.latency_ns: list[int] = []
        self.compute_ns: list[int] = []
        self.remargined: list[int] = []
        self.errors: Counter[str] = Counter()
        self.sent = 0

    def run(self) -> None:
        gap = 1e9 / self.rate
        t_next = float(self.start_ns)
        with grpc.insecure_channel(
            self.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
        ) as channel:
            stub = riskgate_pb2_grpc.RiskGateStub(channel)
            while t_next < self.end_ns:
                delay = (t_next - time.monotonic_ns()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                req = self.updater.next_request()
                t0 = time.monotonic_ns()
                self.sent += 1
                try:
                    resp = stub.UpdateMarket(req, timeout=self.deadline_s)
                except grpc.RpcError as exc:
                    self.errors[exc.code().name] += 1
                else:
                    self.latency_ns.append(time.monotonic_ns() - t0)
                    self.compute_ns.append(int(resp.compute_ns))
                    self.remargined.append(int(resp.accounts_remargined))
                t_next += gap
                now = time.monotonic_ns()
                if t_next < now:  # behind: skip the missed slots (conflate)
                    t_next += math.ceil((now - t_next) / gap) * gap - gap

    def stats(self) -> dict[str, Any]:
        def pct_ms(values: list[int]) -> dict[str, float]:
            if not values:
                return {"p50": 0.0, "p99": 0.0, "max": 0.0}
            arr = np.asarray(values, dtype=float) / 1e6
            return {
                "p50": float(np.percentile(arr, 50)),
                "p99": float(np.percentile(arr, 99)),
                "max": float(arr.max()),
            }

        span_s = (self.end_ns - self.start_ns) / 1e9
        return {
            "requested_per_s": self.rate,
            "sent": self.sent,
            "ok": len(self.latency_ns),
            "achieved_per_s": len(self.latency_ns) / span_s if span_s > 0 else 0.0,
            "errors": dict(self.errors),
            "latency_ms": pct_ms(self.latency_ns),
            "compute_ms": pct_ms(self.compute_ns),
            "accounts_remargined_max": max(self.remargined, default=0),
        }


def _drain(results: Any, into: dict[int, dict[str, Any]]) -> None:
    while True:
        try:
            item = results.get_nowait()
        except queue.Empty:
            return
        into[int(item["stream"])] = item


def run_phase(
    label: str,
    base: DriverConfig,
    processes: int,
    *,
    market_snapshot: MarketSnapshot | None = None,
    market_updates_per_s: float = 0.0,
    progress: bool | None = None,
    server_cpu: Callable[[], float | None] | None = None,
    on_window: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one phase against ``base.address`` with ``processes`` client processes and
    return the merged result (see :func:`loadtest.report.merge_phase`).

    ``server_cpu`` (the target's CPU seconds so far, if the harness started it) is sampled
    when the measurement window opens and closes, giving the server's busy cores and CPU
    per call. ``on_window("start" | "end")`` is called at the same moments (profiling)."""
    ctx = mp.get_context("spawn")  # grpc must not be forked after use
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    start_value = ctx.Value("q", 0, lock=False)
    done_counts = ctx.RawArray("q", processes)
    configs = split_config(base, processes)
    procs = [
        ctx.Process(
            target=worker_main,
            args=(c, ready, go, start_value, results, done_counts),
            name=f"loadtest-{label}-{c.stream}",
            daemon=True,
        )
        for c in configs
    ]
    raw: dict[int, dict[str, Any]] = {}
    updates: _MarketUpdates | None = None
    try:
        for p in procs:
            p.start()
        n_ready = 0
        deadline = time.monotonic() + READY_TIMEOUT_S
        while n_ready < processes:
            _drain(results, raw)
            failed = [r for r in raw.values() if "error" in r]
            if failed:
                raise HarnessError(f"{label}: client process failed: {failed[0]['error']}\n"
                                   f"{failed[0].get('traceback', '')}")  # fmt: skip
            if any(not p.is_alive() for p in procs) and not raw:
                raise HarnessError(f"{label}: a client process exited before it was ready")
            if time.monotonic() > deadline:
                raise HarnessError(f"{label}: client processes not ready after "
                                   f"{READY_TIMEOUT_S:.0f} s")  # fmt: skip
            try:
                ready.get(timeout=0.2)
                n_ready += 1
            except queue.Empty:
                continue
        start_ns = time.monotonic_ns() + START_DELAY_NS
        run_s = base.warmup_s + base.duration_s
        end_ns = start_ns + int(run_s * 1e9)
        start_value.value = start_ns
        go.set()
        if market_updates_per_s > 0 and market_snapshot is not None:
            updates = _MarketUpdates(
                base.address, market_snapshot, market_updates_per_s, base.seed,
                start_ns, end_ns, base.deadline_s,
            )  # fmt: skip
            updates.start()
        win = [start_ns + int(base.warmup_s * 1e9), end_ns]
        samples: list[tuple[int, float | None]] = []  # (monotonic ns, server CPU s)

        def window_edge(edge: str) -> None:
            samples.append((time.monotonic_ns(), server_cpu() if server_cpu else None))
            if on_window is not None:
                on_window(edge)

        hard_stop = end_ns / 1e9 + base.deadline_s + 60.0
        with tqdm(
            total=math.ceil(run_s),
            desc=label,
            unit="s",
            disable=(not progress) if progress is not None else None,
            leave=False,
            bar_format="{desc}: {bar} {n:.0f}/{total} s {postfix}",
        ) as bar:
            while len(raw) < processes and time.monotonic() < hard_stop:
                _drain(results, raw)
                now_ns = time.monotonic_ns()
                if len(samples) == 0 and now_ns >= win[0]:
                    window_edge("start")
                if len(samples) == 1 and now_ns >= win[1]:
                    window_edge("end")
                elapsed = min(run_s, max(0.0, (time.monotonic_ns() - start_ns) / 1e9))
                bar.n = math.floor(elapsed)
                phase = "warm-up" if elapsed < base.warmup_s else "measuring"
                if elapsed >= run_s:
                    phase = "draining"
                bar.set_postfix_str(f"{phase}, {sum(done_counts):,} answers", refresh=False)
                bar.refresh()
                time.sleep(0.1 if now_ns < win[1] + 500_000_000 else 0.25)
        _drain(results, raw)
        if len(samples) == 1:
            window_edge("end")
    finally:
        if updates is not None:
            updates.join(timeout=base.deadline_s + 30.0)
        for p in procs:
            p.join(timeout=10.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5.0)
        with contextlib.suppress(Exception):
            ready.close()
            results.close()
    failed = [r for r in raw.values() if "error" in r]
    if failed:
        raise HarnessError(f"{label}: client process failed: {failed[0]['error']}\n"
                           f"{failed[0].get('traceback', '')}")  # fmt: skip
    if len(raw) < processes:
        raise HarnessError(f"{label}: only {len(raw)} of {processes} client processes reported")
    batch = base.batch if base.rpc == "batch" else 1
    merged = report.merge_phase([raw[k] for k in sorted(raw)], base.duration_s, batch, base.mode)
    merged["address"] = base.address
    merged["rate_calls_per_s"] = base.rate if base.mode == "open" else None
    merged["concurrency"] = base.concurrency if base.mode == "closed" else None
    if updates is not None:
        merged["market_updates"] = updates.stats()
    merged["cpu"] = _cpu_section(raw, samples, merged)
    return merged


def _cpu_section(
    raw: dict[int, dict[str, Any]], samples: list[tuple[int, float | None]], merged: dict[str, Any]
) -> dict[str, Any]:
    """Server CPU in the measurement window (if known) and client CPU over the run, as busy
    cores and as CPU µs per call: on a shared machine this shows who uses the cores."""
    calls = sum(r.get("calls_total", 0) for r in raw.values())
    client_cpu = sum(r.get("cpu_s", 0.0) for r in raw.values())
    out: dict[str, Any] = {
        "client_cpu_us_per_call": client_cpu * 1e6 / calls if calls else None,
        "server_cores": None,
        "server_cpu_us_per_call": None,
        "server_cpu_us_per_decision": None,
    }
    if len(samples) == 2 and samples[0][1] is not None and samples[1][1] is not None:
        wall = (samples[1][0] - samples[0][0]) / 1e9
        cpu = samples[1][1] - samples[0][1]
        tp = merged["throughput"]
        if wall > 0:
            cores = cpu / wall
            out["server_cores"] = cores
            if tp["calls_per_s"] > 0:
                out["server_cpu_us_per_call"] = cores * 1e6 / tp["calls_per_s"]
                out["server_cpu_us_per_decision"] = cores * 1e6 / tp["decisions_per_s"]
    return out
