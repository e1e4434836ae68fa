"""The "Durability cost" tables of docs/performance.md, written from kept result files.

Each run's JSON (``riskgate bench-service --journal compare --json``, ``python -m
loadtest --compare-journal ...`` result.json, ``riskgate bench-recovery --json``) is kept
in ``docs/performance/results/durability/`` as ``KIND-LABEL-N.json`` (KIND: service,
saturation, recovery; LABEL: the code measured, e.g. ``before`` and ``after``):

    python scripts/perf_durability.py add service after run1.json run2.json run3.json
    python scripts/perf_report.py write          # rewrites these tables with the others

``scripts/perf_report.py`` writes and checks the ``durability`` block from them.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "performance" / "results" / "durability"
KINDS = ("service", "saturation", "recovery")
LABELS = {"before": "before (main)", "after": "after (this work)"}

Result = Mapping[str, Any]


def load(directory: Path = RESULTS) -> dict[str, dict[str, list[Result]]]:
    """Kept runs by kind, then label (in file-name order)."""
    out: dict[str, dict[str, list[Result]]] = {k: {} for k in KINDS}
    order = list(LABELS)
    paths = sorted(
        directory.glob("*.json"),
        key=lambda p: (order.index(p.stem.split("-")[1]) if p.stem.split("-")[1] in order
                       else len(order), p.name),
    )  # fmt: skip
    for path in paths:
        kind, label, _n = path.stem.split("-")
        out[kind].setdefault(label, []).append(json.loads(path.read_text()))
    return out


def _med(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def _each(xs: Sequence[float], fmt: str) -> str:
    return " / ".join(format(x, fmt) for x in xs)


def _label(label: str) -> str:
    return LABELS.get(label, label)


def _service(runs: Mapping[str, list[Result]]) -> list[str]:
    rows = [
        "| code | model | legs | runs | in memory p50 / p99 µs | journal p50 / p99 µs "
        "| added p50 µs (each run) | added p99 µs (each run) | **added p99, median** "
        "| p99 added, median of rounds (each run) | per accept: encode / append µs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, rs in runs.items():
        keys = [(row["model"], row["legs"]) for row in rs[0]["rows"]]
        for model, legs in keys:
            got = [
                row for r in rs for row in r["rows"] if (row["model"], row["legs"]) == (model, legs)
            ]
            off = [g["servicer"] for g in got]
            on = [g["journal_on"]["servicer"] for g in got]
            added = [g["journal_on"]["servicer_added_us"] for g in got]
            parts = [g["journal_on"]["journal_parts"] for g in got]
            a50 = [a["p50_us"] for a in added]
            a99 = [a["p99_us"] for a in added]
            rows.append(
                f"| {_label(label)} | {model} | {legs} | {len(got)} "
                f"| {_med([o['p50_us'] for o in off]):.1f} / {_med([o['p99_us'] for o in off]):.1f} "
                f"| {_med([o['p50_us'] for o in on]):.1f} / {_med([o['p99_us'] for o in on]):.1f} "
                f"| {_each(a50, '+.1f')} | {_each(a99, '+.1f')} | **{_med(a99):+.1f}** "
                f"| {_each([g['journal_on']['p99_added_median_of_rounds_us'] for g in got], '+.1f')} "
                f"| {_med([p['encode']['p50_us'] for p in parts]):.2f} / "
                f"{_med([p['append']['p50_us'] for p in parts]):.2f} |"
            )
    return rows


def _saturation(runs: Mapping[str, list[Result]]) -> list[str]:
    rows = [
        "| code | runs × rounds | journal ÷ in memory, throughput (each run: median of its "
        "rounds) | **median** | server CPU per call, journal ÷ in memory (each run) "
        "| in memory calls/s (each run) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, rs in runs.items():
        imp = [r["journal_impact"] for r in rs]
        thr = [i["median"]["throughput"] for i in imp]
        cpu = [_med([x["ratios"]["server_cpu_us_per_call"] for x in i["rounds"]]) for i in imp]
        mem = [
            _med([r["phases"][x["in_memory"]]["throughput"]["calls_per_s"] for x in i["rounds"]])
            for r, i in zip(rs, imp, strict=True)
        ]
        rows.append(
            f"| {_label(label)} | {len(rs)} × {len(imp[0]['rounds'])} | {_each(thr, '.3f')} "
            f"| **{_med(thr):.3f}** | {_each(cpu, '.2f')} | {_each(mem, ',.0f')} |"
        )
    return rows


def _recovery(runs: Mapping[str, list[Result]]) -> list[str]:
    rows = [
        "| code | runs | journal replay events/s | snapshot decode s | in process recover s: "
        "snapshot + tail / clean shutdown | restart to SERVING, "
        "median s: journal only / snapshot + tail / **clean shutdown** | snapshot: commit lock "
        "held, longest ms | writer's call during a snapshot, max ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, rs in runs.items():
        inproc = [_med([r["replay"][c]["recover_s"] for r in rs]) for c in ("snapshot", "clean")]
        rate = [r["replay"]["journal"]["events_per_s_recover"] for r in rs]
        dec = [r["replay"]["snapshot"]["breakdown"]["snapshot_decode_s"] for r in rs]
        rst = {
            c: _med([r["restart"][c]["serving_s"]["median"] for r in rs])
            for c in ("journal", "snapshot", "clean")
        }
        pauses = [r.get("snapshot_pause") for r in rs]
        hold = [max(p["commit_lock_longest_hold_us"]) / 1e3 for p in pauses if p]
        wmax = [p["writer_during"]["max_us"] / 1e3 for p in pauses if p]
        rows.append(
            f"| {_label(label)} | {len(rs)} | {_med(rate):,.0f} | {_med(dec):.2f} "
            f"| {inproc[0]:.2f} / {inproc[1]:.2f} "
            f"| {rst['journal']:.2f} / {rst['snapshot']:.2f} / **{rst['clean']:.2f}** "
            f"| {_each(hold, ',.1f') if hold else 'n/a'} "
            f"| {_each(wmax, ',.1f') if wmax else 'n/a'} |"
        )
    return rows


def _machine(runs: Mapping[str, Mapping[str, list[Result]]]) -> str:
    loads = [
        r["machine"]["loadavg_1m"]
        for rs in runs["saturation"].values()
        for r in rs
        if "machine" in r
    ]
    return f" (1-minute load average {min(loads):.1f}–{max(loads):.1f})" if loads else ""


def block(directory: Path = RESULTS) -> str:
    runs = load(directory)
    if not any(runs.values()):
        return "(no kept runs)"
    lines = []
    if runs["service"]:
        lines += [
            "Journal on the order path: `riskgate bench-service --journal compare --legs 500` "
            "(in memory and fsync `batch`, rounds interleaved; added = journal − in memory in "
            "the same run):",
            "",
            *_service(runs["service"]),
            "",
        ]
    if runs["saturation"]:
        lines += [
            "Saturation: `python -m loadtest --mode closed --concurrency 64 --accounts 100 "
            "--legs 100 --duration 15 --warmup 3 --compare-journal batch --rounds 3`"
            + _machine(runs)
            + ":",
            "",
            *_saturation(runs["saturation"]),
            "",
        ]
    if runs["recovery"]:
        lines += [
            "Recovery: `riskgate bench-recovery` (10,000 accounts × 5 legs, 500,000 events; "
            "in process, then restarts of `riskgate serve --data-dir DIR`):",
            "",
            *_recovery(runs["recovery"]),
        ]
    return "\n".join(lines).rstrip()


def add(kind: str, label: str, paths: Sequence[str]) -> None:
    """Keep ``paths`` as the runs of ``kind`` for ``label`` (replacing kept ones)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from perf_report import _portable  # the same scrubbing of this machine's paths

    if kind not in KINDS:
        raise SystemExit(f"kind: one of {', '.join(KINDS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in RESULTS.glob(f"{kind}-{label}-*.json"):
        old.unlink()
    for n, p in enumerate(paths, 1):
        r = _portable(json.loads(Path(p).read_text()))
        (RESULTS / f"{kind}-{label}-{n}.json").write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] != "add":
        raise SystemExit(__doc__)
    add(sys.argv[2], sys.argv[3], sys.argv[4:])
