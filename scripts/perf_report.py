"""The tables of docs/performance.md, written from the load-test result files.

The headline runs' ``result.json`` files (``python -m loadtest``) are kept in
``docs/performance/results/``; every number in the generated parts of docs/performance.md
(between ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``) is computed here
from them, so the report cannot drift from its runs:

    python scripts/perf_report.py add loadtest-results/*/result.json   # keep new runs
    python scripts/perf_report.py write                                # rewrite the tables
    python scripts/perf_report.py check                                # exit 1 if stale

``add`` replaces the kept runs with the given ones (named by load kind and start time),
leaving out this machine's paths. The in-process market-update sweeps
(``riskgate bench-update --accounts 1000 10000 100000 --json FILE``) are kept by hand in
``docs/performance/bench-update/`` as ``before-N.json`` / ``after-N.json``.
A test runs ``check``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "performance" / "results"
REPORT = ROOT / "docs" / "performance.md"
# bench-update sweeps (not load-test runs: kept apart, `add` leaves them alone)
UPDATE_SWEEPS = ROOT / "docs" / "performance" / "bench-update"
# market-update load runs of the array book (another commit than the headline runs)
ARRAY_BOOK_RUNS = ROOT / "docs" / "performance" / "array-book"

Result = Mapping[str, Any]

MIN_RUNS_FOR_VERDICT = 3  # fewer runs are reported, not judged: one outlier would decide

# the headline loads, in the report's order: (key, title)
KINDS = (
    ("saturation", "Unary `CheckOrder`, closed loop (saturation)"),
    ("open50", "Unary `CheckOrder`, open loop at 50 % of the baseline's maximum"),
    ("batch", "Batch `CheckOrders`, 100 orders per call"),
    ("market", "Market updates over 10,000 accounts"),
)


def kind_of(r: Result) -> str:
    c = r["config"]
    if c.get("market_updates_per_s"):
        return "market"
    if c.get("batch", 1) > 1:
        return "batch"
    if c["mode"] == "open" and c.get("rate_from_baseline") == 0.5:
        return "open50"
    if c["mode"] == "closed":
        return "saturation"
    raise ValueError(f"{r['command']}: not one of the report's headline loads")


def load_results(directory: Path = RESULTS) -> dict[str, list[Result]]:
    runs: dict[str, list[Result]] = {k: [] for k, _ in KINDS}
    for path in sorted(directory.glob("*.json")):
        r = json.loads(path.read_text())
        runs[kind_of(r)].append(r)
    for rs in runs.values():
        rs.sort(key=lambda r: r["started_at"])
    return runs


# ---- formatting -------------------------------------------------------------------------


def _n(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _ms(us: float) -> str:
    ms = us / 1e3
    return f"{ms:,.1f}" if ms >= 10 else f"{ms:,.2f}"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def _each(xs: Sequence[float], fmt: Callable[[float], str]) -> str:
    return " / ".join(fmt(x) for x in xs)


def _phase(r: Result, name: str) -> Mapping[str, Any]:
    return r["phases"][name]


def _cpu(r: Result, per: str) -> str:
    key = f"server_cpu_us_per_{per}"
    rg = _phase(r, "riskgate")["cpu"][key]
    base = r["phases"].get("baseline", {}).get("cpu", {}).get(key)
    return f"{'-' if base is None else _n(base, 1 if per == 'decision' else 0)} / " + _n(
        rg, 1 if per == "decision" else 0
    )


def _compute(r: Result) -> str:
    c = _phase(r, "riskgate")["compute_us"]
    return f"{c['p50']:.0f} / {c['p99']:.0f}"


def _load(r: Result) -> str:
    return f"{r['machine']['loadavg_1m']:.1f}"


def _lag(r: Result) -> str:
    """How far riskgate's client fell behind its send schedule (open loop), p99."""
    lag = _phase(r, "riskgate").get("client_send_lag_us") or {}
    return f" (client send lag p99 {_ms(lag['p99'])} ms)" if lag.get("p99") else ""


# ---- the generated blocks -----------------------------------------------------------------


