"""``python -m loadtest``: the riskgate load test, with the no-op baseline in the same run.

See ``python -m loadtest --help`` and docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import pstats
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest import report, servers
from loadtest.baseline import DEFAULT_WORKERS
from loadtest.driver import DriverConfig
from loadtest.prepare import SetupError, run_setup
from loadtest.runner import HarnessError, run_phase
from loadtest.workload import (
    OrderSpec,
    WorkloadSpec,
    account_ids,
    build_market,
    full_snapshot_request,
    instrument_quotes,
    plan_accounts,
)
from riskgate.config import MODEL_NAMES

__all__ = ["build_parser", "main", "run"]

SCHEMA = "riskgate-loadtest/1"
EXIT_FAILED = 1
EXIT_USAGE = 2

EPILOG = """\
what it does:
  1. starts riskgate (python -m riskgate.cli serve --listen 127.0.0.1:PORT --no-demo
     --model M) and the no-op baseline (python -m loadtest.baseline) on free 127.0.0.1
     ports and waits for gRPC health SERVING -- or uses --target / --baseline-target;
  2. set-up over gRPC on each target: UpdateMarket (full demo snapshot), UpsertAccount
     (cross pool, ample USD collateral) and SetPositions (--legs random legs) for
     --accounts accounts; --tight-fraction of them get their collateral cut to just above
     their margin so some orders are rejected;
  3. drives the baseline, then riskgate, with the same generator and the same messages:
     open loop (latency from each request's intended send time: no coordinated omission)
     or closed loop (--concurrency calls in flight), over --processes client processes;
  4. prints the report, writes result.json and latency.png (under --out), stops the
     servers it started.

examples:
  python -m loadtest --mode closed --concurrency 64 --legs 100            # saturation
  python -m loadtest --mode open --rate-from-baseline 0.5 --legs 100      # p99 at 50 %
  python -m loadtest --mode closed --batch 100 --concurrency 8            # batch decisions/s
  python -m loadtest --accounts 10000 --market-updates-per-s 10 --compare-no-updates
  python -m loadtest --target risk.internal:50051 --no-baseline --rate 500
  python -m loadtest --mode closed --concurrency 64 --compare-journal batch --rounds 2
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Load test for the riskgate gRPC service, with a no-op baseline server "
        "driven by the same generator and messages in the same run (riskgate ÷ baseline).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("targets")
    g.add_argument(
        "--spawn",
        action="store_true",
        help="start riskgate and the baseline as subprocesses on free 127.0.0.1 ports and "
        "stop them at the end (the default unless --target is given)",
    )
    g.add_argument(
        "--target",
        type=_address,
        metavar="HOST:PORT",
        help="drive an already running riskgate (e.g. your deployment) instead of starting "
        "one; the set-up phase writes accounts named --account-prefix... into it",
    )
    g.add_argument(
        "--baseline-target",
        type=_address,
        metavar="HOST:PORT",
        help="an already running baseline (python -m loadtest.baseline); default: start one "
        "on 127.0.0.1 (with --target, a local baseline only compares like with like if the "
        "target runs on this machine)",
    )
    g.add_argument("--no-baseline", action="store_true", help="do not drive a baseline")
    g.add_argument(
        "--model",
        choices=MODEL_NAMES,
        default="deribit",
        help="margin model of the riskgate server started by the harness (default deribit)",
    )
    g.add_argument(
        "--stress",
        metavar="FILE",
        help="stress scenarios (TOML or .csv) of the riskgate server started by the harness",
    )
    g.add_argument(
        "--server-workers",
        type=_positive_int,
        default=DEFAULT_WORKERS,
        help="gRPC thread-pool size for unary calls of both started servers "
        f"(RISKGATE_GRPC_WORKERS; default: riskgate's default, {DEFAULT_WORKERS})",
    )
    g.add_argument(
        "--server-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the started riskgate, e.g. RISKGATE_LOG_LEVEL=warning "
        "(repeatable)",
    )
    g.add_argument(
        "--startup-timeout",
        type=_positive_float,
        default=180.0,
        metavar="S",
        help="seconds to wait for health SERVING (first start compiles numba kernels) "
        "(default 180)",
    )
    g.add_argument(
        "--journal",
        choices=["off", "batch", "always", "none"],
        default="off",
        help="the started riskgate journals every state change into a data directory under "
        "--out (riskgate serve --data-dir DIR --fsync POLICY); off: in memory (default)",
    )
    g.add_argument(
        "--compare-journal",
        choices=["batch", "always", "none"],
        metavar="POLICY",
        help="also start a second riskgate journaling with fsync POLICY (batch, always, "
        "none) and drive it in the same run, after the first; the report gives journal ÷ "
        "in memory",
    )
    g.add_argument(
        "--rounds",
        type=_positive_int,
        default=1,
        help="with --compare-journal: measure both riskgate servers this many times, "
        "alternating which goes first (ABBA), and report each round's ratio and their "
        "median (default 1)",
    )
    g.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the data directories of journaling servers under --out (default: removed "
        "at the end, their size reported)",
    )
    g.add_argument(
        "--profile",
        action="store_true",
        help="run the started riskgate under cProfile (all threads) and summarise the top "
        "functions in the report (slows riskgate down: do not compare its numbers)",
    )
    g.add_argument(
        "--profile-clock",
        choices=["cpu", "wall", "none"],
        default="cpu",
        help="with --profile: cpu = each thread's CPU time (where the work is), wall = "
        "elapsed time (lock, queue and network waits included), none = no profiler, only "
        "the garbage collector's pauses (no slow-down) (default cpu)",
    )

    g = p.add_argument_group("load")
    g.add_argument(
        "--mode",
        choices=["open", "closed"],
        default="open",
        help="open: requests at --rate, latency from the intended send time; closed: "
        "--concurrency calls in flight, for maximum throughput (default open)",
    )
    g.add_argument(
        "--rate",
        type=_positive_float,
        default=200.0,
        metavar="CALLS_PER_S",
        help="open loop: total calls per second over all processes (default 200); a call "
        "is one CheckOrder or one CheckOrders batch",
    )
    g.add_argument(
        "--rate-from-baseline",
        type=_positive_float,
        metavar="F",
        help="open loop: first find the baseline's maximum throughput (closed loop, "
        "--concurrency in flight, same duration), then drive both targets at F times it",
    )
    g.add_argument(
        "--arrival",
        choices=["constant", "poisson"],
        default="constant",
        help="open loop: constant gaps or Poisson arrivals (default constant)",
    )
    g.add_argument(
        "--concurrency",
        type=_positive_int,
        default=64,
        help="closed loop: calls in flight over all processes (default 64)",
    )
    g.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        help="client processes, each driving rate / P (or concurrency / P); their HDR "
        "histograms are merged (default 1)",
    )
    g.add_argument(
        "--channels",
        type=_positive_int,
        default=1,
        help="gRPC channels (connections) per client process (default 1)",
    )
    g.add_argument(
        "--batch",
        type=_positive_int,
        metavar="B",
        help="send CheckOrders with B orders per call instead of unary CheckOrder; the "
        "report gives decisions/s as well as calls/s",
    )
    g.add_argument(
        "--duration",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="measured seconds (default 10)",
    )
    g.add_argument(
        "--warmup",
        type=_non_negative_float,
        default=2.0,
        metavar="S",
        help="seconds of load before the measurement window, not recorded (default 2)",
    )
    g.add_argument(
        "--deadline-ms",
        type=_positive_float,
        default=5000.0,
        help="gRPC deadline of each order call (default 5000)",
    )
    g.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=20_000,
        help="open loop: outstanding calls per process above which the sender waits (the "
        "wait still counts in latency) (default 20000)",
    )

    g = p.add_argument_group("workload")
    g.add_argument("--accounts", type=_positive_int, default=100, help="accounts (default 100)")
    g.add_argument(
        "--legs", type=_positive_int, default=100, help="positions per account (default 100)"
    )
    g.add_argument(
        "--hotspot",
        type=_fraction,
        metavar="F",
        help="send this share of orders to the --hot-fraction hottest accounts (e.g. 0.8); "
        "default: accounts chosen uniformly",
    )
    g.add_argument(
        "--hot-fraction",
        type=_fraction,
        default=0.2,
        help="share of accounts that are hot with --hotspot (default 0.2)",
    )
    g.add_argument(
        "--tight-fraction",
        type=_fraction,
        default=0.1,
        help="share of accounts left with little excess margin, so risk-increasing orders "
        "on them are rejected (default 0.1)",
    )
    g.add_argument(
        "--collateral-usd",
        type=_positive_float,
        default=100_000_000.0,
        help="USD collateral of every account (default 1e8: ample)",
    )
    g.add_argument(
        "--order-type",
        choices=["limit", "market"],
        default="limit",
        help="limit: price within 0.2 %% of the fair value (mark; Black-76 for options) on "
        "the passive side; market: no price (default limit)",
    )
    g.add_argument(
        "--qty-max",
        type=_positive_float,
        default=1.0,
        help="order sizes 0.1 .. this, in steps of 0.1 coin (default 1.0)",
    )
    g.add_argument(
        "--market-updates-per-s",
        type=_non_negative_float,
        default=0.0,
        metavar="R",
        help="send partial UpdateMarket calls (small index/IV moves) at R per second during "
        "each phase, one at a time: a slower update delays the next and missed slots are "
        "skipped (conflation); the report gives the achieved rate (default 0: none)",
    )
    g.add_argument(
        "--compare-no-updates",
        action="store_true",
        help="with --market-updates-per-s: also measure riskgate without updates in the "
        "same run and report the p99.9 difference",
    )
    g.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    g.add_argument(
        "--account-prefix",
        default="lt-acct-",
        help="account ids are PREFIX00000, PREFIX00001, ... (default lt-acct-)",
    )
    g.add_argument(
        "--no-setup",
        action="store_true",
        help="skip the set-up phase (the target already holds the market and the accounts "
        "of an earlier run with the same --accounts, --account-prefix and --seed)",
    )
    g.add_argument(
        "--setup-concurrency",
        type=_positive_int,
        default=32,
        help="set-up calls in flight (default 32)",
    )

    g = p.add_argument_group("output")
    g.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="directory for result.json, latency.png, server logs and profiles (default "
        "loadtest-results/<UTC time>)",
    )
    g.add_argument(
        "--json", type=Path, metavar="FILE", help="JSON result (default DIR/result.json)"
    )
    g.add_argument("--png", type=Path, metavar="FILE", help="plot (default DIR/latency.png)")
    g.add_argument(
        "--no-progress", action="store_true", help="no progress bar (default: on a terminal)"
    )
    g.add_argument("--quiet", action="store_true", help="do not print the report")
    return p


