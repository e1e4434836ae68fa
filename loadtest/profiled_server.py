"""Run ``riskgate`` (its CLI) under cProfile, every thread included, and write the stats.

cProfile only sees the thread that enables it, and riskgate answers RPCs on a thread pool,
so a profile hook (``threading.setprofile``) starts one profiler per thread as each thread
starts; at exit the per-thread profiles are merged into one ``pstats`` file plus a text
summary of the top functions (by total and by cumulative time), preceded by the garbage
collector's pauses (``gc.callbacks``), which cProfile cannot see.

    python -m loadtest.profiled_server --out server.prof [--clock cpu|wall] -- serve ...

``--clock cpu`` (default) times each thread's CPU time (``time.thread_time_ns``): the
profile shows where the work is, and idle or blocked threads cost nothing. ``--clock wall``
times elapsed time, so waits on locks, queues and the network show up as well.

SIGUSR1 opens and SIGUSR2 closes a measurement window: the profile of the windows alone
(every thread's totals at SIGUSR2 minus those at SIGUSR1, summed over windows) is written
to ``<out>.window.prof`` and ``<out>.window.txt``; the load test sends these signals at the
edges of its measurement window, so set-up and warm-up stay out of that profile.

cProfile roughly doubles the cost of Python code and not of native code (numba kernels,
grpc's C core), so read the profile as shares, not as absolute times.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import gc
import io
import pstats
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "summarise"]

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_clock: dict[str, Any] = {}


def _new_profile() -> cProfile.Profile:
    if _clock.get("cpu"):
        # per-thread CPU time: waits (locks, queues, polling) cost nothing, work shows
        return cProfile.Profile(time.thread_time_ns, 1e-9)
    return cProfile.Profile()  # wall clock: waits show up too


def _start_thread_profile(frame: Any, event: str, arg: Any) -> None:
    # called once in each new thread (threading.setprofile): replace this hook by a
    # per-thread profiler
    prof = _new_profile()
    with _lock:
        _profiles.append(prof)
    prof.enable()


# ---- garbage-collector pauses (invisible to cProfile) -------------------------------------

_gc_started: dict[int, int] = {}
_gc_pauses: dict[int, list[int]] = {0: [], 1: [], 2: []}  # generation -> pause ns


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    gen = int(info.get("generation", 0))
    if phase == "start":
        _gc_started[gen] = time.perf_counter_ns()
    elif gen in _gc_started:
        _gc_pauses.setdefault(gen, []).append(time.perf_counter_ns() - _gc_started.pop(gen))


def gc_summary() -> str:
    lines = ["=== garbage-collector pauses (whole run; all threads stop) ==="]
    for gen, pauses in sorted(_gc_pauses.items()):
        if pauses:
            lines.append(
                f"generation {gen}: {len(pauses)} collections, total {sum(pauses) / 1e6:.1f} ms, "
                f"max {max(pauses) / 1e6:.1f} ms"
            )
        else:
            lines.append(f"generation {gen}: none")
    return "\n".join(lines) + "\n\n"


# ---- measurement windows: SIGUSR1 opens one, SIGUSR2 closes it --------------------------

_Key = tuple[str, int, str]
_Row = list[float]  # [primitive calls, calls, tottime, cumtime]
_window_start: dict[_Key, _Row] | None = None
_window_total: dict[_Key, _Row] = {}
_windows = 0


def _snapshot() -> dict[_Key, _Row]:
    """Current totals of every thread's profiler (read without stopping them)."""
    out: dict[_Key, _Row] = {}
    profiles = list(_profiles)  # no lock: this runs in a signal handler on the main thread
    for prof in profiles:
        for entry in prof.getstats():
            key = cProfile.label(entry.code)  # type: ignore[attr-defined]
            row = out.setdefault(key, [0, 0, 0.0, 0.0])
            row[0] += entry.callcount - entry.reccallcount
            row[1] += entry.callcount
            row[2] += entry.inlinetime
            row[3] += entry.totaltime
    return out


def _open_window(signum: int, frame: Any) -> None:
    global _window_start
    _window_start = _snapshot()


def _close_window(signum: int, frame: Any) -> None:
    global _window_start, _windows
    if _window_start is None:
        return
    end = _snapshot()
    for key, row in end.items():
        before = _window_start.get(key, [0, 0, 0.0, 0.0])
        total = _window_total.setdefault(key, [0, 0, 0.0, 0.0])
        for k in range(4):
            total[k] += row[k] - before[k]
    _window_start = None
    _windows += 1


class _WindowStats:
    """Adapter so ``pstats.Stats`` can load the window totals (callers are not kept)."""

    def __init__(self, rows: dict[_Key, _Row]) -> None:
        self.stats = {
            key: (int(cc), int(nc), tt, ct, {}) for key, (cc, nc, tt, ct) in rows.items() if nc > 0
        }

    def create_stats(self) -> None:
        pass


def summarise(stats: pstats.Stats, top: int = 30) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    out.write(f"=== top {top} by own time (tottime) ===\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"\n=== top {top} by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _dump(out: Path) -> None:
    with _lock:
        profiles = list(_profiles)
    if not profiles:  # --clock none: only the garbage collector's pauses
        out.with_suffix(".txt").write_text(gc_summary())
        return
    for prof in profiles:
        prof.disable()
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        try:
            stats.add(prof)
        except TypeError:  # a profiler that never recorded anything
            continue
    stats.dump_stats(str(out))
    out.with_suffix(".txt").write_text(gc_summary() + summarise(stats))
    if _windows:
        window = out.with_suffix(".window.prof")
        wstats = pstats.Stats(_WindowStats(_window_total))  # type: ignore[arg-type]
        wstats.dump_stats(str(window))
        header = (
            f"profile of {_windows} measurement window(s) only (SIGUSR1 .. SIGUSR2); "
            "callers are not recorded\n\n"
        )
        window.with_suffix(".txt").write_text(header + gc_summary() + summarise(wstats))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.profiled_server",
        description="Run `riskgate ARGS...` with every thread under cProfile; on exit write "
        "the merged stats to --out (pstats) and a summary next to it (.txt).",
    )
    parser.add_argument("--out", required=True, type=Path, help="pstats output file")
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall", "none"],
        default="cpu",
        help="cpu: per-thread CPU time (where the work is; default); wall: elapsed time "
        "(waits for locks, queues and the network included); none: no profiler, only the "
        "garbage collector's pauses (no slow-down)",
    )
    parser.add_argument("riskgate_args", nargs=argparse.REMAINDER, help="-- then riskgate args")
    args = parser.parse_args(argv)
    rest = list(args.riskgate_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    from riskgate.cli import main as riskgate_main

    atexit.register(_dump, args.out)
    gc.callbacks.append(_gc_callback)
    signal.signal(signal.SIGUSR1, _open_window)
    signal.signal(signal.SIGUSR2, _close_window)
    if args.clock == "none":
        try:
            return int(riskgate_main(rest) or 0)
        finally:
            _dump(args.out)
            atexit.unregister(_dump)
    threading.setprofile(_start_thread_profile)
    _clock["cpu"] = args.clock == "cpu"
    main_prof = _new_profile()
    with _lock:
        _profiles.append(main_prof)
    main_prof.enable()
    try:
        return int(riskgate_main(rest) or 0)
    finally:
        main_prof.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        _dump(args.out)
        atexit.unregister(_dump)


if __name__ == "__main__":
    sys.exit(main())
