"""The segmented file journal (riskgate.engine.journal.file) on real files in tmp_path.

Records are encoded and segment files parsed here independently of the module, from the
layout its docstring documents, so a change of the on-disk format fails these tests.
Torn tails are made by cutting the last segment at every byte of its last record;
corruption by flipping single bytes of earlier records, which must be refused (not cut).
"""

from __future__ import annotations

import pickle
import random
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest

from riskgate.engine.journal import (
    FSYNC_POLICIES,
    FileJournal,
    JournalCorrupt,
    JournalError,
    scan_journal,
)
from riskgate.engine.journal import file as jf

SEG_HEADER = 16
REC_HEADER = 20


def encode_record(seq: int, payload: bytes) -> bytes:
    prefix = struct.pack("<IQI", len(payload), seq, zlib.crc32(payload))
    return prefix + struct.pack("<I", zlib.crc32(prefix)) + payload


def segment_bytes_of(first_seq: int, payloads: list[bytes]) -> bytes:
    head = b"RGJRNL1\n" + struct.pack("<Q", first_seq)
    return head + b"".join(encode_record(first_seq + i, p) for i, p in enumerate(payloads))


def record_offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every record of a well-formed segment file."""
    data = path.read_bytes()
    out, pos = [], SEG_HEADER
    while pos < len(data):
        n = struct.unpack_from("<I", data, pos)[0]
        out.append((pos, REC_HEADER + n))
        pos += REC_HEADER + n
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.log"))


def payload_for(seq: int) -> bytes:
    rnd = random.Random(seq)
    return rnd.randbytes(rnd.randrange(0, 120))


def fill(directory: Path, n: int, *, first: int = 1, **kwargs) -> dict[int, bytes]:
    written = {}
    with FileJournal(directory, fsync="none", **kwargs) as j:
        for seq in range(first, first + n):
            written[seq] = payload_for(seq)
            j.append(seq, written[seq])
    return written


def read_all(directory: Path, **kwargs) -> list[tuple[int, bytes]]:
    with FileJournal(directory, fsync="none", **kwargs) as j:
        return list(j.records())


def snapshot_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --------------------------------------------------------------------------- format


def test_files_hold_exactly_the_documented_layout(tmp_path: Path) -> None:
    with FileJournal(tmp_path, fsync="none") as j:
        j.append(7, b"hello")
        j.append_batch(8, [b"", b"world" * 3])
    (path,) = segments(tmp_path)
    assert path.name == "journal-00000000000000000007.log"
    assert path.read_bytes() == segment_bytes_of(7, [b"hello", b"", b"world" * 3])
    assert (tmp_path / "LOCK").exists()


def test_a_hand_written_segment_is_read(tmp_path: Path, monkeypatch) -> None:
    payloads = [b"a", b"bb", b"ccc"]
    (tmp_path / "journal-00000000000000000003.log").write_bytes(segment_bytes_of(3, payloads))
    calls = []
    real_fsync = jf._fsync
    monkeypatch.setattr(jf, "_fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    with FileJournal(tmp_path, fsync="none") as j:
        # a crashed writer's records may be in the page cache only: opening fsyncs them
        assert calls
        assert (j.first_seq, j.last_seq, j.durable_seq) == (3, 5, 5)
        assert list(j.records()) == [(3, b"a"), (4, b"bb"), (5, b"ccc")]


def test_an_append_is_in_the_file_when_it_returns_without_a_system_call(
    tmp_path: Path, monkeypatch
) -> None:
    """Appends copy into the preallocated, mapped segment: another reader of the file sees
    them at once (the page cache), before any fsync; closing cuts the preallocation."""
    calls: list[int] = []
    real_fsync = jf._fsync
    monkeypatch.setattr(jf, "_fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    with FileJournal(tmp_path, fsync="none", segment_bytes=4096) as j:
        j.append(1, b"first")  # creates the segment
        (seg,) = segments(tmp_path)
        assert seg.stat().st_size == 4096  # preallocated
        calls.clear()
        j.append(2, b"x" * 200)
        j.append_batch(3, [b"a" * 10, b"b" * 20, b"c" * 30])
        assert calls == []
        want = segment_bytes_of(1, [b"first", b"x" * 200, b"a" * 10, b"b" * 20, b"c" * 30])
        data = seg.read_bytes()
        assert data[: len(want)] == want
        assert data[len(want) :] == bytes(4096 - len(want))
        assert scan_journal(tmp_path).last_seq == 5  # a reader beside the writer
    assert seg.stat().st_size == len(want)
    assert read_all(tmp_path)[1:] == [
        (2, b"x" * 200),
        (3, b"a" * 10),
        (4, b"b" * 20),
        (5, b"c" * 30),
    ]


_CRASH_WRITER = """
import os, signal, sys
from riskgate.engine.journal.file import FileJournal
j = FileJournal(sys.argv[1], fsync=sys.argv[2], segment_bytes=2048)
for seq in range(1, 41):
    j.append(seq, b"%d:" % seq + b"p" * (seq % 7) * 9)