def _validate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.target and args.spawn:
        p.error("--spawn and --target are exclusive")
    if args.baseline_target and args.no_baseline:
        p.error("--baseline-target and --no-baseline are exclusive")
    if args.rate_from_baseline and args.no_baseline:
        p.error("--rate-from-baseline needs a baseline")
    if args.rate_from_baseline and args.mode != "open":
        p.error("--rate-from-baseline is for --mode open")
    if args.compare_no_updates and not args.market_updates_per_s:
        p.error("--compare-no-updates needs --market-updates-per-s")
    if args.profile and args.target:
        p.error("--profile profiles a riskgate the harness starts (not with --target)")
    if args.target and (args.journal != "off" or args.compare_journal):
        p.error("--journal and --compare-journal configure a riskgate the harness starts")
    if args.rounds > 1 and not args.compare_journal:
        p.error("--rounds needs --compare-journal")


def _source_version() -> dict[str, Any]:
    """The riskgate checkout the harness runs from (and spawns): commit and whether
    ``riskgate/`` or ``protos/`` differ from it. Read-only git calls; None without git."""
    root = Path(__file__).resolve().parents[1]
    git = ["git", "--no-optional-locks", "-C", str(root)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "diff", "--quiet", "HEAD", "--", "riskgate", "protos"],
            capture_output=True,
            timeout=10,
            check=False,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty != 0}


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "loadavg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