def _header(runs: Mapping[str, list[Result]]) -> str:
    every = [r for rs in runs.values() for r in rs]
    commits = sorted({r["riskgate_source"]["commit"][:7] for r in every})
    dirty = any(r["riskgate_source"].get("dirty") for r in every)
    loads = [r["machine"]["loadavg_1m"] for r in every]
    counts = sorted({len(rs) for rs in runs.values()})
    days = sorted({r["started_at"][:10] for r in every})
    instruments = sorted({r["config"]["instruments"] for r in every})
    workers = sorted({r["config"]["server_workers"] for r in every})
    cpus = sorted({r["machine"]["cpus"] for r in every})
    runs_text = (
        f"{counts[0]} run{'s' if counts[0] != 1 else ''} of each headline load"
        if len(counts) == 1
        else "between " + " and ".join(map(str, (counts[0], counts[-1]))) + " runs per load"
    )
    return (
        f"Measured at riskgate commit {', '.join(f'`{c}`' for c in commits)}"
        + (" (with uncommitted changes)" if dirty else "")
        + f" on {', '.join(days)}: {runs_text} ({len(every)} runs, interleaved), each "
        f"riskgate and the no-op baseline in turn, on a shared "
        f"{'/'.join(map(str, cpus))}-vCPU machine (1-minute load average "
        f"{min(loads):.1f}–{max(loads):.1f} at the starts of the runs). Server defaults "
        f"({'/'.join(map(str, workers))} unary gRPC workers, riskgate's 0.5 ms GIL switch "
        f"interval); demo market of {', '.join(_n(i) for i in instruments)} live "
        "instruments. Medians over the runs; every run is listed below."
    )


def _count_verdict(met: int, n: int) -> str:
    if met == n:
        return f"**met** in all {n} runs"
    if met == 0:
        return f"**missed** in all {n} runs"
    return f"met in {met} of {n} runs"


def _summary_table(runs: Mapping[str, list[Result]]) -> list[str]:
    def judged(verdict: str, n: int) -> str:
        if n >= MIN_RUNS_FOR_VERDICT:
            return verdict
        return f"not judged: {n} run{'s' if n != 1 else ''}"

    rows = ["| target | runs | median | verdict |", "| --- | --- | --- | --- |"]
    sat = runs["saturation"]
    title = (
        "| Unary `CheckOrder`, 100-leg accounts, `deribit`: throughput at saturation "
        "≥ 0.9 × baseline | "
    )
    if sat:
        ratios = [r["ratios"]["throughput"] for r in sat]
        rg = _median([_phase(r, "riskgate")["throughput"]["calls_per_s"] for r in sat])
        base = _median([_phase(r, "baseline")["throughput"]["calls_per_s"] for r in sat])
        m = _median(ratios)
        verdict = "**met**" if m >= 0.9 else f"**missed** by {0.9 - m:.2f} ×"
        rows.append(
            f"{title}{_each(ratios, _ratio)} | **{m:.2f} ×**: riskgate {_n(rg)} calls/s, "
            f"baseline {_n(base)} | {judged(verdict, len(sat))} |"
        )
    op = runs["open50"]
    title = (
        "| Same, at 50 % of the baseline's maximum rate (open loop): p99 ≤ 1.2 × baseline p99 | "
    )
    if op:
        p99 = [r["ratios"]["p99"] for r in op]
        p999 = [r["ratios"]["p99.9"] for r in op]
        met = sum(x <= 1.2 for x in p99)
        rows.append(
            f"{title}{_each(p99, _ratio)} | **{_median(p99):.2f} ×** (p99.9 "
            f"{_median(p999):.2f} ×) | {judged(_count_verdict(met, len(op)), len(op))} |"
        )
    ba = runs["batch"]
    title = "| Batch `CheckOrders`, 100 orders per call: ≥ 50,000 decisions/s on 2 cores | "
    if ba:
        dps = [_phase(r, "riskgate")["throughput"]["decisions_per_s"] for r in ba]
        base = _median([_phase(r, "baseline")["throughput"]["decisions_per_s"] for r in ba])
        m = _median(dps)
        verdict = "**met**" if m >= 50_000 else f"**missed** by ≈ {50_000 / m:.1f} ×"
        rows.append(
            f"{title}{_each(dps, _n)} | **{_n(m)} decisions/s** (baseline {_n(base)}) | "
            f"{judged(verdict, len(ba))} |"
        )
    mk = runs["market"]
    title = "| 10 market updates/s over 10,000 accounts: p99.9 of order checks rises ≤ 2 ms | "
    if mk:
        rise = [r["market_update_impact"]["p99_9_rise_ms"] for r in mk]
        achieved = [_phase(r, "riskgate")["market_updates"]["achieved_per_s"] for r in mk]
        m = _median(rise)
        if m < 0:
            verdict = "inconclusive: riskgate without updates was the slower one"
        else:
            verdict = "**met**" if m <= 2.0 else "**missed**"
        rows.append(
            f"{title}{_each(rise, lambda x: f'{x:+,.1f} ms')} | **{m:+,.1f} ms**, "
            f"{_median(achieved):.1f} updates/s achieved | {judged(verdict, len(mk))} |"
        )
    return rows