j.append_batch(41, [b"batch-a", b"batch-b"])
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("fsync", ["none", "batch"])
def test_a_killed_writer_loses_no_append(tmp_path: Path, fsync: str) -> None:
    """kill -9 right after the last append, nothing closed or fsynced: every record is
    there; the active segment's preallocated zeros are a zero tail, cut on opening."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _CRASH_WRITER, str(tmp_path), fsync])
    assert proc.returncode == -9
    want = [(s, b"%d:" % s + b"p" * (s % 7) * 9) for s in range(1, 41)]
    want += [(41, b"batch-a"), (42, b"batch-b")]
    assert len(segments(tmp_path)) > 1
    assert all(p.stat().st_size <= 2048 for p in segments(tmp_path))
    last = segments(tmp_path)[-1]
    used = sum(n for _, n in record_offsets_until_zero(last)) + SEG_HEADER
    with FileJournal(tmp_path, fsync="none", segment_bytes=2048) as j:
        assert j.truncated_bytes == 2048 - used  # only zeros were cut
        assert list(j.records()) == want
        j.append(43, b"after")
    assert read_all(tmp_path) == [*want, (43, b"after")]


def record_offsets_until_zero(path: Path) -> list[tuple[int, int]]:
    """:func:`record_offsets` of a segment followed by zeros (a preallocated one)."""
    data = path.read_bytes()
    out, pos = [], SEG_HEADER
    while pos + REC_HEADER <= len(data) and data[pos : pos + REC_HEADER] != bytes(REC_HEADER):
        n = struct.unpack_from("<I", data, pos)[0]
        out.append((pos, REC_HEADER + n))
        pos += REC_HEADER + n
    return out


# --------------------------------------------------------------------------- round trips


def test_round_trip_over_segments_reopen_continue_and_ranges(tmp_path: Path) -> None:
    written = fill(tmp_path, 400, segment_bytes=1024)
    files = segments(tmp_path)
    assert len(files) >= 10
    for path in files:  # each file is named after its first record and not oversized
        first = int(path.name[len("journal-") : -len(".log")])
        assert path.read_bytes()[8:16] == struct.pack("<Q", first)
        assert path.stat().st_size <= 1024
    assert read_all(tmp_path) == sorted(written.items())

    with FileJournal(tmp_path, fsync="none", segment_bytes=1024) as j:
        assert (j.first_seq, j.last_seq, j.truncated_bytes) == (1, 400, 0)
        for seq in range(401, 601):
            written[seq] = payload_for(seq)
            j.append(seq, written[seq])
        assert list(j.records()) == sorted(written.items())

    with FileJournal(tmp_path, fsync="none", segment_bytes=1024) as j:
        assert (j.first_seq, j.last_seq) == (1, 600)
        boundaries = [int(p.name[8:28]) for p in segments(tmp_path)]
        for lo, hi in [(1, 1), (1, 600), (250, 251), (399, 402), (600, 600), (17, None)]:
            want = [(s, written[s]) for s in range(lo, (hi or 600) + 1)]
            assert list(j.records(lo, hi)) == want, (lo, hi)
        for b in boundaries[1:4]:  # ranges starting and ending at segment boundaries
            assert [s for s, _ in j.records(b, b)] == [b]
            assert [s for s, _ in j.records(b - 1, b + 1)] == [b - 1, b, b + 1]
        assert list(j.records(601)) == []
        assert list(j.records(10, 9)) == []
        assert [s for s, _ in j.records(590, 10_000)] == list(range(590, 601))


def test_big_records_and_batches_spanning_read_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jf, "_READ_CHUNK", 64)  # records cross every read boundary
    big = random.Random(1).randbytes(5000)
    with FileJournal(tmp_path, fsync="none", segment_bytes=4096) as j:
        j.append(1, b"small")
        j.append(2, big)  # larger than a segment: a segment of its own
        j.append_batch(3, [payload_for(s) for s in range(3, 40)])
        assert list(j.records()) == [(1, b"small"), (2, big)] + [
            (s, payload_for(s)) for s in range(3, 40)
        ]
    with FileJournal(tmp_path, fsync="none", segment_bytes=4096) as j:
        assert j.last_seq == 39
        assert [s for s, _ in j.records(2, 3)] == [2, 3]


def test_records_sees_what_was_appended_before_the_call(tmp_path: Path) -> None:
    with FileJournal(tmp_path, fsync="none", segment_bytes=512) as j:
        for seq in range(1, 51):
            j.append(seq, payload_for(seq))
        it = j.records()
        first = [next(it) for _ in range(10)]
        for seq in range(51, 101):  # new segments and appends to the one being read
            j.append(seq, payload_for(seq))
        rest = list(it)
        assert [s for s, _ in first + rest] == list(range(1, 51))
        assert [s for s, _ in j.records()] == list(range(1, 101))


def test_records_checks_crcs_of_what_it_reads(tmp_path: Path) -> None:
    with FileJournal(tmp_path, fsync="none") as j:
        for seq in range(1, 11):
            j.append(seq, b"payload %d" % seq)
        (path,) = segments(tmp_path)
        offset, _ = record_offsets(path)[4]
        data = bytearray(path.read_bytes())
        data[offset + REC_HEADER] ^= 0x01  # the payload of seq 5, changed under the journal
        path.write_bytes(bytes(data))
        with pytest.raises(JournalCorrupt) as err:
            list(j.records())
        assert (err.value.path, err.value.offset) == (path, offset)


# --------------------------------------------------------------------------- sequence rules


def test_append_refuses_a_wrong_seq_and_reopen_restores_the_bounds(tmp_path: Path) -> None:
    with FileJournal(tmp_path, fsync="none") as j:
        assert (j.first_seq, j.last_seq, j.durable_seq) == (0, 0, 0)
        with pytest.raises(JournalError, match="at least 1"):
            j.append(0, b"x")
        with pytest.raises(JournalError):
            j.append(-3, b"x")
        j.append(1000, b"a")  # the first record may start anywhere (after a snapshot)
        with pytest.raises(JournalError, match="next seq is 1001"):
            j.append(1002, b"b")
        with pytest.raises(JournalError, match="next seq is 1001"):
            j.append(1000, b"again")
        with pytest.raises(JournalError, match="next seq is 1001"):
            j.append_batch(999, [b"c", b"d"])
        j.append_batch(1001, [b"c", b"d"])
        assert (j.first_seq, j.last_seq) == (1000, 1002)
    with FileJournal(tmp_path, fsync="none") as j:
        assert (j.first_seq, j.last_seq) == (1000, 1002)
        with pytest.raises(JournalError, match="next seq is 1003"):
            j.append(1, b"x")
        j.append(1003, b"e")
        assert list(j.records()) == [(1000, b"a"), (1001, b"c"), (1002, b"d"), (1003, b"e")]


def test_unknown_policy_and_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'sometimes'.*batch, always, none"):
        FileJournal(tmp_path, fsync="sometimes")
    assert FSYNC_POLICIES == ("batch", "always", "none")
    j = FileJournal(tmp_path / "new" / "dir", fsync="none")  # created if missing
    with pytest.raises(JournalError, match="last seq written is 0"):
        j.wait_durable(1)
    j.append(1, b"x")
    j.close()
    j.close()  # idempotent
    assert j.durable_seq == 1
    with pytest.raises(JournalError, match="closed"):
        j.append(2, b"y")
    with pytest.raises(JournalError, match="closed"):
        j.records()


# --------------------------------------------------------------------------- torn tails


def _torn_cases(tmp_path: Path, payloads: dict[int, bytes]) -> None:
    """Cut the last segment at every byte of its last record; reopen, check, go on."""
    base = tmp_path / "base"
    last_seq = max(payloads)
    last_seg = segments(base)[-1]
    start, length = record_offsets(last_seg)[-1]
    only_record = start == SEG_HEADER
    for cut in range(start, start + length):
        case = tmp_path / f"cut-{cut}"
        shutil.copytree(base, case)
        seg = case / last_seg.name
        with open(seg, "r+b") as f:
            f.truncate(cut)
        with FileJournal(case, fsync="none", segment_bytes=512) as j:
            assert j.truncated_bytes == cut - start, cut
            assert j.last_seq == last_seq - 1
            assert list(j.records()) == [(s, payloads[s]) for s in range(1, last_seq)]
            assert seg.exists() != only_record  # a segment left without records is removed
            j.append(last_seq, b"replacement")
        with FileJournal(case, fsync="none", segment_bytes=512) as j:
            assert j.truncated_bytes == 0
            assert list(j.records())[-2:] == [
                (last_seq - 1, payloads[last_seq - 1]),
                (last_seq, b"replacement"),
            ]
        shutil.rmtree(case)


def test_torn_tail_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    payloads = fill(tmp_path / "base", 30, segment_bytes=512)
    assert len(segments(tmp_path / "base")) > 1
    assert record_offsets(segments(tmp_path / "base")[-1])[-1][0] > SEG_HEADER
    _torn_cases(tmp_path, payloads)


def test_torn_tail_of_a_segment_holding_one_record(tmp_path: Path) -> None:
    payloads = fill(tmp_path / "base", 1, segment_bytes=512)
    with FileJournal(tmp_path / "base", fsync="none", segment_bytes=512) as j:
        payloads[2] = b"z" * 500  # too big for the active segment: a new one holds it alone
        j.append(2, payloads[2])
    assert len(segments(tmp_path / "base")) == 2
    _torn_cases(tmp_path, payloads)


def test_torn_segment_header_is_repaired(tmp_path: Path) -> None:
    payloads = fill(tmp_path / "base", 5, segment_bytes=512)
    new_seg = tmp_path / "base" / "journal-00000000000000000006.log"
    header = b"RGJRNL1\n" + struct.pack("<Q", 6)
    for keep in range(SEG_HEADER + 1):  # a crash while a segment was being started
        case = tmp_path / f"head-{keep}"
        shutil.copytree(tmp_path / "base", case)
        (case / new_seg.name).write_bytes(header[:keep])
        with FileJournal(case, fsync="none", segment_bytes=512) as j:
            assert j.truncated_bytes == (keep if keep < SEG_HEADER else 0)
            assert list(j.records()) == sorted(payloads.items())
            assert not (case / new_seg.name).exists()
            j.append(6, b"six")
        assert read_all(case)[-1] == (6, b"six")


def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    payloads = fill(tmp_path, 20, segment_bytes=512)
    last_seg = segments(tmp_path)[-1]
    start, length = record_offsets(last_seg)[-1]
    with open(last_seg, "ab") as f:  # file size extended, data never written
        f.write(bytes(4096))
    with FileJournal(tmp_path, fsync="none", segment_bytes=512) as j:
        assert j.truncated_bytes == 4096
        assert list(j.records()) == sorted(payloads.items())
    assert last_seg.stat().st_size == start + length

    data = bytearray(last_seg.read_bytes())  # the last record itself zeroed
    data[start:] = bytes(len(data) - start)
    last_seg.write_bytes(bytes(data))
    with FileJournal(tmp_path, fsync="none", segment_bytes=512) as j:
        assert j.truncated_bytes == length
        assert j.last_seq == 19
        j.append(20, b"again")
    assert read_all(tmp_path)[-1] == (20, b"again")


def test_a_last_segment_of_zeros_is_a_torn_tail(tmp_path: Path) -> None:
    payloads = fill(tmp_path, 5)
    (tmp_path / "journal-00000000000000000006.log").write_bytes(bytes(300))
    with FileJournal(tmp_path, fsync="none") as j:
        assert (j.truncated_bytes, j.last_seq) == (300, 5)
        assert list(j.records()) == sorted(payloads.items())
    assert len(segments(tmp_path)) == 1


def test_bad_payload_crc_of_the_final_record_is_a_torn_tail(tmp_path: Path) -> None:
    payloads = fill(tmp_path, 10)
    (seg,) = segments(tmp_path)
    start, length = record_offsets(seg)[-1]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert scan_journal(tmp_path).torn_tail_bytes == length
    with FileJournal(tmp_path, fsync="none") as j:
        assert (j.truncated_bytes, j.last_seq) == (length, 9)
        assert list(j.records()) == [(s, payloads[s]) for s in range(1, 10)]
    assert seg.stat().st_size == start


# --------------------------------------------------------------------------- corruption


def _flip_cases(directory: Path) -> list[tuple[Path, int, int]]:
    """(segment, byte to flip, offset of its record) in the first, a middle and the last
    segment (a record that is not the last): header bytes and payload bytes."""
    files = segments(directory)
    cases = []
    for seg in (files[0], files[len(files) // 2], files[-1]):
        offsets = record_offsets(seg)
        for k in (0, len(offsets) // 2, len(offsets) - 2):
            if seg != files[-1] or k < len(offsets) - 1:
                start, length = offsets[k]
                for delta in (0, 3, 4, 11, 12, 15, 16, 19, REC_HEADER, length - 1):
                    if delta < length:
                        cases.append((seg, start + delta, start))
        if seg == files[len(files) // 2]:  # the very last record of a segment that is not last
            start, length = offsets[-1]
            cases += [(seg, start + length - 1, start), (seg, start + 5, start)]
    return cases


def test_flipped_bytes_in_earlier_records_are_reported_not_cut(tmp_path: Path) -> None:
    base = tmp_path / "base"
    fill(base, 60, segment_bytes=600)
    assert len(segments(base)) >= 4
    cases = _flip_cases(base)
    assert len(cases) > 40
    for i, (seg, byte, record_start) in enumerate(cases):
        case = tmp_path / f"flip-{i}"
        shutil.copytree(base, case)
        target = case / seg.name
        data = bytearray(target.read_bytes())
        data[byte] ^= 0x5A
        target.write_bytes(bytes(data))
        before = snapshot_files(case)

        with pytest.raises(JournalCorrupt) as err:
            scan_journal(case)
        assert (err.value.path, err.value.offset) == (target, record_start), (seg.name, byte)
        assert str(target) in str(err.value)
        assert f"offset {record_start}" in str(err.value)

        with pytest.raises(JournalCorrupt) as err2:
            FileJournal(case, fsync="none", segment_bytes=600)
        assert (err2.value.path, err2.value.offset) == (target, record_start)
        assert snapshot_files(case) == before  # neither changed a byte
        shutil.rmtree(case)


def test_bad_segment_headers_and_gaps(tmp_path: Path) -> None:
    base = tmp_path / "base"
    fill(base, 40, segment_bytes=400)
    files = segments(base)
    assert len(files) >= 4

    def case(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(base, d)
        return d

    d = case("magic")  # a stray file under a segment name
    (d / files[1].name).write_bytes(b"not a journal at all, but long enough")
    with pytest.raises(JournalCorrupt, match="magic") as err:
        FileJournal(d)
    assert (err.value.path, err.value.offset) == (d / files[1].name, 0)

    d = case("first-seq")  # header seq disagrees with the name
    data = bytearray((d / files[2].name).read_bytes())
    data[8] ^= 1
    (d / files[2].name).write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="file name") as err:
        FileJournal(d)
    assert (err.value.path, err.value.offset) == (d / files[2].name, 8)

    d = case("missing")  # a middle segment lost: a gap of seqs
    (d / files[1].name).unlink()
    with pytest.raises(JournalCorrupt, match="expected") as err:
        scan_journal(d)
    assert err.value.path == d / files[2].name

    d = case("short-middle")  # a non-last segment cut short is not a torn tail
    with open(d / files[1].name, "r+b") as f:
        f.truncate(f.seek(0, 2) - 3)
    with pytest.raises(JournalCorrupt, match="past end of file") as err:
        FileJournal(d)
    assert err.value.path == d / files[1].name

    d = tmp_path / "seq-gap"  # a record with the wrong seq inside a segment
    d.mkdir()
    good = segment_bytes_of(1, [b"one", b"two"])
    (d / "journal-00000000000000000001.log").write_bytes(
        good + encode_record(4, b"four") + encode_record(5, b"five")
    )
    with pytest.raises(JournalCorrupt, match="seq 4, expected 3") as err:
        FileJournal(d)
    assert err.value.offset == len(good)
    copy = pickle.loads(pickle.dumps(err.value))  # e.g. across a process pool
    assert (copy.path, copy.offset, str(copy)) == (err.value.path, len(good), str(err.value))


def test_bad_header_crc_followed_by_non_zero_bytes_is_corrupt(tmp_path: Path) -> None:
    fill(tmp_path, 10)
    (seg,) = segments(tmp_path)
    start, _ = record_offsets(seg)[-1]
    data = bytearray(seg.read_bytes())
    data[start + 17] ^= 0x01  # header CRC of the last record; its payload is not zero
    seg.write_bytes(bytes(data))
    before = seg.read_bytes()
    with pytest.raises(JournalCorrupt, match="header CRC") as err:
        FileJournal(tmp_path)
    assert err.value.offset == start
    assert seg.read_bytes() == before


def test_scan_journal_reports_without_changing_anything(tmp_path: Path) -> None:
    payloads = fill(tmp_path, 50, first=11, segment_bytes=500)
    files = segments(tmp_path)
    with open(files[-1], "ab") as f:
        f.write(encode_record(61, b"torn")[:9])
    before = snapshot_files(tmp_path)
    scan = scan_journal(tmp_path)
    assert snapshot_files(tmp_path) == before
    assert (scan.first_seq, scan.last_seq, scan.n_records) == (11, 60, len(payloads))
    assert scan.torn_tail_bytes == 9
    assert [s.path for s in scan.segments] == files
    assert sum(s.n_records for s in scan.segments) == 50
    assert scan.segments[-1].bytes == files[-1].stat().st_size
    path, first, last, n, size = scan.segments[0]  # also a plain tuple
    assert (path, first, n, size) == (files[0], 11, last - first + 1, files[0].stat().st_size)
    for a, b in zip(scan.segments, scan.segments[1:], strict=False):
        assert b.first_seq == a.last_seq + 1
    with pytest.raises(JournalError, match="no journal directory"):
        scan_journal(tmp_path / "absent")


# --------------------------------------------------------------------------- durability


def test_always_group_commit_one_fsync_covers_every_waiter(tmp_path: Path, monkeypatch) -> None:
    j = FileJournal(tmp_path, fsync="always")
    j.append(1, b"created")  # the segment and directory fsyncs happen before counting
    calls: list[int] = []
    entered, release = threading.Event(), threading.Event()
    real_fsync = jf._fsync

    def blocking_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            entered.set()
            assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(jf, "_fsync", blocking_fsync)
    append_lock = threading.Lock()
    seen: dict[int, int] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with append_lock:
                seq = j.last_seq + 1
                j.append(seq, b"event %d" % seq)
            j.wait_durable(seq, timeout_s=30)
            seen[seq] = j.durable_seq
        except BaseException as exc:
            errors.append(exc)

    leader = threading.Thread(target=worker)
    leader.start()
    assert entered.wait(10)  # the leader is inside its fsync; appends go on meanwhile
    others = [threading.Thread(target=worker) for _ in range(7)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while j.last_seq < 9 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert j.last_seq == 9
    assert j.durable_seq < 2  # nobody released before an fsync covered them
    release.set()
    for t in [leader, *others]:
        t.join(10)
    assert not errors
    assert sorted(seen) == list(range(2, 10))
    assert all(durable >= seq for seq, durable in seen.items())
    assert len(calls) == 2  # the leader's own, then one for the seven who waited
    j.close()


def test_always_many_threads_share_fsyncs(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real_fsync = jf._fsync

    def slow_fsync(fd: int) -> None:
        calls.append(fd)
        time.sleep(0.002)
        real_fsync(fd)

    with FileJournal(tmp_path, fsync="always") as j:
        j.append(1, b"created")
        monkeypatch.setattr(jf, "_fsync", slow_fsync)
        append_lock = threading.Lock()
        bad: list[tuple[int, int]] = []
        errors: list[BaseException] = []
        per_thread, n_threads = 25, 8

        def worker() -> None:
            try:
                for _ in range(per_thread):
                    with append_lock:
                        seq = j.last_seq + 1
                        j.append(seq, b"x" * 64)
                    j.wait_durable(seq)
                    if j.durable_seq < seq:
                        bad.append((seq, j.durable_seq))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and not bad
        assert j.last_seq == 1 + per_thread * n_threads
        assert j.durable_seq == j.last_seq
        assert 0 < len(calls) < per_thread * n_threads


def test_wait_durable_times_out_behind_a_stuck_fsync(tmp_path: Path, monkeypatch) -> None:
    with FileJournal(tmp_path, fsync="always") as j:
        j.append(1, b"a")
        release = threading.Event()
        real_fsync = jf._fsync

        def stuck(fd: int) -> None:
            release.wait(10)
            real_fsync(fd)

        monkeypatch.setattr(jf, "_fsync", stuck)
        leader = threading.Thread(target=j.wait_durable, args=(1,))
        leader.start()
        deadline = time.monotonic() + 10
        while not j._syncing and time.monotonic() < deadline:
            time.sleep(0.001)
        j.append(2, b"b")
        with pytest.raises(TimeoutError):
            j.wait_durable(2, timeout_s=0.05)
        release.set()
        leader.join(10)
        j.wait_durable(2, timeout_s=10)
        assert j.durable_seq == 2


def test_batch_fsyncs_in_the_background_only_when_needed(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real_fsync = jf._fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(jf, "_fsync", counting)
    with FileJournal(tmp_path, fsync="batch", fsync_interval_ms=1) as j:
        for seq in range(1, 101):
            j.append(seq, b"x" * 100)
            j.wait_durable(seq)  # returns at once
        deadline = time.monotonic() + 10
        while j.durable_seq < 100 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert j.durable_seq == 100
        n = len(calls)
        time.sleep(0.05)  # fifty intervals with nothing new written
        assert len(calls) == n
        j.append(101, b"y")
        deadline = time.monotonic() + 10
        while j.durable_seq < 101 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert j.durable_seq == 101
        assert len(calls) > n


def test_none_fsyncs_only_on_sync_and_close(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real_fsync = jf._fsync
    monkeypatch.setattr(jf, "_fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    j = FileJournal(tmp_path, fsync="none")
    j.append(1, b"a")
    n = len(calls)  # the new segment's directory entry
    for seq in range(2, 51):
        j.append(seq, b"b")
        j.wait_durable(seq)
    time.sleep(0.02)
    assert len(calls) == n and j.durable_seq == 0
    j.sync()
    assert j.durable_seq == 50 and len(calls) == n + 1
    j.append(51, b"c")
    j.close()
    assert j.durable_seq == 51 and len(calls) == n + 2


def test_durable_seq_advances_when_a_segment_is_left(tmp_path: Path) -> None:
    with FileJournal(tmp_path, fsync="none", segment_bytes=200) as j:
        for seq in range(1, 4):
            j.append(seq, b"p" * 50)
        assert len(segments(tmp_path)) == 2
        assert j.durable_seq == 2  # the first segment was fsynced before it was left


# --------------------------------------------------------------------------- housekeeping


def test_delete_before_keeps_the_active_segment_and_every_later_record(tmp_path: Path) -> None:
    payloads = fill(tmp_path, 200, segment_bytes=800)
    with FileJournal(tmp_path, fsync="none", segment_bytes=800) as j:
        files = segments(tmp_path)
        firsts = [int(p.name[8:28]) for p in files]
        cut = firsts[3] + 2  # inside the fourth segment
        deleted = j.delete_before(cut)
        assert deleted == [tmp_path / p.name for p in files[:3]]
        assert all(not p.exists() for p in deleted)
        assert j.first_seq == firsts[3]
        got = list(j.records())
        assert got == [(s, payloads[s]) for s in range(firsts[3], 201)]
        assert j.delete_before(cut) == []
        assert j.delete_before(firsts[4] - 1) == []  # its last record is not below that
        assert j.delete_before(firsts[4]) == [files[3]]  # the segment ends just before it

        everything = j.delete_before(10_000)
        assert everything == files[4:-1]
        assert segments(tmp_path) == [files[-1]]  # the active one stays, records and all
        assert j.first_seq == firsts[-1]
        assert [s for s, _ in j.records()] == list(range(firsts[-1], 201))
        j.append(201, b"next")
    with FileJournal(tmp_path, fsync="none", segment_bytes=800) as j:
        assert (j.first_seq, j.last_seq) == (firsts[-1], 201)


# --------------------------------------------------------------------------- the lock


def test_a_second_journal_on_the_directory_is_refused_until_close(tmp_path: Path) -> None:
    first = FileJournal(tmp_path, fsync="batch")
    first.append(1, b"a")
    with pytest.raises(JournalError, match="in use"):
        FileJournal(tmp_path, fsync="none")
    assert first.last_seq == 1
    first.append(2, b"b")  # the refused opener changed nothing
    first.close()
    with FileJournal(tmp_path, fsync="none") as second:
        assert second.last_seq == 2
        with pytest.raises(JournalError, match="in use"):
            FileJournal(tmp_path)
    with FileJournal(tmp_path) as third:
        assert list(third.records()) == [(1, b"a"), (2, b"b")]
