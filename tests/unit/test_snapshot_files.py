"""Atomic snapshot files (riskgate.engine.journal.snapshots) on real files in tmp_path.

The expected bytes are built here from the layout the module docstring documents. Damaged
snapshots (bit flips, truncation, a name that disagrees with the header) must be reported
invalid and skipped, never returned.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from riskgate.engine.journal import (
    SnapshotError,
    SnapshotInfo,
    latest_snapshot,
    list_snapshots,
    prune_snapshots,
    write_snapshot,
)

HEADER = 32


def expected_file(seq: int, payload: bytes) -> bytes:
    prefix = b"RGSNAP1\n" + struct.pack("<QQI", seq, len(payload), zlib.crc32(payload))
    return prefix + struct.pack("<I", zlib.crc32(prefix)) + payload


def temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(".snapshot-*.tmp"))


def damage(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_write_then_read_back(tmp_path: Path) -> None:
    directory = tmp_path / "snaps"  # created by the first write
    path = write_snapshot(directory, 42, b"engine state")
    assert path == directory / "snapshot-00000000000000000042.snap"
    assert path.read_bytes() == expected_file(42, b"engine state")
    assert latest_snapshot(directory) == (42, b"engine state", path)
    assert list_snapshots(directory) == [SnapshotInfo(42, path, HEADER + 12, True, "")]
    assert temp_files(directory) == []


def test_empty_or_missing_directory_has_no_snapshot(tmp_path: Path) -> None:
    assert latest_snapshot(tmp_path / "absent") is None
    assert list_snapshots(tmp_path / "absent") == []
    assert prune_snapshots(tmp_path / "absent") == []
    assert latest_snapshot(tmp_path) is None
    (tmp_path / "snapshot-notanumber.snap").write_bytes(b"junk")  # not a snapshot name
    assert list_snapshots(tmp_path) == []


def test_the_newest_valid_snapshot_is_chosen(tmp_path: Path) -> None:
    for seq in (10, 300, 20):
        write_snapshot(tmp_path, seq, b"state at %d" % seq)
    assert latest_snapshot(tmp_path)[:2] == (300, b"state at 300")
    assert [i.seq for i in list_snapshots(tmp_path)] == [300, 20, 10]
    write_snapshot(tmp_path, 300, b"rewritten")  # same seq: replaced
    assert latest_snapshot(tmp_path)[:2] == (300, b"rewritten")
    assert write_snapshot(tmp_path, 0, b"").name == "snapshot-00000000000000000000.snap"


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (0, "magic"),
        (9, "header CRC"),
        (17, "header CRC"),
        (25, "header CRC"),
        (30, "header CRC"),
        (HEADER, "payload CRC"),
        (HEADER + 7, "payload CRC"),
    ],
)
def test_a_damaged_newest_snapshot_is_skipped(tmp_path: Path, offset: int, reason: str) -> None:
    write_snapshot(tmp_path, 1, b"older state")
    newest = write_snapshot(tmp_path, 2, b"newer state")
    damage(newest, offset)
    assert latest_snapshot(tmp_path)[:2] == (1, b"older state")
    infos = list_snapshots(tmp_path)
    assert [(i.seq, i.valid) for i in infos] == [(2, False), (1, True)]
    assert reason in infos[0].error
    assert infos[0].size_bytes == newest.stat().st_size


@pytest.mark.parametrize("keep", [0, 5, HEADER - 1, HEADER, HEADER + 1, HEADER + 999])
def test_a_truncated_snapshot_is_detected(tmp_path: Path, keep: int) -> None:
    write_snapshot(tmp_path, 1, b"older")
    newest = write_snapshot(tmp_path, 2, bytes(range(256)) * 4)
    with open(newest, "r+b") as f:
        f.truncate(keep)
    assert latest_snapshot(tmp_path)[:2] == (1, b"older")
    info = list_snapshots(tmp_path)[0]
    assert (info.seq, info.valid, info.size_bytes) == (2, False, keep)
    assert "truncated" in info.error


def test_trailing_bytes_and_a_renamed_file_are_invalid(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 5, b"five")
    with open(path, "ab") as f:
        f.write(b"extra")
    renamed = write_snapshot(tmp_path, 6, b"six").rename(
        tmp_path / "snapshot-00000000000000000007.snap"
    )
    assert latest_snapshot(tmp_path) is None
    errors = {i.seq: i.error for i in list_snapshots(tmp_path)}
    assert "after the payload" in errors[5]
    assert "does not match" in errors[7]
    assert renamed.exists()


def test_a_payload_of_a_few_megabytes_round_trips(tmp_path: Path) -> None:
    payload = random.Random(7).randbytes(5 * 2**20 + 3)
    path = write_snapshot(tmp_path, 123456789, bytearray(payload))
    assert path.stat().st_size == HEADER + len(payload)
    seq, got, got_path = latest_snapshot(tmp_path)
    assert (seq, got_path) == (123456789, path)
    assert got == payload
    write_snapshot(tmp_path, 123456790, memoryview(payload)[1:])
    assert latest_snapshot(tmp_path)[1] == payload[1:]


def test_temp_files_are_ignored_and_cleaned_up(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 3, b"good")
    mine = tmp_path / f".snapshot-00000000000000000009.{os.getpid()}.0badf00d.tmp"
    crashed = tmp_path / f".snapshot-00000000000000000008.{dead_pid()}.12345678.tmp"
    alive = tmp_path / ".snapshot-00000000000000000010.1.abcdef01.tmp"  # pid 1 still runs
    for leftover in (mine, crashed, alive):
        leftover.write_bytes(expected_file(9, b"half written")[:20])
    assert latest_snapshot(tmp_path)[0] == 3
    assert [i.seq for i in list_snapshots(tmp_path)] == [3]

    write_snapshot(tmp_path, 4, b"next")
    assert temp_files(tmp_path) == [alive]  # another live writer may own that one
    alive.unlink()
    crashed.write_bytes(b"again")
    assert crashed in prune_snapshots(tmp_path)
    assert temp_files(tmp_path) == []


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    write_snapshot(tmp_path, 1, b"one")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(SnapshotError, match=r"snapshot-00000000000000000002\.snap"):
        write_snapshot(tmp_path, 2, b"two")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot-00000000000000000001.snap"]
    with pytest.raises(SnapshotError):
        write_snapshot(tmp_path, -1, b"x")
    with pytest.raises(SnapshotError):
        write_snapshot(tmp_path, "7", b"x")  # type: ignore[arg-type]


def test_prune_keeps_the_newest_valid_ones(tmp_path: Path) -> None:
    paths = {seq: write_snapshot(tmp_path, seq, b"s%d" % seq) for seq in range(1, 6)}
    assert prune_snapshots(tmp_path, keep=2) == [paths[3], paths[2], paths[1]]
    assert [i.seq for i in list_snapshots(tmp_path)] == [5, 4]
    assert prune_snapshots(tmp_path, keep=2) == []
    assert prune_snapshots(tmp_path, keep=1) == [paths[4]]
    assert latest_snapshot(tmp_path)[:2] == (5, b"s5")
    with pytest.raises(ValueError, match="at least 1"):
        prune_snapshots(tmp_path, keep=0)


def test_prune_with_invalid_snapshots(tmp_path: Path) -> None:
    paths = {seq: write_snapshot(tmp_path, seq, b"s%d" % seq) for seq in range(1, 8)}
    for seq in (7, 5, 2):  # the newest is damaged, and two older ones
        damage(paths[seq], HEADER)
    deleted = prune_snapshots(tmp_path, keep=2)
    # newest valid 6 and 4 kept; damaged 7 is newer than any valid one: kept to inspect
    assert deleted == [paths[5], paths[3], paths[2], paths[1]]
    assert [(i.seq, i.valid) for i in list_snapshots(tmp_path)] == [
        (7, False),
        (6, True),
        (4, True),
    ]
    assert latest_snapshot(tmp_path)[0] == 6


def test_prune_deletes_nothing_without_a_valid_snapshot(tmp_path: Path) -> None:
    paths = [write_snapshot(tmp_path, seq, b"x") for seq in (1, 2)]
    for path in paths:
        damage(path, HEADER)
    assert prune_snapshots(tmp_path, keep=1) == []
    assert all(p.exists() for p in paths)
