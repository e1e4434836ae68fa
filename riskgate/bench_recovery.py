"""``riskgate bench-recovery``: how fast a data directory comes back.

Builds a data directory the way the service fills one: a real engine journaling into a
:class:`~riskgate.engine.journal.store.DataStore` (fsync ``none``, for a fast set-up)
receives the embedded demo market, ``--accounts`` accounts of ``--legs`` random positions,
then orders until the journal holds ``--events`` events: each order a ``check_order``
(an accept, or a remembered reject), most accepts acknowledged by the venue and then
filled or cancelled, a few left pending. Two copies get a snapshot (the journal segments
it makes unnecessary deleted, as the service does): one taken ``--tail`` events before the
end (a restart after a crash), one at the end (after a clean shutdown, which writes one).
Then, in process, ``--repeats`` times each:

- *journal only*: open the store (every segment read and CRC-checked), then
  ``DataStore.recover`` into an empty book: read, decode and apply every event;
- *snapshot + tail*: the same on the first copy: decode the snapshot (its state hash is
  checked) and replay the events after it;
- *snapshot, no tail*: the same on the second copy;

and as a service, ``--restarts`` times each, interleaved: ``riskgate serve --data-dir DIR
--no-demo`` started on a fresh copy of the directory (fsynced before the start), timed
from process start to gRPC health ``SERVING``, for an empty data directory (the start-up
cost without state) and the three above. Every recovery must end in the state hash of the
engine that wrote the journal.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from riskgate.bench import BENCH_TIME, add_bench_account, emit
from riskgate.bench_snapshot import pause_bench, render_pause
from riskgate.demo import demo_market, random_portfolio
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.journal import codec
from riskgate.engine.journal.file import scan_journal
from riskgate.engine.journal.recovery import replay
from riskgate.engine.journal.snapshots import latest_snapshot
from riskgate.engine.journal.store import JOURNAL_DIR, DataStore
from riskgate.engine.types import Acknowledged, Cancelled, Filled, OrderRequest, OrderType, Side
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params

CASES = ("empty", "journal", "snapshot", "clean")
CASE_NAMES = {
    "empty": "empty data dir",
    "journal": "journal only",
    "snapshot": "snapshot + tail",
    "clean": "snapshot, no tail",
}
CASE_DIRS = {"journal": "journal-only", "snapshot": "snapshot", "clean": "clean"}
_SERVICE = "riskgate.v1.RiskGate"


class BenchError(RuntimeError):
    """A restart that did not reach SERVING, or a recovery that ended in another state."""


# ------------------------------------------------------------------ building the data dir


def _engine(model: str, store: DataStore | None) -> RiskEngine:
    return RiskEngine(
        load_model(model), load_rules_params(), EngineConfig(decision_budget_ns=10**9), sink=store
    )


def build(
    root: Path, *, accounts: int, legs: int, events: int, tail: int, model: str, seed: int
) -> dict[str, Any]:
    """Fill ``root/journal-only`` through a real engine and make ``root/snapshot`` from it;
    returns what was built (counts, sizes, the final state hash)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    market = demo_market(BENCH_TIME)
    journal_dir = root / "journal-only"
    store = DataStore(journal_dir, fsync="none")
    engine = _engine(model, store)
    engine.warm_up()
    engine.load_snapshot(market.snapshot)
    ids = [f"acct-{k:05d}" for k in range(accounts)]
    for aid in ids:
        add_bench_account(engine, aid, random_portfolio(market, legs, rng), 1e9)
    setup_events = engine.seq
    symbols = [i.symbol for i in market.instruments]
    marks = {s: q.mark for s, q in engine.market.quotes.items()}  # type: ignore[union-attr]
    snap_at = max(setup_events, events - tail)
    snapshot: tuple[int, bytes] | None = None
    counts = dict.fromkeys(("orders", "accepted", "acknowledged", "filled", "cancelled"), 0)
    # the random draws come in blocks (numpy calls are cheap per block, dear per order)
    block = 4096
    k = 0
    while engine.seq < events:
        if snapshot is None and engine.seq >= snap_at:
            snapshot = engine.snapshot()
        j = k % block
        if j == 0:
            acc_pick = rng.integers(0, accounts, block)
            sym_pick = rng.integers(0, len(symbols), block)
            qty = np.round(rng.uniform(0.1, 1.0, block), 1)
            fate = rng.random(block)
        aid, sym = ids[int(acc_pick[j])], symbols[int(sym_pick[j])]
        side = Side.BUY if k % 2 else Side.SELL
        coid = f"o{k}"
        k += 1
        counts["orders"] += 1
        q = float(qty[j])
        d = engine.check_order(OrderRequest(aid, coid, sym, side, q, None, OrderType.MARKET))
        if not d.accepted:
            continue
        counts["accepted"] += 1
        f = float(fate[j])
        if f < 0.05:  # left pending: a reservation the venue never answered
            continue
        if engine.seq >= events:
            break
        engine.order_event(aid, coid, Acknowledged(f"v{k}"))
        counts["acknowledged"] += 1
        if engine.seq >= events:
            break
        if f < 0.55:
            engine.order_event(aid, coid, Filled(q, marks[sym], f"f{k}"))
            counts["filled"] += 1
        else:
            engine.order_event(aid, coid, Cancelled())
            counts["cancelled"] += 1
    if snapshot is None:
        snapshot = engine.snapshot()
    final = engine.snapshot()  # what a clean shutdown leaves
    last_seq = engine.seq
    state_hash = codec.state_hash(engine.book)
    store.close()
    build_s = time.perf_counter() - t0

    snap_dir = root / CASE_DIRS["snapshot"]
    for sub, snap in ((CASE_DIRS["snapshot"], snapshot), (CASE_DIRS["clean"], final)):
        shutil.copytree(journal_dir / JOURNAL_DIR, root / sub / JOURNAL_DIR)
        copy = DataStore(root / sub, fsync="none")
        try:
            written = copy.save_snapshot(*snap)
        finally:
            copy.close()
        if snap is snapshot:
            path = written
    scan = scan_journal(journal_dir / JOURNAL_DIR)
    kept = scan_journal(snap_dir / JOURNAL_DIR)
    return {
        "accounts": accounts,
        "legs": legs,
        "model": model,
        "instruments": len(market.instruments),
        "events": last_seq,
        "setup_events": setup_events,
        "order_flow": counts,
        "build_s": build_s,
        "journal": {
            "segments": len(scan.segments),
            "bytes": sum(s.bytes for s in scan.segments),
        },
        "snapshot": {
            "seq": snapshot[0],
            "bytes": path.stat().st_size,
            "tail_events": last_seq - snapshot[0],
            "journal_segments_kept": len(kept.segments),
            "journal_bytes_kept": sum(s.bytes for s in kept.segments),
        },
        "state_hash": state_hash,
    }


