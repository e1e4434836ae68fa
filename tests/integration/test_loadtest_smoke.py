"""CI smoke of the load-test harness: ``python -m loadtest`` starts riskgate (twice: in
memory, and journaling into a data directory) and the no-op baseline on free 127.0.0.1
ports, runs a few seconds of low-rate open-loop load against each over two client processes
(with market updates), and must produce a well-formed report.

No timing is asserted: only that the report is complete and self-consistent (histogram
counts equal the answers received, every sent call is accounted for, throughput > 0, the
baseline section and ratios are present, the PNG is a real PNG). Also checked without
servers: the same seed gives byte-identical order streams (the "same messages" the
baseline comparison relies on), and the bulk HDR recording equals one-by-one recording.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadtest.hist import new_histogram, record_many
from loadtest.workload import (
    OrderFactory,
    OrderSpec,
    WorkloadSpec,
    account_ids,
    build_market,
    instrument_quotes,
)
from riskgate.v1 import riskgate_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PHASE_KEYS = {
    "mode",
    "processes",
    "duration_s",
    "calls_sent",
    "responses",
    "decisions",
    "accepted",
    "rejected",
    "decisions_by_reason",
    "errors_by_code",
    "errors",
    "unanswered",
    "throughput",
    "latency_us",
    "compute_us",
    "client_send_lag_us",
    "spectrum_us",
    "series",
    "histograms",
    "address",
    "market_updates",
    "cpu",
}
LATENCY_KEYS = {"count", "p50", "p90", "p99", "p99.9", "max", "mean"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("loadtest")
    cmd = [
        sys.executable, "-m", "loadtest",
        "--spawn", "--mode", "open", "--rate", "40", "--arrival", "poisson",
        "--duration", "2", "--warmup", "0.5", "--processes", "2",
        "--accounts", "5", "--legs", "10", "--tight-fraction", "0.2",
        "--market-updates-per-s", "2", "--deadline-ms", "5000",
        "--compare-journal", "batch",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    # ~12 s with the numba cache warm; the limit leaves room for a cold kernel compile
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    data = json.loads((out / "result.json").read_text())
    data["_stdout"] = proc.stdout
    data["_out"] = str(out)
    return data


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_report_is_well_formed(report: dict[str, Any]) -> None:
    assert report["schema"] == "riskgate-loadtest/1"
    assert report["command"].startswith("python -m loadtest ")
    assert set(report["phases"]) == {"baseline", "riskgate", "riskgate-journal"}
    for name in ("riskgate", "riskgate-journal", "baseline"):
        srv = report["servers"][name]
        assert srv["spawned"] is True
        assert srv["address"].startswith("127.0.0.1:")
        assert srv["exit_code"] == 0  # stopped gracefully by the harness
        assert report["setup"][name]["accounts"] == 5
        assert report["setup"][name]["legs_per_account"] == 10
        assert report["setup"][name]["tight_accounts"] == 1
    # only the second riskgate journals: it leaves a journal and its shutdown snapshot
    assert "--data-dir" not in report["servers"]["riskgate"]["command"]
    assert "--fsync batch" in report["servers"]["riskgate-journal"]["command"]
    data = report["servers"]["riskgate-journal"]["data_dir"]
    assert data["kept"] is False and data["path"] is None
    assert data["journal_bytes"] > 0 and data["snapshots_bytes"] > 0
    assert not (Path(report["_out"]) / "riskgate-journal-data").exists()
    for name, phase in report["phases"].items():
        assert set(phase) >= PHASE_KEYS, name
        assert phase["processes"] == 2
        assert set(phase["latency_us"]) >= LATENCY_KEYS
        assert set(phase["compute_us"]) >= LATENCY_KEYS
        assert phase["throughput"]["calls_per_s"] > 0, name
        assert phase["responses"] > 0
        lat = phase["latency_us"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
        # every call sent in the window is answered, failed with a status code, or unanswered
        errors = sum(phase["errors_by_code"].values())
        assert phase["errors"] == errors
        assert phase["responses"] + errors + phase["unanswered"] == phase["calls_sent"]
        # unary: one decision per answer, each with a reason bucket and a compute time
        assert phase["decisions"] == phase["responses"]
        assert sum(phase["decisions_by_reason"].values()) == phase["decisions"]
        assert phase["accepted"] + phase["rejected"] == phase["decisions"]
        # merged HDR histograms count exactly the answers (wire) and decisions (compute)
        assert phase["histograms"]["unit"] == "ns"
        wire = HdrHistogram.decode(phase["histograms"]["wire"])
        compute = HdrHistogram.decode(phase["histograms"]["compute"])
        assert wire.get_total_count() == phase["responses"] == lat["count"]
        assert compute.get_total_count() == phase["decisions"]
        assert wire.get_max_value() == pytest.approx(lat["max"] * 1e3, rel=1e-3)
        series = phase["series"]
        assert len(series["second"]) == len(series["calls_per_s"]) == 2
        assert all(c >= 0 for c in series["calls_per_s"])
        assert phase["market_updates"]["sent"] >= 1
        cpu = phase["cpu"]
        assert cpu["client_cpu_us_per_call"] > 0
        assert cpu["server_cores"] is None or cpu["server_cores"] > 0  # None without /proc
    # the baseline accepts everything; riskgate reports a real compute time
    base = report["phases"]["baseline"]
    assert base["accepted"] == base["decisions"]
    assert report["phases"]["riskgate"]["compute_us"]["p50"] > 0
    assert report["phases"]["riskgate"]["market_updates"]["ok"] >= 1
    ratios = report["ratios"]
    assert set(ratios) >= {"throughput", "p50", "p99"}
    assert all(v is not None and v > 0 for v in ratios.values())
    assert "riskgate ÷ baseline" in report["_stdout"]
    ji = report["journal_impact"]
    assert ji["fsync"] == "batch" and len(ji["rounds"]) == 1
    (rnd,) = ji["rounds"]
    assert (rnd["in_memory"], rnd["journal"]) == ("riskgate", "riskgate-journal")
    phases = report["phases"]
    assert rnd["ratios"]["throughput"] == pytest.approx(
        phases["riskgate-journal"]["throughput"]["calls_per_s"]
        / phases["riskgate"]["throughput"]["calls_per_s"]
    )
    assert ji["median"]["throughput"] == rnd["ratios"]["throughput"] == ji["throughput_pooled"]
    assert "journal (fsync batch) ÷ in memory" in report["_stdout"]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_png_is_written(report: dict[str, Any]) -> None:
    png = Path(report["files"]["png"])
    assert png.parent == Path(report["_out"])
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100


def test_same_seed_same_messages() -> None:
    spec = WorkloadSpec(accounts=7, legs=3)
    market = build_market(spec)
    orders = OrderSpec(tuple(account_ids(spec)), tuple(instrument_quotes(market)), hotspot=0.8)
    a, b = OrderFactory(orders, 5, 1), OrderFactory(orders, 5, 1)
    first = [a.check_orders(10).SerializeToString() for _ in range(500)]
    assert first == [b.check_orders(10).SerializeToString() for _ in range(500)]
    other = OrderFactory(orders, 5, 2)  # another client process: another stream
    assert other.check_orders(10).SerializeToString() != first[0]
    ids = [o.client_order_id for raw in first for o in pb.CheckOrdersRequest.FromString(raw).orders]
    assert len(set(ids)) == len(ids)  # unique client order ids
    parsed = [o for raw in first[:50] for o in pb.CheckOrdersRequest.FromString(raw).orders]
    assert all(o.quantity > 0 and o.side in (pb.SIDE_BUY, pb.SIDE_SELL) for o in parsed)
    assert all(o.HasField("price") and o.price > 0 for o in parsed if o.order_type == 1)
    # hot spot: the first 20 % of accounts (1 of 7 here, rounded) get about 80 % of orders
    hot = sum(o.account_id == orders.account_ids[0] for o in parsed) / len(parsed)
    assert 0.6 < hot < 0.95


def test_bulk_recording_equals_one_by_one() -> None:
    values = np.random.default_rng(3).lognormal(11.0, 2.5, 20_000).astype(np.int64)
    for figures in (2, 3):
        bulk, single = new_histogram(figures), new_histogram(figures)
        record_many(bulk, values)
        for v in values.tolist():
            single.record_value(v)
        assert bulk.get_total_count() == single.get_total_count() == values.size
        assert list(bulk.counts) == list(single.counts)
