"""Merging the client processes' results, the text report, and the PNG.

A *phase* is one measurement of one target (riskgate or baseline). Its JSON section holds
throughput, wire latency and server compute-time percentiles (µs), decisions by reason,
errors by gRPC status code, the merged HDR histograms (base64, decodable with
``hdrh.histogram.HdrHistogram.decode``) and per-second series.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtest import hist

__all__ = ["journal_impact", "main", "merge_phase", "plot", "ratios", "render_text"]


def _series(raw: Sequence[Mapping[str, Any]], seconds: int, batch: int) -> dict[str, list[Any]]:
    p50, p99, pmax = [], [], []
    for s in range(seconds):
        h = hist.merge((r["series_hists"][s] for r in raw), hist.SERIES_SIGNIFICANT_FIGURES)
        n = h.get_total_count()
        p50.append(h.get_value_at_percentile(50) / 1e3 if n else None)
        p99.append(h.get_value_at_percentile(99) / 1e3 if n else None)
        pmax.append(h.get_max_value() / 1e3 if n else None)
    calls = [sum(r["series_ok"][s] for r in raw) for s in range(seconds)]
    return {
        "second": list(range(seconds)),
        "calls_per_s": calls,
        "decisions_per_s": [c * batch for c in calls],
        "p50_us": p50,
        "p99_us": p99,
        "max_us": pmax,
    }


def merge_phase(
    raw: Sequence[Mapping[str, Any]], duration_s: float, batch: int, mode: str
) -> dict[str, Any]:
    """Merge the per-process results of one phase (histograms with HDR ``add``)."""
    wire = hist.merge(r["wire_hist"] for r in raw)
    compute = hist.merge(r["compute_hist"] for r in raw)
    lag = hist.merge(r["send_lag_hist"] for r in raw)
    err = hist.merge(r["error_hist"] for r in raw)
    reasons: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in raw:
        reasons.update(r["reasons"])
        errors.update(r["errors"])
    responses = sum(r["responses"] for r in raw)
    answered = sum(r["answered_in_window"] for r in raw)
    decisions = sum(r["decisions"] for r in raw)
    accepted = reasons.get("ACCEPTED", 0)
    seconds = max(1, math.ceil(duration_s))
    return {
        "mode": mode,
        "processes": len(raw),
        "duration_s": duration_s,
        "calls_sent": sum(r["calls_sent"] for r in raw),
        "responses": responses,
        "decisions": decisions,
        "accepted": accepted,
        "rejected": decisions - accepted,
        "decisions_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "errors_by_code": dict(sorted(errors.items())),
        "error_examples": {
            code: text for r in raw for code, text in r.get("error_examples", {}).items()
        },
        "errors": sum(errors.values()),
        "unanswered": sum(r["unanswered"] for r in raw),
        "throughput": {
            # answers received inside the measurement window, per second
            "calls_per_s": answered / duration_s,
            "decisions_per_s": answered * batch / duration_s,
        },
        "latency_us": hist.summary_us(wire),
        "compute_us": hist.summary_us(compute),
        "client_send_lag_us": hist.summary_us(lag),
        "error_latency_us": hist.summary_us(err),  # intended send -> failure, failed calls
        "spectrum_us": hist.spectrum_us(wire),
        "compute_spectrum_us": hist.spectrum_us(compute),
        "series": _series(raw, seconds, batch),
        "histograms": {
            "unit": "ns",
            "wire": wire.encode().decode(),
            "compute": compute.encode().decode(),
        },
    }


def ratios(riskgate: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """riskgate ÷ baseline: throughput (higher is better for riskgate) and latency."""

    def div(a: float, b: float) -> float | None:
        return a / b if b else None

    rl, bl = riskgate["latency_us"], baseline["latency_us"]
    return {
        "throughput": div(
            riskgate["throughput"]["calls_per_s"], baseline["throughput"]["calls_per_s"]
        ),
        "p50": div(rl["p50"], bl["p50"]),
        "p99": div(rl["p99"], bl["p99"]),
        "p99.9": div(rl["p99.9"], bl["p99.9"]),
    }


def journal_impact(
    phases: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[str, str]], fsync: str
) -> dict[str, Any]:
    """The journaling riskgate ÷ the in-memory one, per round (``pairs`` of phase names)
    and over the rounds: the median of the rounds' ratios, and the throughput pooled."""
    rounds = []
    for memory, journal in pairs:
        r = ratios(phases[journal], phases[memory])
        cpu_m = phases[memory].get("cpu", {}).get("server_cpu_us_per_call")
        cpu_j = phases[journal].get("cpu", {}).get("server_cpu_us_per_call")
        r["server_cpu_us_per_call"] = cpu_j / cpu_m if cpu_m and cpu_j else None
        rounds.append({"in_memory": memory, "journal": journal, "ratios": r})

    def med(key: str) -> float | None:
        vals = sorted(x["ratios"][key] for x in rounds if x["ratios"][key] is not None)
        if not vals:
            return None
        mid = len(vals) // 2
        return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2

    pooled_m = sum(phases[m]["throughput"]["calls_per_s"] for m, _ in pairs)
    pooled_j = sum(phases[j]["throughput"]["calls_per_s"] for _, j in pairs)
    return {
        "fsync": fsync,
        "rounds": rounds,
        "median": {k: med(k) for k in ("throughput", "p50", "p99", "p99.9")},
        "throughput_pooled": pooled_j / pooled_m if pooled_m else None,
    }


