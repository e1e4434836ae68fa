"""How long a snapshot holds writers off: part of ``riskgate bench-recovery``.

The recovered book of a data directory (in memory, no journal) serves a writer thread
placing orders on random accounts (an order, then 0.2 ms idle, as a steady flow) while the
main thread takes ``rounds`` snapshots, 0.5 s apart. Reported: how long each snapshot took,
the commit lock's longest hold by the snapshot (the cut, and each account's copy), and the
writer's call latency while snapshots ran against the same writer between them. The
cyclic collector is tuned as the server tunes it after start-up.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.journal.store import DataStore
from riskgate.engine.types import OrderRequest, OrderType, Side
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params
from riskgate.server.app import tune_gc


class _TimedLock:
    """The engine's commit lock, timing how long the snapshot's thread holds it."""

    def __init__(self, lock, owner: int) -> None:
        self._lock, self._owner = lock, owner
        self.holds_ns: list[int] = []
        self._t0 = 0

    def __enter__(self):
        self._lock.acquire()
        if threading.get_ident() == self._owner:
            self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc) -> None:
        if threading.get_ident() == self._owner:
            self.holds_ns.append(time.perf_counter_ns() - self._t0)
        self._lock.release()

    def acquire(self, *a, **k):
        return self._lock.acquire(*a, **k)

    def release(self) -> None:
        self._lock.release()


def _pct(ns: list[int] | np.ndarray) -> dict[str, float]:
    us = np.asarray(ns, dtype=np.float64) / 1e3
    if us.size == 0:
        return {"n": 0}
    return {
        "n": int(us.size),
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
    }


def pause_bench(data_dir: Path, model: str, rounds: int = 3) -> dict[str, Any]:
    engine = RiskEngine(
        load_model(model), load_rules_params(), EngineConfig(decision_budget_ns=10**9)
    )
    engine.warm_up()
    store = DataStore(data_dir, fsync="none")
    try:
        book = engine.new_book()
        rec = store.recover(book)
    finally:
        store.close()
    engine.restore(book, rec.last_seq)
    tune_gc()
    ids = list(book.accounts)
    if not ids:
        return {}
    timed = _TimedLock(engine._commit_lock, threading.get_ident())
    engine._commit_lock = timed  # type: ignore[assignment]
    stop, snapping = threading.Event(), threading.Event()
    idle: list[int] = []
    during: list[int] = []

    def writer() -> None:
        picks = np.random.default_rng(1).integers(0, len(ids), 1 << 16)
        k = 0
        while not stop.is_set():
            aid = ids[int(picks[k % len(picks)])]
            side = Side.BUY if k % 2 else Side.SELL
            t0 = time.perf_counter_ns()
            engine.check_order(OrderRequest(aid, f"pause-{k}", "BTC-PERPETUAL", side, 0.1,
                                            None, OrderType.MARKET))  # fmt: skip
            (during if snapping.is_set() else idle).append(time.perf_counter_ns() - t0)
            k += 1
            time.sleep(0.0002)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the server's
    thread = threading.Thread(target=writer, name="bench-writer")
    seconds, holds, sizes = [], [], []
    try:
        thread.start()
        time.sleep(0.5)
        for _ in range(rounds):
            timed.holds_ns = []
            snapping.set()
            t0 = time.perf_counter()
            _seq, payload = engine.snapshot()
            seconds.append(time.perf_counter() - t0)
            snapping.clear()
            holds.append(max(timed.holds_ns))
            sizes.append(len(payload))
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch)
        gc.unfreeze()
    return {
        "accounts": len(ids),
        "rounds": rounds,
        "snapshot_s": seconds,
        "snapshot_bytes": sizes[-1],
        "commit_lock_longest_hold_us": [h / 1e3 for h in holds],
        "writer_between": _pct(idle),
        "writer_during": _pct(during),
    }


def render_pause(sp: dict[str, Any]) -> list[str]:
    b, d = sp["writer_between"], sp["writer_during"]
    holds = ", ".join(f"{h / 1e3:.1f}" for h in sp["commit_lock_longest_hold_us"])
    secs = ", ".join(f"{s:.2f}" for s in sp["snapshot_s"])
    return [
        f"snapshot pause ({sp['accounts']:,} accounts, {sp['snapshot_bytes'] / 2**20:.1f} MiB, "
        f"a writer placing orders meanwhile): snapshots {secs} s; the commit lock's longest "
        f"hold by each {holds} ms",
        f"  writer's calls between snapshots p50 / p99 / max {b['p50_us']:.0f} / "
        f"{b['p99_us']:.0f} / {b['max_us']:,.0f} µs ({b['n']:,}); during them "
        f"{d['p50_us']:.0f} / {d['p99_us']:.0f} / {d['max_us']:,.0f} µs ({d['n']:,})",
    ]
