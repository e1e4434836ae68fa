"""docs/performance.md's tables are what scripts/perf_report.py writes from the kept result
files, so the report cannot drift from its runs."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("perf_report", ROOT / "scripts/perf_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_match_the_result_files(capsys: pytest.CaptureFixture) -> None:
    assert _script().main(["check"]) == 0, capsys.readouterr().err


def test_every_kept_run_is_a_headline_run_of_one_clean_commit() -> None:
    pr = _script()
    runs = pr.load_results()
    assert all(runs[k] for k, _ in pr.KINDS), "a headline load without a run"
    every = [r for rs in runs.values() for r in rs]
    assert len({r["riskgate_source"]["commit"] for r in every}) == 1
    assert not any(r["riskgate_source"]["dirty"] for r in every)
    text = (ROOT / "docs/performance.md").read_text()
    commit = every[0]["riskgate_source"]["commit"][:7]
    assert f"Measured at riskgate commit `{commit}`" in text


def test_the_instrument_count_is_the_runs_own() -> None:
    counts = {
        json.loads(p.read_text())["config"]["instruments"]
        for p in (ROOT / "docs/performance/results").glob("*.json")
    }
    text = (ROOT / "docs/performance.md").read_text()
    stated = {int(n.replace(",", "")) for n in re.findall(r"([\d,]+) live instruments", text)}
    assert stated and stated <= counts


def test_render_refuses_unknown_or_missing_blocks() -> None:
    pr = _script()
    doc = "a\n<!-- generated: summary -->\nold\n<!-- end generated: summary -->\nb\n"
    assert pr.render(doc, {"summary": "new"}) == doc.replace("old", "new")
    with pytest.raises(KeyError):
        pr.render(doc, {"summary": "new", "runs": "x"})
    with pytest.raises(KeyError):
        pr.render(doc.replace("summary", "other"), {"summary": "new"})


def test_kept_results_carry_no_machine_paths() -> None:
    for path in (ROOT / "docs/performance/results").glob("*.json"):
        text = path.read_text()
        assert not re.search(r'"/|\s/(home|root|tmp|work|usr)/', text), path.name


def test_portable_paths() -> None:
    pr = _script()
    cmd = f"/x/venv/bin/python3.11 -m riskgate.cli serve --data-dir {pr.ROOT}/data --log /var/log/a"
    assert pr._portable({"c": [cmd]}) == {
        "c": ["python -m riskgate.cli serve --data-dir data --log …"]
    }


def test_update_sweep_table_from_hand_made_runs() -> None:
    pr = _script()

    def run(accounts: int, wall: float, cpu: float) -> dict:
        return {
            "accounts": accounts, "legs": 10,
            "update_ms": {"median": wall, "p99": 2 * wall},
            "update_cpu_ms": {"median": cpu}, "build_cpu_ms": {"median": 5.0},
        }  # fmt: skip

    sweeps = {
        "before": [{"sweep": [run(10, 40.0, 100.0), run(20, 80.0, 200.0)]} for _ in range(3)],
        "after": [run(10, 10.0, 25.0), run(10, 12.0, 30.0), run(10, 8.0, 20.0)],
    }
    rows = pr._update_sweep_table(sweeps)
    assert len(rows) == 3  # header, rule, and only the count both sides have
    assert rows[2].startswith("| 10 × 10 | 3 / 3 | 40.0 / 80.0 | 100.0 (5.0) | 10.0 / 20.0 |")
    assert rows[2].endswith("| **25.0 (5.0)** | 0.25 × |")


def test_kept_update_sweeps_cover_before_and_after() -> None:
    sweeps = _script().load_update_sweeps()
    assert sweeps["before"] and sweeps["after"]
    assert all("update_cpu_ms" in one for r in sweeps["after"] for one in r.get("sweep", [r]))