# ------------------------------------------------------------------ in process


def _replay_once(data_dir: Path, model: str) -> dict[str, Any]:
    """Open the store (every segment read and checked) and ``DataStore.recover``."""
    book = _engine(model, None).new_book()
    t0 = time.perf_counter()
    store = DataStore(data_dir, fsync="none")
    try:
        t1 = time.perf_counter()
        rec = store.recover(book)
        t2 = time.perf_counter()
    finally:
        store.close()
    open_s, recover_s = t1 - t0, t2 - t1
    out = {
        "open_s": open_s,
        "recover_s": recover_s,  # the whole call, the state hash it reports included
        "recovery_seconds": rec.seconds,  # as the Recovery (and the service's log) says
        "total_s": open_s + recover_s,
        "snapshot_seq": rec.snapshot_seq,
        "events_replayed": rec.events_replayed,
        "last_seq": rec.last_seq,
        "accounts": len(book.accounts),
        "state_hash": rec.state_hash,
    }
    del book
    gc.collect()
    return out


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """As ``DataStore.recover`` runs: without the cyclic garbage collector."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _journal_breakdown(data_dir: Path, model: str) -> dict[str, Any]:
    """One pass of what ``recover`` does from the journal alone, timed per record: reading
    it, decoding it, applying it (``replay`` of that one event), summed per event type."""
    with _collector_paused():
        return _journal_breakdown_pass(data_dir, model)


def _journal_breakdown_pass(data_dir: Path, model: str) -> dict[str, Any]:
    book = _engine(model, None).new_book()
    store = DataStore(data_dir, fsync="none")
    clock = time.perf_counter_ns
    kinds: dict[str, list[int]] = {}
    read_ns = 0
    seq = 0
    try:
        records = iter(store.journal.records(1))
        while True:
            t0 = clock()
            record = next(records, None)
            t1 = clock()
            if record is None:
                break
            stamped = codec.decode_event_checked(*record)
            t2 = clock()
            replay(book, (stamped,), after_seq=seq)
            t3 = clock()
            seq = stamped.seq
            read_ns += t1 - t0
            k = kinds.setdefault(_kind(stamped.event), [0, 0, 0])
            k[0] += 1
            k[1] += t2 - t1
            k[2] += t3 - t2
    finally:
        store.close()
    state = codec.state_hash(book)
    del book
    gc.collect()
    events = sum(k[0] for k in kinds.values())
    return {
        "events": events,
        "read_s": read_ns / 1e9,
        "decode_s": sum(k[1] for k in kinds.values()) / 1e9,
        "apply_s": sum(k[2] for k in kinds.values()) / 1e9,
        "by_type": {
            name: {"count": n, "decode_us": d / n / 1e3, "apply_us": a / n / 1e3}
            for name, (n, d, a) in sorted(kinds.items(), key=lambda kv: -kv[1][2])
        },
        "state_hash": state,
    }


def _kind(event: Any) -> str:
    name = type(event).__name__
    if name == "OrderStep":
        return f"OrderStep ({type(event.body).__name__})"
    return name


def _snapshot_breakdown(data_dir: Path, model: str) -> dict[str, Any]:
    """What ``recover`` does from a snapshot, step by step: decoding the snapshot (which
    rebuilds the book and checks its state hash), then replaying the tail onto it."""
    with _collector_paused():
        return _snapshot_breakdown_steps(data_dir, model)


def _snapshot_breakdown_steps(data_dir: Path, model: str) -> dict[str, Any]:
    book = _engine(model, None).new_book()
    store = DataStore(data_dir, fsync="none")
    try:
        found = latest_snapshot(store.snapshot_dir)
        assert found is not None, "the snapshot case has a snapshot"
        snap_seq, payload, _path = found
        t0 = time.perf_counter()
        codec.decode_snapshot(payload, book)
        decode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        codec.payload_hash(payload)  # the check decode_snapshot made, once more on its own
        hash_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        events = (codec.decode_event_checked(*r) for r in store.journal.records(snap_seq + 1))
        done = replay(book, events, after_seq=snap_seq)
        tail_s = time.perf_counter() - t0
    finally:
        store.close()
    t0 = time.perf_counter()
    state = codec.state_hash(book)  # what recover reports after a tail
    book_hash_s = time.perf_counter() - t0
    del book
    gc.collect()
    return {
        "snapshot_bytes": len(payload),
        "snapshot_decode_s": decode_s,
        "state_hash_check_s": hash_s,
        "book_state_hash_s": book_hash_s,
        "tail_events": done.events,
        "tail_s": tail_s,
        "tail_events_per_s": done.events / tail_s if tail_s > 0 else None,
        "state_hash": state,
    }


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def replay_bench(root: Path, model: str, repeats: int, expect_hash: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in ("journal", "snapshot", "clean"):
        sub = CASE_DIRS[case]
        runs = [_replay_once(root / sub, model) for _ in range(repeats)]
        if case == "journal":
            parts: dict[str, Any] | None = _journal_breakdown(root / sub, model)
        elif case == "snapshot":
            parts = _snapshot_breakdown(root / sub, model)
        else:
            parts = None
        for r in [*runs, *([parts] if parts else [])]:
            if r["state_hash"] != expect_hash:
                raise BenchError(
                    f"{CASE_NAMES[case]}: recovered state {r['state_hash']} is not the "
                    f"journaling engine's {expect_hash}"
                )
        recover_s, total_s = _median(runs, "recover_s"), _median(runs, "total_s")
        events = runs[0]["events_replayed"]
        out[case] = {
            "runs": runs,
            "events_replayed": events,
            "open_s": _median(runs, "open_s"),
            "recover_s": recover_s,
            "recovery_seconds": _median(runs, "recovery_seconds"),
            "total_s": total_s,
            "events_per_s_recover": events / recover_s if recover_s else None,
            "events_per_s_total": events / total_s if total_s else None,
            "breakdown": parts,
        }
    return out


# ------------------------------------------------------------------ as a service


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    os.sync()


def _log_events(log: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and rec.get("event") in ("listening", "recovered", "serving"):
                found.setdefault(rec["event"], rec)
    return found


def _wall(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def restart_once(
    data_dir: Path, model: str, log: Path, timeout_s: float, poll_s: float = 0.05
) -> dict[str, Any]:
    """``riskgate serve --data-dir data_dir --no-demo``: seconds from process start to
    health SERVING, what its log says of the parts, and the seconds a SIGTERM takes.

    The service sets health SERVING and logs ``serving`` in the same breath; the time is
    that line's timestamp, found by reading the log, then checked with one health call.
    Polling the health service instead would put calls on the service's threads while it
    recovers (their GIL hand-offs slowed the recovery they were timing)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = _free_port()
    address = f"127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "riskgate.cli", "serve", "--listen", address, "--no-demo",
           "--model", model, "--data-dir", str(data_dir)]  # fmt: skip
    env = {**os.environ, "RISKGATE_LOG_FORMAT": "json", "RISKGATE_LOG_LEVEL": "info"}
    with log.open("wb") as out:
        wall0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while "serving" not in _log_events(log):
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace").splitlines()[-10:]
                    raise BenchError(
                        f"riskgate serve exited with {proc.returncode} before SERVING:\n"
                        + "\n".join(tail)
                    )
                if time.perf_counter() - t0 > timeout_s:
                    raise BenchError(f"riskgate serve not SERVING after {timeout_s:.0f} s")
                time.sleep(poll_s)
            seen_s = time.perf_counter() - t0
            with grpc.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                resp = stub.Check(health_pb2.HealthCheckRequest(service=_SERVICE), timeout=10.0)
            if resp.status != health_pb2.HealthCheckResponse.SERVING:
                raise BenchError(f"logged serving, but health says {resp.status}")
            s0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
            stop_s = time.perf_counter() - s0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    seen = _log_events(log)
    rec = seen.get("recovered", {})
    stamp = seen["serving"].get("timestamp")
    res: dict[str, Any] = {
        "serving_s": _wall(stamp) - wall0 if stamp else seen_s,
        "seen_s": seen_s,  # when the benchmark read the line (up to poll_s later)
        "exit_code": code,
        "stop_s": stop_s,
        "recovery_s": rec.get("seconds"),
        "events_replayed": rec.get("events_replayed"),
        "accounts": rec.get("accounts"),
        "state_hash": rec.get("state_hash"),
        "warm_up_s": seen["serving"].get("warm_up_s"),
    }
    if "listening" in seen and seen["listening"].get("timestamp"):
        res["listening_s"] = _wall(seen["listening"]["timestamp"]) - wall0
    return res


