"""A short run of the fuzz command (``python -m loadtest.fuzz``): 2,000 typed and raw-byte
requests over every RPC, with and without credentials, against a live server; no crash, no
hang, no INTERNAL/UNKNOWN, no state change from a refused call. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from loadtest.fuzz import RPCS, main, run
from loadtest.fuzz_report import FAILURES
from riskgate.server.servicer import RiskGateServicer


def test_a_short_fuzz_run_finds_nothing() -> None:
    report = run(requests=2_000, seconds=600.0, seed=7, deadline=30.0)
    failures = {k: report.failures[k] for k in FAILURES}
    assert failures == dict.fromkeys(FAILURES, 0), report.examples
    assert report.ok and report.requests == 2_000 and report.stopped_by == "requests"
    # every RPC was called, some calls got through to the engine, some were refused
    assert set(report.by_rpc) == set(RPCS)
    assert all(report.raw_by_rpc[rpc] > 0 for rpc in RPCS)
    for code in ("OK", "UNAUTHENTICATED", "PERMISSION_DENIED", "INVALID_ARGUMENT"):
        assert report.by_code[code] > 0, code
    assert report.decisions["ACCEPTED"] > 0
    assert report.state["views_compared"] > 0


def test_the_command_writes_its_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "fuzz.json"
    assert main(["--requests", "200", "--seed", "3", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["ok"] and data["requests"] == 200 and data["seed"] == 3
    assert set(data["failures"]) == set(FAILURES) and not any(data["failures"].values())
    assert "PASS" in capsys.readouterr().out


def test_it_reports_a_refused_call_that_changed_state_and_an_internal_error(monkeypatch) -> None:
    """The checks themselves: a server whose UpsertAccount applies the change and then
    answers INVALID_ARGUMENT, and whose MaxQuantity raises, fails the run."""
    real = RiskGateServicer.UpsertAccount

    def upsert_then_refuse(self, request, context):
        real(self, request, context)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused after the change")

    def max_quantity_fails(self, request, context):
        raise ValueError("broken")

    monkeypatch.setattr(RiskGateServicer, "UpsertAccount", upsert_then_refuse)
    monkeypatch.setattr(RiskGateServicer, "MaxQuantity", max_quantity_fails)
    report = run(requests=400, seconds=600.0, seed=11, deadline=30.0)
    assert not report.ok
    assert report.failures["refused_state_changes"] > 0
    assert report.failures["internal_unknown"] > 0
    kinds = {ex["kind"] for ex in report.examples}
    assert {"refused_state_changes", "internal_unknown"} <= kinds
