"""One client process: drives one target in open or closed loop with grpc futures.

Open loop: requests are *scheduled* at a fixed rate (constant gaps or Poisson arrivals) by a
sender that sleeps with ``time.sleep`` (sub-millisecond wake-ups, unlike an asyncio timer's
millisecond granularity) and sends each call as a non-blocking ``.future()``. Answers are
recorded by callbacks on grpc's channel thread, so a slow answer never delays the next send.
Each request's latency is measured from its **intended** send time, so a server (or a
client) that falls behind cannot hide its queueing: no coordinated omission. Only above
``max_in_flight`` outstanding calls does the sender wait, and that wait is still charged to
the requests' latency. How far the sender ran behind its schedule is reported separately
(``client_send_lag_us``): if it is large, the client, not the server, is the bottleneck.

Closed loop: ``concurrency`` call chains; each answer's callback sends the next call. The
latency is measured from the send. This finds the maximum throughput.

Only calls whose intended (open) or actual (closed) send time falls inside the measurement
window ``[warmup, warmup + duration)`` are recorded; throughput counts the answers that
arrive inside the window. Everything is kept in flat arrays while running and turned into
HDR histograms after the run, so recording costs almost nothing on the hot path.
"""

from __future__ import annotations

import math
import multiprocessing.synchronize
import random
import threading
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from loadtest import hist
from loadtest.workload import OrderFactory, OrderSpec
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc

__all__ = ["DriverConfig", "reason_name", "run_driver", "worker_main"]

_STATUS_BY_VALUE = {code.value[0]: code.name for code in grpc.StatusCode}
ACCEPTED = -1  # reason key of accepted decisions


def reason_name(key: int) -> str:
    if key == ACCEPTED:
        return "ACCEPTED"
    try:
        return pb.RejectReason.Name(key).removeprefix("REJECT_REASON_")
    except ValueError:
        return f"REASON_{key}"


@dataclass(frozen=True)
class DriverConfig:
    """Everything one client process needs (picklable)."""

    address: str
    orders: OrderSpec
    mode: str = "open"  # open | closed
    rpc: str = "unary"  # unary (CheckOrder) | batch (CheckOrders)
    batch: int = 1
    rate: float = 100.0  # calls per second of this process (open loop)
    arrival: str = "constant"  # constant | poisson
    phase_s: float = 0.0  # first intended send, relative to the common start
    concurrency: int = 16  # in-flight calls of this process (closed loop)
    warmup_s: float = 1.0
    duration_s: float = 10.0
    deadline_s: float = 5.0  # per-call gRPC deadline
    max_in_flight: int = 20_000
    channels: int = 1
    seed: int = 1
    stream: int = 0  # process index: its own order stream and id range