def restarts(
    root: Path, model: str, n: int, timeout_s: float, expect: dict[str, str], warm_starts: int = 1
) -> dict[str, Any]:
    sources = {"empty": None, **{case: root / sub for case, sub in CASE_DIRS.items()}}
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    # starts first, not timed: numba's on-disk cache and the bytecode caches warm, as on a
    # machine that has run the service before
    for w in range(warm_starts):
        scratch = root / f"run-warm-{w}"
        restart_once(scratch, model, logs / f"warm-{w}.log", timeout_s)
        shutil.rmtree(scratch)
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CASES}
    for r in range(n):
        order = CASES[r % len(CASES) :] + CASES[: r % len(CASES)]  # each case first in turn
        for case in order:
            run_dir = root / f"run-{case}-{r}"
            src = sources[case]
            if src is None:
                run_dir.mkdir()
            else:
                shutil.copytree(src, run_dir, ignore=shutil.ignore_patterns("LOCK"))
            _fsync_tree(run_dir)
            res = restart_once(run_dir, model, logs / f"{case}-{r}.log", timeout_s)
            shutil.rmtree(run_dir)
            want = expect.get(case)
            if want is not None and res["state_hash"] != want:
                raise BenchError(
                    f"restart ({CASE_NAMES[case]}): recovered state {res['state_hash']} is not "
                    f"the journaling engine's {want}"
                )
            runs[case].append(res)
    out: dict[str, Any] = {}
    for case, rows in runs.items():
        serving = [x["serving_s"] for x in rows]
        out[case] = {
            "runs": rows,
            "serving_s": {
                "median": float(np.median(serving)),
                "min": float(min(serving)),
                "max": float(max(serving)),
            },
            "recovery_s_median": _opt_median([x["recovery_s"] for x in rows]),
            "warm_up_s_median": _opt_median([x["warm_up_s"] for x in rows]),
            "listening_s_median": _opt_median([x.get("listening_s") for x in rows]),
            "stop_s_median": float(np.median([x["stop_s"] for x in rows])),
        }
    return out