_COMPONENTS = (
    # (component, substring of the function's file) -- first match wins
    ("riskgate.engine", "/riskgate/engine/"),
    ("riskgate.kernels (numba, compiled)", "/riskgate/kernels/"),
    ("riskgate.models", "/riskgate/models/"),
    ("riskgate.domain", "/riskgate/domain/"),
    ("riskgate.server (servicer, conversion, logging)", "/riskgate/server/"),
    ("structlog", "/structlog/"),
    ("grpc (Python server layer)", "/grpc/"),
    ("threading / queue / concurrent.futures", "/threading.py"),
    ("threading / queue / concurrent.futures", "/concurrent/futures/"),
    ("threading / queue / concurrent.futures", "/queue.py"),
)


def _component(file: str, func: str) -> str:
    for name, needle in _COMPONENTS:
        if needle in file:
            return name
    if file == "~":  # C functions: builtins, locks, protobuf (upb) methods...
        if "lock" in func or "SimpleQueue" in func or "RLock" in func:
            return "threading / queue / concurrent.futures"
        return "C builtins (any, dict.get, protobuf, numpy...)"
    return "other Python"


def _profile_top(path: Path, top: int = 25) -> dict[str, Any]:
    """The top functions by own time and the own time summed per component."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_component: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        key = _component(file, func)
        by_component[key] = by_component.get(key, 0.0) + tt
    for (file, line, func), (_cc, nc, tt, ct, _callers) in sorted(
        raw.items(), key=lambda kv: -kv[1][2]
    )[:top]:
        rows.append({
            "function": f"{Path(file).name}:{line}({func})",
            "ncalls": nc,
            "tottime_s": round(tt, 4),
            "cumtime_s": round(ct, 4),
            "share_of_total": round(tt / total, 4) if total else None,
        })  # fmt: skip
    components = {
        k: {"tottime_s": round(v, 3), "share": round(v / total, 4) if total else None}
        for k, v in sorted(by_component.items(), key=lambda kv: -kv[1])
    }
    return {"total_s": round(total, 3), "by_component": components, "top_by_tottime": rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole load test described by ``args``; returns the JSON result (also
    written to disk, with the PNG)."""
    started = datetime.now(UTC)
    out_dir: Path = args.out or Path("loadtest-results") / started.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path: Path = args.json or out_dir / "result.json"
    png_path: Path = args.png or out_dir / "latency.png"
    spawn_riskgate = args.target is None
    use_baseline = not args.no_baseline
    spawn_baseline = use_baseline and args.baseline_target is None
    batch = args.batch or 1
    rpc = "batch" if args.batch else "unary"
    progress = False if args.no_progress else None

    spec = WorkloadSpec(
        accounts=args.accounts,
        legs=args.legs,
        seed=args.seed,
        collateral_usd=args.collateral_usd,
        tight_fraction=args.tight_fraction,
        account_prefix=args.account_prefix,
    )
    market = build_market(spec)
    quotes = instrument_quotes(market)
    run_tag = secrets.token_hex(3)
    order_spec = OrderSpec(
        account_ids=tuple(account_ids(spec)),
        instruments=tuple(quotes),
        hotspot=args.hotspot,
        hot_fraction=args.hot_fraction,
        qty_max=max(args.qty_max, 0.1),
        order_type=args.order_type,
        id_prefix=run_tag,
    )
    config = {
        "mode": args.mode,
        "rpc": rpc,
        "batch": batch,
        "model": args.model,
        "accounts": args.accounts,
        "legs": args.legs,
        "hotspot": args.hotspot,
        "hot_fraction": args.hot_fraction if args.hotspot is not None else None,
        "tight_fraction": args.tight_fraction,
        "collateral_usd": args.collateral_usd,
        "order_type": args.order_type,
        "qty_max": args.qty_max,
        "processes": args.processes,
        "channels": args.channels,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "rate_from_baseline": args.rate_from_baseline,
        "arrival": args.arrival,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "deadline_ms": args.deadline_ms,
        "market_updates_per_s": args.market_updates_per_s,
        "compare_no_updates": args.compare_no_updates,
        "seed": args.seed,
        "server_workers": args.server_workers,
        "instruments": len(quotes),
        "spawned": spawn_riskgate,
        "profile": args.profile,
        "journal": args.journal,
        "compare_journal": args.compare_journal,
        "rounds": args.rounds,
    }
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "command": "python -m loadtest "
        + shlex.join(sys.argv[1:] if args._argv is None else args._argv),
        "started_at": started.isoformat(),
        "machine": _machine(),
        "riskgate_source": _source_version(),
        "config": config,
        "servers": {},
        "setup": {},
        "calibration": None,
        "phases": {},
        "ratios": None,
        "market_update_impact": None,
        "journal_impact": None,
        "profile": None,
        "files": {},
    }
    started_servers: list[servers.SpawnedServer] = []
    profile_path = out_dir / "riskgate-server.prof" if args.profile else None
    data_dirs: dict[str, Path] = {}
    try:
        # ---- servers ---------------------------------------------------------------------
        targets: dict[str, str] = {}
        if spawn_riskgate:
            env = {"RISKGATE_GRPC_WORKERS": str(args.server_workers), **dict(args.server_env)}
            journals = [("riskgate", None if args.journal == "off" else args.journal)]
            if args.compare_journal:
                journals.append(("riskgate-journal", args.compare_journal))
            for name, fsync in journals:
                port = servers.free_port()
                data_dir = None
                if fsync is not None:
                    data_dir = data_dirs[name] = out_dir / f"{name}-data"
                    if data_dir.exists():
                        raise HarnessError(f"{data_dir} exists: a data directory of an earlier run")
                cmd = servers.riskgate_command(
                    port, args.model, profile_path if name == "riskgate" else None,
                    args.profile_clock, data_dir, fsync, args.stress,
                )  # fmt: skip
                started_servers.append(servers.spawn(name, cmd, port, out_dir, env))
        if spawn_baseline:
            port = servers.free_port()
            cmd = servers.baseline_command(port, args.server_workers)
            started_servers.append(servers.spawn("baseline", cmd, port, out_dir))
        spawned = {srv.name: srv for srv in started_servers}
        for srv in started_servers:
            waited = servers.wait_serving(srv.address, args.startup_timeout, srv)
            targets[srv.name] = srv.address
            result["servers"][srv.name] = {
                "address": srv.address,
                "spawned": True,
                "command": shlex.join(srv.command),
                "log": str(srv.log_path),
                "ready_after_s": round(waited, 2),
            }
        if args.target:
            servers.wait_serving(args.target, 30.0)
            targets["riskgate"] = args.target
            result["servers"]["riskgate"] = {"address": args.target, "spawned": False}
        if args.baseline_target:
            servers.wait_serving(args.baseline_target, 30.0)
            targets["baseline"] = args.baseline_target
            result["servers"]["baseline"] = {"address": args.baseline_target, "spawned": False}

        # ---- set-up (riskgate first: it decides the tight accounts' collateral) -----------
        if not args.no_setup:
            market_req = full_snapshot_request(market.snapshot)
            plan = plan_accounts(spec, market)
            for name in ("riskgate", "riskgate-journal", "baseline"):
                if name in targets:
                    _say(
                        args, f"set-up {name}: market, {args.accounts} accounts x {args.legs} legs"
                    )
                    result["setup"][name] = run_setup(
                        targets[name], market_req, plan, spec, args.setup_concurrency
                    )

        base = DriverConfig(
            address="",
            orders=order_spec,
            mode=args.mode,
            rpc=rpc,
            batch=batch,
            rate=args.rate,
            arrival=args.arrival,
            concurrency=args.concurrency,
            warmup_s=args.warmup,
            duration_s=args.duration,
            deadline_s=args.deadline_ms / 1000.0,
            max_in_flight=args.max_in_flight,
            channels=args.channels,
            seed=args.seed,
        )

        def phase(
            label: str, target: str, cfg: DriverConfig, updates: float, id_suffix: str
        ) -> dict[str, Any]:
            cfg = dataclasses.replace(
                cfg,
                address=targets[target],
                orders=dataclasses.replace(order_spec, id_prefix=run_tag + id_suffix),
            )
            _say(args, f"{label}: {cfg.mode} loop against {cfg.address}")
            srv = spawned.get(target)
            on_window = None
            if srv is not None and target == "riskgate" and args.profile:
                # the profiled server snapshots its profile at each edge of the window
                def on_window(edge: str, srv: servers.SpawnedServer = srv) -> None:
                    srv.signal(signal.SIGUSR1 if edge == "start" else signal.SIGUSR2)

            res = run_phase(
                label,
                cfg,
                args.processes,
                market_snapshot=market.snapshot,
                market_updates_per_s=updates,
                progress=progress,
                server_cpu=srv.cpu_seconds if srv is not None else None,
                on_window=on_window,
            )
            res["target"] = target
            return res

        # ---- calibration: the baseline's maximum rate --------------------------------------
        rate = args.rate
        if args.rate_from_baseline:
            cal = phase(
                "calibration (baseline, closed loop)",
                "baseline",
                dataclasses.replace(base, mode="closed"),
                args.market_updates_per_s,
                "c",
            )
            max_rate = cal["throughput"]["calls_per_s"]
            rate = args.rate_from_baseline * max_rate
            result["calibration"] = {
                "baseline_max_calls_per_s": max_rate,
                "fraction": args.rate_from_baseline,
                "rate_calls_per_s": rate,
                "concurrency": args.concurrency,
                "latency_us": cal["latency_us"],
            }
            _say(args, f"baseline max {max_rate:.0f} calls/s -> open loop at {rate:.0f} calls/s")
        base = dataclasses.replace(base, rate=rate)
        result["rate_calls_per_s"] = rate if args.mode == "open" else None

        # ---- measurement: the baseline, then riskgate, same messages ----------------------
        if use_baseline:
            result["phases"]["baseline"] = phase(
                "baseline", "baseline", base, args.market_updates_per_s, "m"
            )
        if args.compare_no_updates:
            result["phases"]["riskgate-no-updates"] = phase(
                "riskgate-no-updates", "riskgate", base, 0.0, "n"
            )
        if args.compare_journal:
            pairs = []
            for r in range(args.rounds):
                tag = "" if r == 0 else f"-{r + 1}"
                pair = ["riskgate", "riskgate-journal"]
                for target in pair if r % 2 == 0 else pair[::-1]:  # ABBA
                    result["phases"][target + tag] = phase(
                        target + tag, target, base, args.market_updates_per_s, f"m{tag}"
                    )
                pairs.append((f"riskgate{tag}", f"riskgate-journal{tag}"))
            result["journal_impact"] = report.journal_impact(
                result["phases"], pairs, args.compare_journal
            )
        else:
            result["phases"]["riskgate"] = phase(
                "riskgate", "riskgate", base, args.market_updates_per_s, "m"
            )
        phases = result["phases"]
        if "baseline" in phases:
            result["ratios"] = report.ratios(phases["riskgate"], phases["baseline"])
        if "riskgate-no-updates" in phases:
            with_u, without = (
                phases["riskgate"]["latency_us"],
                phases["riskgate-no-updates"]["latency_us"],
            )
            result["market_update_impact"] = {
                "p99_9_with_updates_ms": with_u["p99.9"] / 1e3,
                "p99_9_without_updates_ms": without["p99.9"] / 1e3,
                "p99_9_rise_ms": (with_u["p99.9"] - without["p99.9"]) / 1e3,
                "p99_rise_ms": (with_u["p99"] - without["p99"]) / 1e3,
            }
    finally:
        for srv in reversed(started_servers):
            code = srv.stop()
            if srv.name in result["servers"]:
                result["servers"][srv.name]["exit_code"] = code
        for name, path in data_dirs.items():
            if name in result["servers"]:
                result["servers"][name]["data_dir"] = _data_dir_summary(path, args.keep_data)
            if not args.keep_data:
                shutil.rmtree(path, ignore_errors=True)
    if profile_path is not None and profile_path.with_suffix(".txt").exists():
        result["profile"] = {
            "clock": args.profile_clock,
            "summary": str(profile_path.with_suffix(".txt")),
        }
    if profile_path is not None and profile_path.exists():
        window = profile_path.with_suffix(".window.prof")
        chosen = window if window.exists() else profile_path
        result["profile"] = {
            "clock": args.profile_clock,
            "scope": "measurement windows" if window.exists() else "whole server run",
            "pstats": str(chosen),
            "summary": str(chosen.with_suffix(".txt")),
            "pstats_whole_run": str(profile_path),
            **_profile_top(chosen),
        }
    result["finished_at"] = datetime.now(UTC).isoformat()
    result["files"] = {"json": str(json_path), "png": str(png_path)}
    report.plot(result, png_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    return result


def _data_dir_summary(path: Path, kept: bool) -> dict[str, Any]:
    """What a journaling server left in its data directory (sizes; where, if kept)."""
    sizes: dict[str, int] = {}
    for sub in ("journal", "snapshots"):
        d = path / sub
        sizes[f"{sub}_bytes"] = sum(f.stat().st_size for f in d.iterdir()) if d.is_dir() else 0
    return {"path": str(path) if kept else None, "kept": kept, **sizes}


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"[loadtest {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(argv) if argv is not None else None
    _validate(parser, args)
    try:
        result = run(args)
    except (servers.ServerError, SetupError, HarnessError) as exc:
        print(f"loadtest: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("loadtest: interrupted", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        print(report.render_text(result))
    return 0
