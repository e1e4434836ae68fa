"""Small runs of the two latency benchmarks (``riskgate bench`` and ``riskgate bench-service``):
the commands work end to end and their reports hang together. No absolute timing
thresholds (CI machines are shared); only containment (a servicer call contains the engine's
decision, which contains a kernel call) is checked on the medians."""

from __future__ import annotations

import json

import pytest

from riskgate.cli import main


def test_bench_service_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "bench_service.json"
    code = main(["bench-service", "--legs", "10", "50", "--orders", "300", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "servicer p50" in text and "target: p99 <= 30 µs" in text
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert [(r["model"], r["legs"]) for r in rows] == [
        ("deribit", 10), ("deribit", 50), ("span", 10), ("span", 50),
    ]  # fmt: skip
    for r in rows:
        assert r["accepted"] == 300 - 30  # every timed order (after 30 warm-up what-ifs)
        for part in ("servicer", "engine", "kernel"):
            p = r[part]
            assert 0.0 < p["p50_us"] <= p["p90_us"] <= p["p99_us"] <= p["max_us"]
        # the servicer call contains the engine's decision, which contains a kernel call
        assert r["kernel"]["p50_us"] < r["engine"]["p50_us"] < r["servicer"]["p50_us"]


def test_bench_service_journal_compare_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "bench_service_journal.json"
    args = ["bench-service", "--legs", "10", "--orders", "200", "--journal", "compare"]
    code = main([*args, "--rounds", "2", "--journal-dir", str(tmp_path), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "in memory vs journal (fsync batch)" in text and "journal work per accept" in text
    res = json.loads(out.read_text())
    assert (res["journal"], res["compare_fsync"], res["rounds"]) == ("compare", "batch", 2)
    assert list(tmp_path.iterdir()) == [out]  # the temporary data directories are gone
    rows = res["rows"]
    assert [(r["model"], r["legs"]) for r in rows] == [("deribit", 10), ("span", 10)]
    for r in rows:
        on = r["journal_on"]
        # the same accounts and orders in both engines: the same decisions
        assert r["accepted"] == on["accepted"] == 200 - 20
        for p in (r["servicer"], on["servicer"], on["engine"]):
            assert 0.0 < p["p50_us"] <= p["p90_us"] <= p["p99_us"] <= p["p99_9_us"] <= p["max_us"]
        for k in ("p50_us", "p99_us", "p99_9_us"):
            assert on["servicer_added_us"][k] == pytest.approx(on["servicer"][k] - r["servicer"][k])
        parts = on["journal_parts"]
        assert parts["events"] == on["accepted"]  # every timed accept, read back and re-timed
        assert parts["record_bytes_mean"] > 100
        for part in ("encode", "append", "os_write"):
            assert 0.0 < parts[part]["p50_us"] <= parts[part]["max_us"]
        assert "journal_parts" not in r  # the in-memory engine wrote nothing


def test_bench_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--legs", "40", "--orders", "300", "--full-revals", "5", "--chain", "50"]
    assert main([*args, "--json", str(out)]) == 0
    assert "what-if" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert set(res["models"]) == {"deribit", "span"}
    for m in res["models"].values():
        assert m["whatif"]["median_us"] < m["full_revaluation"]["median_us"]
        assert m["speedup_median"] > 1.0
        assert m["chain_build"]["options"] == 50


def test_bench_update_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "bench_update.json"
    args = ["bench-update", "--accounts", "40", "--legs", "5", "--updates", "2"]
    assert main([*args, "--json", str(out)]) == 0
    assert "re-margin" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert (res["accounts"], res["legs"], res["updates"]) == (40, 5, 2)
    assert res["build_ms"]["median"] > 0.0 and res["update_ms"]["median"] > 0.0
    assert res["update_ms"]["median"] <= res["update_ms"]["max"]
    assert res["updates_per_s"] == pytest.approx(1e3 / res["update_ms"]["median"])


@pytest.mark.parametrize("flag", ["--accounts", "--legs", "--updates"])
def test_bench_update_refuses_non_positive_sizes(flag: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench-update", flag, "0"])
    assert exit_.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_bench_auth_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "bench_auth.json"
    assert main(["bench-auth", "--calls", "200", "--rounds", "2", "--json", str(out)]) == 0
    assert "added (median)" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["calls_per_config"] == 400
    assert set(res["stats"]) == {
        f"{kind} · {variant}"
        for kind, variants in (
            ("no-op", ("direct", "auth off", "auth on", "auth on, audited", "auth on, cert")),
            ("WhatIf", ("direct", "auth off", "auth on")),
        )
        for variant in variants
    }
    for s in res["stats"].values():
        assert 0.0 < s["median_us"] <= s["p99_us"]


@pytest.mark.slow
def test_bench_recovery_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "bench_recovery.json"
    args = ["bench-recovery", "--accounts", "20", "--legs", "3", "--events", "1200"]
    args += ["--tail", "150", "--repeats", "1", "--restarts", "1", "--warm-starts", "0"]
    args += ["--data-dir", str(tmp_path)]
    assert main([*args, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "journal only" in text and "snapshot + tail" in text and "SERVING" in text
    assert list(tmp_path.iterdir()) == [out]  # the data directories are gone
    res = json.loads(out.read_text())
    b = res["build"]
    assert b["accounts"] == 20 and b["setup_events"] == 1 + 2 * 20  # market, upsert, positions
    assert 1200 <= b["events"] <= 1202  # the last order's steps may run past the mark
    flow = b["order_flow"]
    assert (
        flow["accepted"] <= flow["orders"]
        and flow["filled"] + flow["cancelled"] <= flow["acknowledged"]
    )
    snap = b["snapshot"]
    assert snap["seq"] + snap["tail_events"] == b["events"] and 0 < snap["tail_events"] <= 152
    journal, snapshot = res["replay"]["journal"], res["replay"]["snapshot"]
    # every recovery ends where the journaling engine ended, in the same state
    assert journal["events_replayed"] == journal["runs"][0]["last_seq"] == b["events"]
    assert snapshot["events_replayed"] == snap["tail_events"]
    for r in (journal, snapshot):
        assert all(x["state_hash"] == b["state_hash"] for x in r["runs"])
        assert r["events_per_s_recover"] == pytest.approx(r["events_replayed"] / r["recover_s"])
        assert r["total_s"] == pytest.approx(r["open_s"] + r["recover_s"])
    jb, sb = journal["breakdown"], snapshot["breakdown"]
    assert jb["events"] == sum(k["count"] for k in jb["by_type"].values()) == b["events"]
    assert jb["by_type"]["OrderAccepted"]["count"] == flow["accepted"]
    assert jb["by_type"]["AccountUpserted"]["count"] == 20
    assert sb["tail_events"] == snap["tail_events"]
    assert sb["state_hash_check_s"] > 0.0 and sb["snapshot_decode_s"] > 0.0
    restart = res["restart"]
    clean = res["replay"]["clean"]  # the snapshot of a clean shutdown: nothing to replay
    assert clean["events_replayed"] == 0 and clean["runs"][0]["last_seq"] == b["events"]
    assert all(x["state_hash"] == b["state_hash"] for x in clean["runs"])
    for r in (journal, snapshot, clean):
        assert r["recover_s"] >= r["recovery_seconds"] > 0.0
    assert set(restart) == {"empty", "journal", "snapshot", "clean"}
    for case, r in restart.items():
        (run,) = r["runs"]
        assert run["exit_code"] == 0
        assert 0.0 < run["serving_s"] == r["serving_s"]["median"]
        if case != "empty":  # the service recovered the same state
            assert run["state_hash"] == b["state_hash"] and run["accounts"] == 20
            assert 0.0 < run["recovery_s"] < run["serving_s"]


def test_bench_update_sweeps_account_counts(tmp_path, capsys) -> None:
    out = tmp_path / "bench_update.json"
    args = ["bench-update", "--accounts", "10", "30", "--legs", "3", "--updates", "2"]
    assert main([*args, "--json", str(out)]) == 0
    assert "re-margin µs/account" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert [r["accounts"] for r in res["sweep"]] == [10, 30]
    for r in res["sweep"]:
        assert r["update_ms"]["median"] <= r["update_ms"]["p99"] <= r["update_ms"]["max"]