def _opt_median(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


# ------------------------------------------------------------------ command


def run(
    *,
    accounts: int,
    legs: int,
    events: int,
    tail: int,
    model: str,
    seed: int,
    repeats: int,
    restart_count: int,
    data_dir: str | None,
    timeout_s: float = 180.0,
    warm_starts: int = 1,
) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with tempfile.TemporaryDirectory(prefix="riskgate-bench-recovery-", dir=data_dir) as tmp:
        root = Path(tmp)
        built = build(
            root, accounts=accounts, legs=legs, events=events, tail=tail, model=model, seed=seed
        )
        gc.collect()
        results: dict[str, Any] = {
            "build": built,
            "repeats": repeats,
            "restarts": restart_count,
            "warm_starts": warm_starts,
        }
        results["replay"] = replay_bench(root, model, repeats, built["state_hash"])
        results["snapshot_pause"] = pause_bench(root / CASE_DIRS["clean"], model, repeats)
        if restart_count:
            expect = dict.fromkeys(CASE_DIRS, built["state_hash"])
            results["restart"] = restarts(
                root, model, restart_count, timeout_s, expect, warm_starts
            )
    return results


def render(results: dict[str, Any]) -> str:
    b = results["build"]
    flow = b["order_flow"]
    sn = b["snapshot"]
    lines = [
        f"riskgate bench-recovery · {b['accounts']:,} accounts × {b['legs']} legs "
        f"({b['instruments']:,} instruments, {b['model']}), {b['events']:,} events "
        f"({b['setup_events']:,} set-up, then {flow['orders']:,} orders: {flow['accepted']:,} "
        f"accepted, {flow['acknowledged']:,} acknowledged, {flow['filled']:,} filled, "
        f"{flow['cancelled']:,} cancelled), built in {b['build_s']:.1f} s",
        f"journal: {b['journal']['segments']} segment(s), {b['journal']['bytes'] / 2**20:.1f} "
        f"MiB; snapshot at event {sn['seq']:,}: {sn['bytes'] / 2**20:.1f} MiB, "
        f"{sn['tail_events']:,} events after it, {sn['journal_segments_kept']} segment(s) "
        f"kept ({sn['journal_bytes_kept'] / 2**20:.1f} MiB)",
        "",
        f"in process, median of {results['repeats']}: open (every segment read and checked), "
        "recover (snapshot, then replay, then the state hash it reports)",
        f"{'':<18}{'events':>10}{'open':>9}{'recover':>10}{'total':>9}"
        f"{'events/s (recover)':>21}{'(open + recover)':>18}",
    ]
    for case, r in results["replay"].items():
        # from a snapshot the time is mostly the snapshot's: its events/s are the tail's own,
        # below
        per_s = case == "journal"
        lines.append(
            f"{CASE_NAMES[case]:<18}{r['events_replayed']:>10,}{r['open_s']:>7.2f} s"
            f"{r['recover_s']:>8.2f} s{r['total_s']:>7.2f} s"
            f"{_rate(r['events_per_s_recover'] if per_s else None):>21}"
            f"{_rate(r['events_per_s_total'] if per_s else None):>18}"
        )
    jb = results["replay"]["journal"]["breakdown"]
    n = jb["events"]
    lines += [
        "",
        f"where the journal-only replay goes (one pass timed per record): reading "
        f"{jb['read_s']:.2f} s ({jb['read_s'] / n * 1e6:.1f} µs/event), decoding "
        f"{jb['decode_s']:.2f} s ({jb['decode_s'] / n * 1e6:.1f} µs), applying "
        f"{jb['apply_s']:.2f} s ({jb['apply_s'] / n * 1e6:.1f} µs)",
        f"  {'event':<28}{'count':>9}{'decode µs':>11}{'apply µs':>10}",
    ]
    for name, k in jb["by_type"].items():
        lines.append(f"  {name:<28}{k['count']:>9,}{k['decode_us']:>11.1f}{k['apply_us']:>10.1f}")
    sb = results["replay"]["snapshot"]["breakdown"]
    lines.append(
        f"snapshot + tail, step by step: snapshot decode {sb['snapshot_decode_s']:.2f} s (of "
        f"which ≈ {sb['state_hash_check_s']:.2f} s its state-hash check), tail of "
        f"{sb['tail_events']:,} events {sb['tail_s']:.2f} s "
        f"({_rate(sb['tail_events_per_s'])} events/s), the book's state hash after it "
        f"{sb.get('book_state_hash_s', float('nan')):.2f} s"
    )
    sp = results.get("snapshot_pause")
    if sp:
        lines += ["", *render_pause(sp)]
    rs = results.get("restart")
    if rs:
        lines += [
            "",
            f"restart: riskgate serve --data-dir DIR --no-demo, process start -> health SERVING "
            f"({results['restarts']} of each, interleaved, after {results['warm_starts']} "
            "untimed start(s))",
            f"{'':<18}{'median':>9}{'min':>9}{'max':>9}{'listening':>11}{'recovery':>10}"
            f"{'warm-up':>9}{'SIGTERM -> exit':>17}",
        ]
        for case, r in rs.items():
            sv = r["serving_s"]
            lines.append(
                f"{CASE_NAMES[case]:<18}{sv['median']:>7.2f} s{sv['min']:>7.2f} s"
                f"{sv['max']:>7.2f} s{_sec(r['listening_s_median']):>11}"
                f"{_sec(r['recovery_s_median']):>10}{_sec(r['warm_up_s_median']):>9}"
                f"{_sec(r['stop_s_median']):>17}"
            )
    lines += [
        "",
        "targets: replay >= 200,000 events/s; a restart with 10,000 accounts SERVING in <= 5 s",
    ]
    return "\n".join(lines)


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _sec(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def main(args: argparse.Namespace) -> int:
    results = run(
        accounts=args.accounts,
        legs=args.legs,
        events=args.events,
        tail=args.tail,
        model=args.model,
        seed=args.seed,
        repeats=args.repeats,
        restart_count=args.restarts,
        data_dir=args.data_dir,
        timeout_s=args.startup_timeout,
        warm_starts=args.warm_starts,
    )
    return emit(results, render(results), args.json)
