"""The crash test's report: a dict (``--json``) and its text table (see :mod:`loadtest.chaos`)."""

from __future__ import annotations

import argparse
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.chaos_model import ACCOUNT_PLANS, Findings
from riskgate.engine.journal.file import JournalError, scan_journal
from riskgate.engine.journal.snapshots import list_snapshots

__all__ = ["SCHEMA", "build", "render"]

SCHEMA = "riskgate-chaos/1"
MAX_DETAILS = 50  # findings listed in the report (all are counted)


def _dist(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "min": None, "median": None, "p95": None, "max": None}
    a = np.asarray(values, dtype=float)
    return {
        "count": int(a.size),
        "min": float(a.min()),
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def _data_dir(data_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(data_dir)}
    files = [f for f in data_dir.rglob("*") if f.is_file()] if data_dir.is_dir() else []
    out["bytes"] = sum(f.stat().st_size for f in files)
    try:
        scan = scan_journal(data_dir / "journal")
    except JournalError as exc:
        out["journal"] = {"error": str(exc)}
    else:
        out["journal"] = {
            "records": scan.n_records, "first_seq": scan.first_seq, "last_seq": scan.last_seq,
            "segments": len(scan.segments), "torn_tail_bytes": scan.torn_tail_bytes,
        }  # fmt: skip
    snaps = list_snapshots(data_dir / "snapshots") if (data_dir / "snapshots").is_dir() else []
    out["snapshots"] = {
        "valid": sum(s.valid for s in snaps),
        "newest_seq": max((s.seq for s in snaps if s.valid), default=0),
    }
    return out


def build(
    *, args: argparse.Namespace, findings: Findings, restarts: list[dict[str, Any]],
    kills: dict[str, int], workers: list[Any], first_start_s: float | None, traffic_s: float,
    run_s: float, data_dir: Path, final: dict[str, Any] | None, error: str | None,
    retried: int,
) -> dict[str, Any]:  # fmt: skip
    def total(attr: str) -> dict[str, int]:
        c: Counter[str] = Counter()
        for w in workers:
            c.update(getattr(w, attr))
        return dict(sorted(c.items()))

    acknowledged = total("counts")
    n_kills = kills["traffic"] + kills["paused"] + kills["startup"]
    passed = error is None and findings.ok and n_kills == args.kills and final is not None
    return {
        "schema": SCHEMA,
        "passed": passed,
        "error": error,
        "settings": {
            "kills": args.kills,
            "seconds": args.seconds,
            "rate": args.rate,
            "fsync": args.fsync,
            "seed": args.seed,
            "workers": len(workers),
            "accounts": len(ACCOUNT_PLANS),
        },
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "kills": {"total": n_kills, **kills},
        "restarts": len(restarts) + kills["startup"],
        "setup": {
            "update_market": 1,
            "upsert_account": len(ACCOUNT_PLANS),
            "set_positions": sum(plan[3] for plan in ACCOUNT_PLANS),
        },
        "acknowledged": {
            "total": sum(acknowledged.values()),
            "by_kind": acknowledged,
            "decisions": total("decided"),
            "ops_per_s": sum(acknowledged.values()) / traffic_s if traffic_s else 0.0,
        },
        "in_flight_at_kill": {"by_kind": total("unknown_ops"), "resolved": total("resolved")},
        "transient_errors": total("errors"),
        "retries_of_acknowledged_orders": retried,
        "lost": len(findings.lost),
        "violations": len(findings.violations),
        "lost_details": findings.lost[:MAX_DETAILS],
        "violation_details": findings.violations[:MAX_DETAILS],
        "recovery_s": _dist([r["recovery_s"] for r in restarts]),
        "replay_s": _dist([r["replay_s"] for r in restarts if r.get("replay_s") is not None]),
        "events_replayed": _dist(
            [r["events_replayed"] for r in restarts if r.get("events_replayed") is not None]
        ),
        "torn_tails_truncated": sum(1 for r in restarts if r.get("truncated_bytes")),
        "first_start_s": first_start_s,
        "final": final,
        "traffic_s": traffic_s,
        "run_s": run_s,
        "data_dir": _data_dir(data_dir),
        "per_restart": restarts,
    }


def _s(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render(r: dict[str, Any]) -> str:
    s, k, ack = r["settings"], r["kills"], r["acknowledged"]
    rec, rep, ev = r["recovery_s"], r["replay_s"], r["events_replayed"]
    dd = r["data_dir"]
    j = dd.get("journal", {})
    lines = [
        f"riskgate crash test: {s['kills']} kills, {s['seconds']:g} s of traffic at "
        f"{s['rate']:g} ops/s, fsync {s['fsync']}, seed {s['seed']}",
        "",
        f"  kills                  {k['total']}  (under traffic {k['traffic']}, traffic "
        f"paused {k['paused']}, during start-up {k['startup']}, "
        f"{k['startup_before_serving']} of them before SERVING)",
        f"  restarts               {r['restarts']}",
        f"  acknowledged ops       {ack['total']:,}  ({ack['ops_per_s']:.0f}/s; after the set-up: "
        + ", ".join(f"{n} {kind}" for kind, n in r["setup"].items())
        + ")",
    ]
    for kind, n in ack["by_kind"].items():
        lines.append(f"    {kind:<20} {n:,}")
    dec = ack["decisions"]
    accepted = dec.get("ACCEPTED", 0)
    rejects = ", ".join(
        f"{n:,} {k_.removeprefix('REJECT_REASON_')}" for k_, n in dec.items() if k_ != "ACCEPTED"
    )
    lines.append(f"    decisions            {sum(dec.values()):,}  (accepted {accepted:,}; "
                 f"rejected {sum(dec.values()) - accepted:,}: {rejects or 'none'})")  # fmt: skip
    inflight = r["in_flight_at_kill"]
    lines.append(f"  in flight at a kill    {sum(inflight['by_kind'].values())}  "
                 + ", ".join(f"{v} {k_}" for k_, v in inflight["resolved"].items()))  # fmt: skip
    lines += [
        f"  acknowledged orders retried   {r['retries_of_acknowledged_orders']:,}",
        f"  LOST                   {r['lost']}",
        f"  VIOLATIONS             {r['violations']}",
        "",
        "                         count      min   median      p95      max",
        f"  recovery s (start -> SERVING) {rec['count']:>3} {_s(rec['min']):>8} "
        f"{_s(rec['median']):>8} {_s(rec['p95']):>8} {_s(rec['max']):>8}",
        f"  replay s (in the log)         {rep['count']:>3} {_s(rep['min']):>8} "
        f"{_s(rep['median']):>8} {_s(rep['p95']):>8} {_s(rep['max']):>8}",
        f"  events replayed               {ev['count']:>3} {_s(ev['min'], 0):>8} "
        f"{_s(ev['median'], 0):>8} {_s(ev['p95'], 0):>8} {_s(ev['max'], 0):>8}",
        "",
        f"  torn journal tails cut off at start-up   {r['torn_tails_truncated']}",
        f"  journal at the end     last event {j.get('last_seq', '-')}, "
        f"{j.get('records', '-')} records in {j.get('segments', '-')} segments; "
        f"{dd['snapshots']['valid']} snapshots",
        f"  data dir               {dd['bytes'] / 2**20:.1f} MiB",
        f"  run                    {r['run_s']:.0f} s (first start {_s(r['first_start_s'], 1)} s)",
    ]
    if r["final"]:
        lines.append(f"  clean restart at the end: {_s(r['final']['clean_restart_s'])} s, "
                     f"exit codes {r['final']['graceful_exit_codes']}")  # fmt: skip
    if r["transient_errors"]:
        lines.append(f"  transient errors (retried): {r['transient_errors']}")
    if r["error"]:
        lines.append(f"  ERROR: {r['error']}")
    for name in ("lost_details", "violation_details"):
        for d in r[name][:10]:
            lines.append(f"  {name.split('_')[0]}: {d}")
    if r.get("logs"):
        lines.append(f"  server logs kept in {r['logs']}")
    lines.append("")
    lines.append("PASSED" if r["passed"] else "FAILED")
    return "\n".join(lines)