class _Recorder:
    def __init__(self, cfg: DriverConfig, start_ns: int) -> None:
        self.win_lo = start_ns + int(cfg.warmup_s * 1e9)
        self.win_hi = self.win_lo + int(cfg.duration_s * 1e9)
        self.start_ns = start_ns
        self.intended = array("q")  # in-window OK calls: intended send time
        self.latency = array("q")  # ... and wire latency
        self.send_lag = array("q")  # in-window calls: actual send - intended send
        self.done_ok = array("q")  # completion time of every OK call (throughput)
        self.compute = array("q")  # in-window decisions: server compute_ns
        self.reasons: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_examples: dict[str, str] = {}  # first detail message per status code
        self.error_latency = array("q")  # in-window failed calls: time to the failure
        self.calls_in_window = 0
        self.calls_total = 0
        self.completed = 0
        self.in_flight = 0

    def sent(self, intended_ns: int, sent_ns: int) -> bool:
        self.calls_total += 1
        self.in_flight += 1
        inside = self.win_lo <= intended_ns < self.win_hi
        if inside:
            self.calls_in_window += 1
            self.send_lag.append(sent_ns - intended_ns)
        return inside

    def answered(self, intended_ns: int, inside: bool, resp: Any, batch: bool) -> None:
        now = time.monotonic_ns()
        self.in_flight -= 1
        self.completed += 1
        self.done_ok.append(now)
        if not inside:
            return
        self.intended.append(intended_ns)
        self.latency.append(now - intended_ns)
        comp, reasons = self.compute, self.reasons
        for d in resp.decisions if batch else (resp,):
            comp.append(d.compute_ns)
            reasons[ACCEPTED if d.accepted else d.reason] += 1

    def failed(self, intended_ns: int, inside: bool, code: str, detail: str = "") -> None:
        self.in_flight -= 1
        self.completed += 1
        if inside:
            self.errors[code] += 1
            self.error_latency.append(time.monotonic_ns() - intended_ns)
            if code not in self.error_examples:
                self.error_examples[code] = detail[:300]

    def result(self, cfg: DriverConfig, unanswered: int) -> dict[str, Any]:
        seconds = max(1, math.ceil(cfg.duration_s))
        intended = np.frombuffer(self.intended, dtype=np.int64)
        latency = np.frombuffer(self.latency, dtype=np.int64)
        wire = hist.new_histogram()
        hist.record_many(wire, latency)
        compute = hist.new_histogram()
        hist.record_many(compute, np.frombuffer(self.compute, dtype=np.int64))
        lag = hist.new_histogram()
        hist.record_many(lag, np.frombuffer(self.send_lag, dtype=np.int64))
        err = hist.new_histogram()
        hist.record_many(err, np.frombuffer(self.error_latency, dtype=np.int64))
        # per-second series: latency by intended second, throughput by completion second
        sec = (intended - self.win_lo) // 1_000_000_000
        series = []
        for s in range(seconds):
            h = hist.new_histogram(hist.SERIES_SIGNIFICANT_FIGURES)
            hist.record_many(h, latency[sec == s])
            series.append(h.encode().decode())
        done = np.frombuffer(self.done_ok, dtype=np.int64)
        done = done[(done >= self.win_lo) & (done < self.win_hi)]
        ok_per_s = np.bincount((done - self.win_lo) // 1_000_000_000, minlength=seconds)[:seconds]
        return {
            "stream": cfg.stream,
            "calls_sent": self.calls_in_window,
            "responses": int(latency.size),
            "answered_in_window": int(done.size),
            "decisions": int(sum(self.reasons.values())),
            "reasons": {reason_name(k): v for k, v in sorted(self.reasons.items())},
            "errors": dict(self.errors),
            "error_examples": dict(self.error_examples),
            "unanswered": unanswered,
            "wire_hist": wire.encode().decode(),
            "compute_hist": compute.encode().decode(),
            "send_lag_hist": lag.encode().decode(),
            "error_hist": err.encode().decode(),
            "series_hists": series,
            "series_ok": ok_per_s.astype(int).tolist(),
        }


class _Driver:
    def __init__(self, cfg: DriverConfig, progress: Any = None) -> None:
        self.cfg = cfg
        self.factory = OrderFactory(cfg.orders, cfg.seed, cfg.stream)
        self.batch = cfg.rpc == "batch"
        self.progress = progress
        self.lock = threading.Lock()
        self.slot = threading.Condition(self.lock)
        self.all_done = threading.Event()
        self.active = 0  # closed loop: call chains still running
        self.channels: list[grpc.Channel] = []
        self.methods: list[Any] = []
        self.start_ns = self.end_ns = 0
        self.rec = _Recorder(cfg, 0)

    def connect(self) -> None:
        for _ in range(self.cfg.channels):
            ch = grpc.insecure_channel(
                self.cfg.address,
                options=[
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.use_local_subchannel_pool", 1),  # one connection per channel
                ],
            )
            grpc.channel_ready_future(ch).result(timeout=30.0)
            stub = riskgate_pb2_grpc.RiskGateStub(ch)
            self.channels.append(ch)
            self.methods.append(stub.CheckOrders if self.batch else stub.CheckOrder)

    def close(self) -> None:
        for ch in self.channels:
            ch.close()

    def set_start(self, start_ns: int) -> None:
        cfg = self.cfg
        self.start_ns = start_ns
        self.end_ns = start_ns + int((cfg.warmup_s + cfg.duration_s) * 1e9)
        self.rec = _Recorder(cfg, start_ns)

    def _request(self) -> Any:
        f = self.factory
        return f.check_orders(self.cfg.batch) if self.batch else f.check_order()

    def _send(
        self, method: Any, intended_ns: int | None, then: Callable[[Any], None] | None
    ) -> None:
        """Build and send one call (non-blocking); its answer is recorded by a callback on
        grpc's channel thread, which then runs ``then(method)`` (closed loop). Latency
        counts from ``intended_ns`` (open loop: the schedule, so building the request is
        included) or, if None, from the moment the built request is sent (closed loop)."""
        req = self._request()
        sent_ns = time.monotonic_ns()
        if intended_ns is None:
            intended_ns = sent_ns
        with self.lock:
            inside = self.rec.sent(intended_ns, sent_ns)
        fut = method.future(req, timeout=self.cfg.deadline_s)
        fut.add_done_callback(lambda f: self._done(f, intended_ns, inside, method, then))

    def _done(
        self,
        fut: Any,
        intended_ns: int,
        inside: bool,
        method: Any,
        then: Callable[[Any], None] | None,
    ) -> None:
        rec = self.rec
        try:
            exc = fut.exception()
            with self.lock:
                if exc is None:
                    rec.answered(intended_ns, inside, fut.result(), self.batch)
                else:
                    if isinstance(exc, grpc.Call):
                        rec.failed(intended_ns, inside, exc.code().name, exc.details() or "")
                    else:
                        rec.failed(intended_ns, inside, type(exc).__name__, str(exc))
                self.slot.notify()
                if rec.completed & 63 == 0 and self.progress is not None:
                    self.progress[self.cfg.stream] = rec.completed
        except Exception:  # never lose the chain: count it and go on
            with self.lock:
                rec.failed(intended_ns, inside, "CLIENT_ERROR")
        if then is not None:
            then(method)

    def _sleep_until(self, t_ns: float) -> None:
        delay = (t_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)

    def open_loop(self) -> None:
        cfg, rec = self.cfg, self.rec
        gap_ns = 1e9 / cfg.rate
        rnd = random.Random(cfg.seed * 7919 + cfg.stream)
        poisson = cfg.arrival == "poisson"
        t_next = self.start_ns + cfg.phase_s * 1e9
        methods = self.methods
        k = 0
        while t_next < self.end_ns:
            self._sleep_until(t_next)
            now = time.monotonic_ns()
            while t_next <= now and t_next < self.end_ns:
                if rec.in_flight >= cfg.max_in_flight:
                    with self.slot:  # bounded wait; the latency still counts from t_next
                        self.slot.wait_for(lambda: rec.in_flight < cfg.max_in_flight, 1.0)
                self._send(methods[k % len(methods)], int(t_next), None)
                k += 1
                t_next += rnd.expovariate(1.0) * gap_ns if poisson else gap_ns

    def _next_closed(self, method: Any) -> None:
        if time.monotonic_ns() < self.end_ns:
            self._send(method, None, self._next_closed)
            return
        with self.lock:
            self.active -= 1
            if self.active == 0:
                self.all_done.set()

    def closed_loop(self) -> None:
        self._sleep_until(self.start_ns)
        n = self.cfg.concurrency
        self.active = n
        for i in range(n):
            self._send(self.methods[i % len(self.methods)], None, self._next_closed)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        cpu0 = time.process_time()
        if cfg.mode == "closed":
            self.closed_loop()
            self.all_done.wait(
                timeout=(self.end_ns - time.monotonic_ns()) / 1e9 + cfg.deadline_s + 2.0
            )
        else:
            self._sleep_until(self.start_ns)
            self.open_loop()
        # drain: every call has a deadline, so this ends by itself
        with self.slot:
            self.slot.wait_for(lambda: self.rec.in_flight == 0, cfg.deadline_s + 2.0)
            unanswered = self.rec.in_flight
            if self.progress is not None:
                self.progress[cfg.stream] = self.rec.completed
            out = self.rec.result(cfg, unanswered)
        out["cpu_s"] = time.process_time() - cpu0
        out["calls_total"] = self.rec.calls_total
        return out


def run_driver(
    cfg: DriverConfig,
    on_ready: Callable[[], int] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Connect, report ready (``on_ready`` returns the common start time in monotonic ns,
    possibly after waiting for the other processes), run, and return the raw result."""
    driver = _Driver(cfg, progress)
    driver.connect()
    try:
        start_ns = time.monotonic_ns() + 100_000_000 if on_ready is None else on_ready()
        driver.set_start(start_ns)
        return driver.run()
    finally:
        driver.close()


def worker_main(
    cfg: DriverConfig,
    ready: Any,
    go: multiprocessing.synchronize.Event,
    start_ns: Any,
    results: Any,
    progress: Any,
) -> None:
    """Entry point of a client process (``multiprocessing``, spawn start method)."""

    def on_ready() -> int:
        ready.put(cfg.stream)
        if not go.wait(timeout=120.0):
            raise TimeoutError("no start signal from the parent")
        return int(start_ns.value)

    try:
        out = run_driver(cfg, on_ready, progress)
    except BaseException as exc:  # report, never hang the parent
        results.put({"stream": cfg.stream, "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()})  # fmt: skip
        return
    results.put(out)