def _runs_table(runs: Mapping[str, list[Result]]) -> list[str]:
    rows = [
        "| run | load | baseline | riskgate | riskgate ÷ baseline | riskgate compute p50 / p99 µs "
        "| server CPU µs per call or decision (base / rg) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, r in enumerate(runs["saturation"], 1):
        b, g = _phase(r, "baseline"), _phase(r, "riskgate")
        rows.append(
            f"| saturation {k} | {_load(r)} | {_n(b['throughput']['calls_per_s'])} calls/s | "
            f"{_n(g['throughput']['calls_per_s'])} calls/s | **{_ratio(r['ratios']['throughput'])}** "
            f"| {_compute(r)} | {_cpu(r, 'call')} |"
        )
    for k, r in enumerate(runs["open50"], 1):
        b, g = _phase(r, "baseline")["latency_us"], _phase(r, "riskgate")["latency_us"]
        rate = r.get("rate_calls_per_s") or _phase(r, "riskgate").get("rate_calls_per_s")
        rows.append(
            f"| open loop 50 % {k} ({_n(rate)} calls/s) | {_load(r)} | p99 {_ms(b['p99'])} ms, "
            f"p99.9 {_ms(b['p99.9'])} ms | p99 {_ms(g['p99'])} ms, p99.9 {_ms(g['p99.9'])} ms"
            f"{_lag(r)} | p99 **{_ratio(r['ratios']['p99'])}** | {_compute(r)} | "
            f"{_cpu(r, 'call')} |"
        )
    for k, r in enumerate(runs["batch"], 1):
        b, g = _phase(r, "baseline"), _phase(r, "riskgate")
        rows.append(
            f"| batch 100 × {k} | {_load(r)} | {_n(b['throughput']['decisions_per_s'])} "
            f"decisions/s | {_n(g['throughput']['decisions_per_s'])} decisions/s | "
            f"{_ratio(r['ratios']['throughput'])} | {_compute(r)} | {_cpu(r, 'decision')} |"
        )
    rows.extend(_market_row(k, r) for k, r in enumerate(runs["market"], 1))
    return rows


def _market_row(k: int, r: Result) -> str:
    b = _phase(r, "baseline")["latency_us"]
    g = _phase(r, "riskgate")["latency_us"]
    quiet = _phase(r, "riskgate-no-updates")["latency_us"]
    mu = _phase(r, "riskgate")["market_updates"]
    rise = r["market_update_impact"]["p99_9_rise_ms"]
    return (
        f"| market updates {k}, 10/s requested, {mu['achieved_per_s']:.1f}/s achieved | "
        f"{_load(r)} | p99.9 {_ms(b['p99.9'])} ms | no updates p99.9 {_ms(quiet['p99.9'])} ms;"
        f" with updates p99 {_ms(g['p99'])} ms, p99.9 {_ms(g['p99.9'])} ms{_lag(r)} | rise "
        f"**{rise:+,.1f} ms** | {_compute(r)} | — |"
    )


def load_array_book_runs(directory: Path = ARRAY_BOOK_RUNS) -> list[Result]:
    """The market-update load runs of the array book (``python -m loadtest
    --market-updates-per-s 10 --compare-no-updates ...``), by start time."""
    runs = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    return sorted(runs, key=lambda r: r["started_at"])


def _array_book_table(runs: list[Result]) -> list[str]:
    rows = [
        "| run | load avg | baseline | riskgate | p99.9 rise | rg compute p50 / p99 µs | "
        "updates: server compute p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, r in enumerate(runs, 1):
        mu = _phase(r, "riskgate")["market_updates"]
        commit = r["riskgate_source"]["commit"][:7]
        sc = mu.get("compute_ms") or {}
        row = _market_row(k, r).rsplit("| — |", 1)[0]
        row = row.replace(f"| market updates {k},", f"| {k} (`{commit}`),", 1)
        p50, p99 = sc.get("p50", float("nan")), sc.get("p99", float("nan"))
        rows.append(f"{row}| {p50:.1f} / {p99:.1f} |")
    return rows


def load_update_sweeps(directory: Path = UPDATE_SWEEPS) -> dict[str, list[Result]]:
    """``riskgate bench-update --accounts ... --json`` files kept as ``before-N.json`` and
    ``after-N.json`` (the code before and after a change, run alternately)."""
    out: dict[str, list[Result]] = {"before": [], "after": []}
    for path in sorted(directory.glob("*.json")):
        which = path.stem.split("-")[0]
        if which in out:
            out[which].append(json.loads(path.read_text()))
    return out


def _update_sweep_table(sweeps: Mapping[str, list[Result]]) -> list[str]:
    """Per account count: medians over the runs of each run's wall-clock median and p99 per
    update, of its CPU-time median (the calling thread's, kernels included), and of the
    market-state build alone, before and after; the ratio of the CPU medians."""

    def by_accounts(results: list[Result]) -> dict[int, list[Result]]:
        rows: dict[int, list[Result]] = {}
        for res in results:
            for one in res.get("sweep", [res]):
                rows.setdefault(one["accounts"], []).append(one)
        return rows

    before, after = by_accounts(sweeps["before"]), by_accounts(sweeps["after"])
    rows = [
        "| accounts × legs | runs before / after | before: wall median / p99 ms | before: CPU "
        "ms (build) | after: wall median / p99 ms | after: CPU ms (build) | after ÷ before, CPU |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def med(rs: list[Result], key: str, stat: str = "median") -> float:
        return statistics.median(r[key][stat] for r in rs)

    def cells(rs: list[Result]) -> tuple[float, str, str]:
        cpu = med(rs, "update_cpu_ms")
        wall = f"{_n(med(rs, 'update_ms'), 1)} / {_n(med(rs, 'update_ms', 'p99'), 1)}"
        return cpu, wall, f"{_n(cpu, 1)} ({_n(med(rs, 'build_cpu_ms'), 1)})"

    for n in sorted(set(before) & set(after)):
        b, a = before[n], after[n]
        cb, wb, xb = cells(b)
        ca, wa, xa = cells(a)
        rows.append(
            f"| {_n(n)} × {a[0]['legs']} | {len(b)} / {len(a)} | {wb} | {xb} | {wa} | **{xa}** | "
            f"{ca / cb:.2f} × |"
        )
    return rows


def blocks(runs: Mapping[str, list[Result]]) -> dict[str, str]:
    """The generated blocks by name."""
    return {
        "summary": "\n".join([_header(runs), "", *_summary_table(runs)]),
        "runs": "\n".join(_runs_table(runs)),
        "update_sweep": "\n".join(_update_sweep_table(load_update_sweeps())),
        "array_book_market": "\n".join(_array_book_table(load_array_book_runs())),
        "durability": _durability_block(),
    }


def _durability_block() -> str:
    """The "Durability cost" tables (scripts/perf_durability.py, its own result files)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "perf_durability", Path(__file__).with_name("perf_durability.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.block()


_BLOCK = re.compile(
    r"<!-- generated: (?P<name>\w+) -->\n(?P<body>.*?)<!-- end generated: (?P=name) -->", re.S
)


def render(text: str, generated: Mapping[str, str]) -> str:
    """``text`` with the body of each generated block replaced."""
    seen = set()

    def fill(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in generated:
            raise KeyError(f"docs/performance.md: unknown generated block {name!r}")
        seen.add(name)
        return f"<!-- generated: {name} -->\n{generated[name]}\n<!-- end generated: {name} -->"

    out = _BLOCK.sub(fill, text)
    missing = set(generated) - seen
    if missing:
        raise KeyError(f"docs/performance.md: no generated block named {sorted(missing)}")
    return out


_INTERPRETER = re.compile(r"(?<![\w.-])/\S*/bin/python[\d.]*")
_ABSOLUTE = re.compile(r"(?<![\w.-])/(?:[\w.+-]+/)*[\w.+-]+")


def _portable(value: Any) -> Any:
    """The result without this machine's paths: the interpreter as ``python``, files of the
    repository relative to it, any other absolute path as ``…``."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and "/" in value:
        value = _INTERPRETER.sub("python", value.replace(f"{ROOT}/", ""))
        return _ABSOLUTE.sub("…", value)
    return value


def _add(paths: Sequence[str]) -> None:
    loaded = [(Path(p), _portable(json.loads(Path(p).read_text()))) for p in paths]
    for r in [r for _, r in loaded]:
        kind_of(r)  # every run must be a headline load
    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True)
    counters: dict[str, int] = {}
    for _, r in sorted(loaded, key=lambda pr: pr[1]["started_at"]):
        kind = kind_of(r)
        counters[kind] = counters.get(kind, 0) + 1
        (RESULTS / f"{kind}-{counters[kind]}.json").write_text(json.dumps(r, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="keep these result files (replacing the kept ones)")
    add.add_argument("results", nargs="+", metavar="RESULT.json")
    sub.add_parser("write", help="rewrite the generated parts of docs/performance.md")
    sub.add_parser("check", help="exit 1 if docs/performance.md is not what write would write")
    args = parser.parse_args(argv)
    if args.command == "add":
        _add(args.results)
        return 0
    text = REPORT.read_text()
    new = render(text, blocks(load_results()))
    if args.command == "check":
        if new != text:
            print(
                "docs/performance.md: tables differ from docs/performance/results/ "
                "(run: python scripts/perf_report.py write)",
                file=sys.stderr,
            )
            return 1
        return 0
    REPORT.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