def _fmt_lat(d: Mapping[str, Any]) -> str:
    keys = ("p50", "p90", "p99", "p99.9", "max")
    return "  ".join(f"{k} {d[k]:>9.1f}" for k in keys)


def render_text(result: Mapping[str, Any]) -> str:
    """The human-readable report printed at the end of a run."""
    cfg = result["config"]
    lines = [
        f"riskgate load test: {cfg['mode']} loop, {cfg['rpc']}"
        + (f" (batch {cfg['batch']})" if cfg["rpc"] == "batch" else "")
        + f", model {cfg['model']}, {cfg['accounts']} accounts x {cfg['legs']} legs, "
        f"{cfg['processes']} client process(es), {cfg['duration_s']:g} s "
        f"(+{cfg['warmup_s']:g} s warm-up)",
    ]
    src = result.get("riskgate_source") or {}
    if src.get("commit"):
        state = "with local changes" if src.get("dirty") else "clean"
        lines.append(
            f"riskgate source {src['commit'][:10]} ({state}) on {result['machine']['cpus']} CPUs, load {result['machine']['loadavg_1m']:.1f}"
        )
    if cfg["mode"] == "open":
        lines.append(f"target rate {result['rate_calls_per_s']:.0f} calls/s ({cfg['arrival']})")
    else:
        lines.append(f"{cfg['concurrency']} calls in flight")
    if cfg.get("market_updates_per_s"):
        lines.append(f"market updates: {cfg['market_updates_per_s']:g}/s requested")
    for name, phase in result["phases"].items():
        tp = phase["throughput"]
        lines += [
            "",
            f"[{name}] {phase['address']}",
            f"  throughput   {tp['calls_per_s']:>10.0f} calls/s   "
            f"{tp['decisions_per_s']:>10.0f} decisions/s",
            f"  wire µs      {_fmt_lat(phase['latency_us'])}",
            f"  compute µs   {_fmt_lat(phase['compute_us'])}   (server-reported compute_ns)",
            f"  send lag µs  p99 {phase['client_send_lag_us']['p99']:.1f}  "
            f"max {phase['client_send_lag_us']['max']:.1f}   (client behind its schedule)",
            f"  responses {phase['responses']}  decisions {phase['decisions']}  "
            f"accepted {phase['accepted']}  rejected {phase['rejected']}",
            "  by reason: "
            + (", ".join(f"{k} {v}" for k, v in phase["decisions_by_reason"].items()) or "-"),
            "  errors: "
            + (", ".join(f"{k} {v}" for k, v in phase["errors_by_code"].items()) or "none")
            + (f"  (unanswered at end: {phase['unanswered']})" if phase["unanswered"] else ""),
        ]
        mu = phase.get("market_updates")
        if mu:
            lines.append(
                f"  market updates: {mu['sent']} sent, {mu['ok']} ok "
                f"({mu['achieved_per_s']:.1f}/s), wire p50 {mu['latency_ms']['p50']:.1f} ms "
                f"p99 {mu['latency_ms']['p99']:.1f} ms, server compute p50 "
                f"{mu['compute_ms']['p50']:.1f} ms, errors {mu['errors'] or 'none'}"
            )
    r = result.get("ratios")
    if r:

        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        lines += [
            "",
            "riskgate ÷ baseline:  throughput "
            f"{f(r['throughput'])}   p50 {f(r['p50'])}   p99 {f(r['p99'])}   "
            f"p99.9 {f(r['p99.9'])}",
        ]
    cal = result.get("calibration")
    if cal:
        lines.append(
            f"calibration: baseline max {cal['baseline_max_calls_per_s']:.0f} calls/s (closed "
            f"loop, {cal['concurrency']} in flight) x {cal['fraction']:g} = "
            f"{cal['rate_calls_per_s']:.0f} calls/s"
        )
    ji = result.get("journal_impact")
    if ji:

        def g(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        for k, rnd in enumerate(ji["rounds"], 1):
            r = rnd["ratios"]
            lines.append(
                f"journal (fsync {ji['fsync']}) ÷ in memory, round {k}:  throughput "
                f"{g(r['throughput'])}   p50 {g(r['p50'])}   p99 {g(r['p99'])}   p99.9 "
                f"{g(r['p99.9'])}   server CPU per call {g(r['server_cpu_us_per_call'])}"
            )
        m = ji["median"]
        lines.append(
            f"journal (fsync {ji['fsync']}) ÷ in memory, median of {len(ji['rounds'])}:  "
            f"throughput {g(m['throughput'])} (pooled {g(ji['throughput_pooled'])})   "
            f"p50 {g(m['p50'])}   p99 {g(m['p99'])}   p99.9 {g(m['p99.9'])}"
        )
    impact = result.get("market_update_impact")
    if impact:
        lines.append(
            f"market updates: riskgate p99.9 {impact['p99_9_with_updates_ms']:.2f} ms with, "
            f"{impact['p99_9_without_updates_ms']:.2f} ms without: rise "
            f"{impact['p99_9_rise_ms']:+.2f} ms (p99 rise {impact['p99_rise_ms']:+.2f} ms)"
        )
    files = result.get("files", {})
    if files:
        lines += ["", *(f"{k}: {v}" for k, v in files.items())]
    return "\n".join(lines)


_COLOURS = {
    "riskgate": "tab:blue",
    "baseline": "tab:orange",
    "riskgate-no-updates": "tab:green",
    "riskgate-journal": "tab:red",
}


def plot(result: Mapping[str, Any], path: Path) -> None:
    """Three panels: the latency percentile spectrum (log ``1 / (1 - p)`` x axis, as
    HdrHistogram plots it), p50/p99 latency per second, and throughput per second; riskgate
    and the baseline on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    phases: Mapping[str, Any] = result["phases"]
    cfg = result["config"]
    fig, axes = plt.subplots(3, 1, figsize=(10, 12))
    ax = axes[0]
    for name, phase in phases.items():
        colour = _COLOURS.get(name)
        for key, style, label in (
            ("spectrum_us", "-", "wire"),
            ("compute_spectrum_us", "--", "server compute"),
        ):
            pts = [(p, v) for p, v in phase[key] if p < 100.0]
            if not pts or (label == "server compute" and name == "baseline"):
                continue
            xs = [1.0 / (1.0 - p / 100.0) for p, _ in pts]
            ys = [max(v, 1e-3) / 1e3 for _, v in pts]
            ax.plot(xs, ys, style, color=colour, label=f"{name} {label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [1, 2, 10, 100, 1000, 10_000, 100_000]
    labels = ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    tick_labels = dict(zip(ticks, labels, strict=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: tick_labels.get(x, "")))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    title = (
        f"{cfg['mode']} loop, {cfg['rpc']}"
        + (f" x{cfg['batch']}" if cfg["rpc"] == "batch" else "")
        + f", {cfg['model']}, {cfg['accounts']} accounts x {cfg['legs']} legs"
    )
    if cfg["mode"] == "open":
        title += f", {result['rate_calls_per_s']:.0f} calls/s"
    if cfg.get("market_updates_per_s"):
        title += f", {cfg['market_updates_per_s']:g} market updates/s"
    ax.set_title(f"Latency percentile spectrum ({title})", fontsize=10)

    ax = axes[1]
    for name, phase in phases.items():
        s = phase["series"]
        colour = _COLOURS.get(name)
        ax.plot(s["second"], _ms(s["p50_us"]), "-", color=colour, label=f"{name} p50")
        ax.plot(s["second"], _ms(s["p99_us"]), ":", color=colour, label=f"{name} p99")
    ax.set_yscale("log")
    sent = "intended send time" if cfg["mode"] == "open" else "send time"
    ax.set_xlabel(f"second of the measurement window (by {sent})")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Wire latency over time", fontsize=10)

    ax = axes[2]
    unit = "decisions_per_s" if cfg["rpc"] == "batch" else "calls_per_s"
    for name, phase in phases.items():
        s = phase["series"]
        ax.plot(s["second"], s[unit], "-", color=_COLOURS.get(name), label=name)
    ax.set_xlabel("second of the measurement window")
    ax.set_ylabel(unit.replace("_per_s", "/s"))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Throughput over time (answers received)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ms(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v / 1e3 for v in values]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtest.report RESULT.json [--png FILE]``: print the report of an
    earlier run again and optionally redraw its plot."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.report",
        description="Print the text report of a loadtest result.json; --png redraws the plot.",
    )
    parser.add_argument("result", type=Path, help="result.json written by python -m loadtest")
    parser.add_argument("--png", type=Path, metavar="FILE", help="redraw the plot into FILE")
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    if args.png:
        plot(result, args.png)
    print(render_text({**result, "files": {} if args.png is None else {"png": str(args.png)}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
