"""Append-only segmented journal of opaque records, each with a sequence number.

On-disk format (all integers little-endian)
-------------------------------------------

The journal is a directory of segment files ``journal-<first_seq:020d>.log`` plus a ``LOCK``
file. Each segment starts with a 16-byte file header::

    offset  size  field
    0       8     magic  b"RGJRNL1\\n"
    8       8     u64 first_seq (also in the file name)

followed by records, each a 20-byte header and its payload::

    offset  size  field
    0       4     u32 payload_length
    4       8     u64 seq
    12      4     u32 payload_crc32   zlib.crc32 of the payload
    16      4     u32 header_crc32    zlib.crc32 of header bytes 0..16
    20      n     payload

Sequence numbers are contiguous: within a segment, across segments, and the first record
of a segment has the seq of its file header.

Writing: the active segment is preallocated to ``segment_bytes`` and memory-mapped; an
append copies its record into the mapping (no system call, no release of the GIL), so it is
in the page cache, and survives a crash of the process, when ``append`` returns. The fsync
policy decides when the page cache reaches the disk. Past the last record the active
segment holds zeros (the preallocation); a segment that is left, or a journal that is
closed, is truncated to its records.

Recovery rules when opening: only the last segment may end in a torn tail, which is cut
off (see :class:`FileJournal`); every other defect raises :class:`JournalCorrupt` naming
the file and byte offset.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "FSYNC_POLICIES",
    "FileJournal",
    "JournalCorrupt",
    "JournalError",
    "JournalScan",
    "SegmentInfo",
    "read_journal",
    "scan_journal",
]

FSYNC_POLICIES = ("batch", "always", "none")

SEGMENT_MAGIC = b"RGJRNL1\n"
_SEG_HEADER = struct.Struct("<8sQ")
_REC_HEADER = struct.Struct("<IQII")
_REC_PREFIX = struct.Struct("<IQI")  # the header bytes covered by header_crc32
_U32 = struct.Struct("<I")
SEG_HEADER_SIZE = _SEG_HEADER.size
REC_HEADER_SIZE = _REC_HEADER.size
_HEADER_CRC_SPAN = _REC_PREFIX.size
_MAX_PAYLOAD = 0xFFFFFFFF
_MAX_SEQ = 0xFFFFFFFFFFFFFFFF
_SEGMENT_NAME = re.compile(r"journal-(\d{20})\.log")
_READ_CHUNK = 4 * 2**20
_LOCK_NAME = "LOCK"

# Looked up at call time so tests can count or slow down the fsyncs of this module.
_fsync = os.fsync

_crc32 = zlib.crc32
_PAGE = mmap.PAGESIZE
_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault pages in writable without writing to them
_POPULATE_MIN = 64 * 1024  # bytes made writable ahead of the last record after an fsync
_POPULATE_MAX = 4 * 2**20
_pack_prefix = _REC_PREFIX.pack
_pack_u32 = _U32.pack


class JournalError(Exception):
    """Misuse of a journal (wrong seq, closed, directory in use) or an I/O failure."""


class JournalCorrupt(JournalError):
    """A bad record or segment header that is not a torn tail."""

    def __init__(self, path: Path, offset: int, what: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.what = what
        super().__init__(f"{self.path} at byte offset {offset}: {what}")

    def __reduce__(self):  # picklable although __init__ takes three arguments
        return type(self), (self.path, self.offset, self.what)


class SegmentInfo(NamedTuple):
    """One segment as found on disk; ``last_seq`` is ``first_seq - 1`` when it is empty."""

    path: Path
    first_seq: int
    last_seq: int
    n_records: int
    bytes: int


@dataclass(frozen=True)
class JournalScan:
    """What :func:`scan_journal` found; ``torn_tail_bytes`` would be cut off by opening."""

    segments: list[SegmentInfo]
    n_records: int
    first_seq: int
    last_seq: int
    torn_tail_bytes: int


# --------------------------------------------------------------------------- reading


class _SegmentReader:
    """Reads and checks one segment; ``batches()`` yields lists of ``(seq, payload)``.

    The file is read up to ``limit`` bytes (its size when opened if None). With
    ``tail_ok`` a torn tail ends the segment (``good_end``, ``torn_bytes``); without it,
    as for every defect that is not a torn tail, :class:`JournalCorrupt` is raised.
    After ``batches()`` is exhausted, ``n_records``, ``last_seq`` and ``good_end``
    describe the good records read (all of them unless ``to_seq`` stopped it early).
    """

    def __init__(
        self,
        path: Path,
        first_seq: int,
        *,
        tail_ok: bool,
        limit: int | None = None,
        from_seq: int = 1,
        to_seq: int = _MAX_SEQ,
        collect: bool = True,
    ) -> None:
        self.path = path
        self.first_seq = first_seq
        self.tail_ok = tail_ok
        self.limit = limit
        self.from_seq = from_seq
        self.to_seq = to_seq
        self.collect = collect
        self.size = 0
        self.n_records = 0
        self.last_seq = first_seq - 1
        self.good_end = 0
        self.torn_bytes = 0

    def _corrupt(self, offset: int, what: str) -> JournalCorrupt:
        return JournalCorrupt(self.path, offset, what)

    def _check_header(self, f, head: bytes, size: int) -> bool:
        """Validate the file header; False if it is torn (incomplete, or zeros to the end)."""
        if len(head) < SEG_HEADER_SIZE:
            expected = _SEG_HEADER.pack(SEGMENT_MAGIC, self.first_seq)
            if self.tail_ok and (expected.startswith(head) or head.count(0) == len(head)):
                self.torn_bytes = len(head)
                return False
            raise self._corrupt(0, f"segment header incomplete ({len(head)} bytes)")
        magic, first = _SEG_HEADER.unpack(head)
        if magic != SEGMENT_MAGIC:
            if self.tail_ok and self._zero_from(f, head, size - len(head)):
                self.torn_bytes = size  # a segment started but never written
                return False
            raise self._corrupt(0, f"not a journal segment (magic {magic!r})")
        if first != self.first_seq:
            raise self._corrupt(8, f"segment header first_seq {first} does not match the file name")
        self.good_end = SEG_HEADER_SIZE
        return True

    def batches(self) -> Iterator[list[tuple[int, bytes]]]:
        try:
            f = open(self.path, "rb", buffering=0)  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise JournalError(f"cannot read journal segment {self.path}: {exc}") from exc
        with f:
            size = os.fstat(f.fileno()).st_size
            if self.limit is not None:
                size = min(size, self.limit)
            self.size = size
            if not self._check_header(f, f.read(min(size, SEG_HEADER_SIZE)), size):
                return
            yield from self._records(f, size)

    def _records(self, f, size: int) -> Iterator[list[tuple[int, bytes]]]:
        unpack = _REC_HEADER.unpack_from
        crc32 = zlib.crc32
        hsize = REC_HEADER_SIZE
        span = _HEADER_CRC_SPAN
        from_seq = self.from_seq
        to_seq = self.to_seq
        collect = self.collect
        expect = self.first_seq
        base = SEG_HEADER_SIZE  # file offset of buf[0]
        unread = size - SEG_HEADER_SIZE
        buf = b""
        pos = 0
        need = hsize  # bytes wanted at buf[pos:] before parsing can go on
        problem = ""
        while True:
            end = len(buf)
            out: list[tuple[int, bytes]] = []
            while pos + hsize <= end:
                n, seq, pcrc, hcrc = unpack(buf, pos)
                if crc32(buf[pos : pos + span]) != hcrc:
                    problem = "header"
                    break
                if seq != expect:
                    problem = "seq"
                    break
                e = pos + hsize + n
                if e > end:
                    need = hsize + n
                    break
                payload = buf[pos + hsize : e]
                if crc32(payload) != pcrc:
                    problem = "payload"
                    break
                if seq >= from_seq:
                    if seq > to_seq:
                        problem = "stop"
                        break
                    if collect:
                        out.append((seq, payload))
                expect += 1
                pos = e
            else:
                need = hsize
            self.n_records = expect - self.first_seq
            self.last_seq = expect - 1
            self.good_end = base + pos
            if out:
                yield out
            if problem or unread == 0:
                break
            want = max(_READ_CHUNK, need - (end - pos))
            chunk = f.read(min(want, unread))
            if not chunk:  # the file shrank under us: treat as its end
                size = base + end
                break
            unread -= len(chunk)
            if pos < end:
                buf = buf[pos:] + chunk
            else:
                buf = chunk
            base += pos
            pos = 0
        if problem == "stop":
            return
        self._finish(f, problem, buf, pos, base, size)

    def _finish(self, f, problem: str, buf: bytes, pos: int, base: int, size: int) -> None:
        """Classify what stopped the parse at file offset ``base + pos``."""
        offset = base + pos
        left = size - offset
        if not problem and left == 0:
            return
        torn = False
        if not problem:
            if left < REC_HEADER_SIZE:
                what = f"truncated record header ({left} bytes before end of file)"
            else:
                what = "record extends past end of file"
            torn = True
        elif problem == "header":
            what = "bad record header CRC"
            torn = self.tail_ok and self._zero_from(f, buf[pos:], size - base - len(buf))
        elif problem == "seq":
            seq = _REC_HEADER.unpack_from(buf, pos)[1]
            raise self._corrupt(offset, f"record seq {seq}, expected {self.last_seq + 1}")
        else:
            n = _REC_HEADER.unpack_from(buf, pos)[0]
            what = "bad payload CRC"
            torn = offset + REC_HEADER_SIZE + n == size
        if not (torn and self.tail_ok):
            raise self._corrupt(offset, what)
        self.torn_bytes = left

    @staticmethod
    def _zero_from(f, head: bytes, unread: int) -> bool:
        """True if ``head`` and the ``unread`` bytes still in ``f`` are all zero."""
        if head.count(0) != len(head):
            return False
        while unread > 0:
            chunk = f.read(min(_READ_CHUNK, unread))
            if not chunk:
                break
            if chunk.count(0) != len(chunk):
                return False
            unread -= len(chunk)
        return True

    def drain(self) -> None:
        for _ in self.batches():
            pass


def _segment_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in os.scandir(directory):
        m = _SEGMENT_NAME.fullmatch(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    found.sort()
    return found


def _check_directory(directory: Path) -> list[_SegmentReader]:
    """Read and check every segment in order; the last one may end in a torn tail."""
    files = _segment_files(directory)
    readers = []
    expect = None
    for i, (first, path) in enumerate(files):
        if first < 1:
            raise JournalCorrupt(path, 8, "segment first_seq must be at least 1")
        if expect is not None and first != expect:
            raise JournalCorrupt(
                path, 8, f"segment starts at seq {first}, expected {expect} after the previous"
            )
        reader = _SegmentReader(path, first, tail_ok=i == len(files) - 1, collect=False)
        reader.drain()
        readers.append(reader)
        expect = reader.last_seq + 1
    return readers


def scan_journal(directory: str | os.PathLike[str]) -> JournalScan:
    """Check a journal directory without changing it (for a ``verify`` command).

    Takes no lock: a journal being written may show a torn tail that is only an append in
    progress. Raises :class:`JournalCorrupt` on the same defects as opening.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise JournalError(f"no journal directory at {directory}")
    readers = _check_directory(directory)
    segments = [SegmentInfo(r.path, r.first_seq, r.last_seq, r.n_records, r.size) for r in readers]
    n_records = sum(r.n_records for r in readers)
    with_records = [r for r in readers if r.n_records]
    return JournalScan(
        segments=segments,
        n_records=n_records,
        first_seq=with_records[0].first_seq if with_records else 0,
        last_seq=with_records[-1].last_seq if with_records else 0,
        torn_tail_bytes=readers[-1].torn_bytes if readers else 0,
    )


def read_journal(
    directory: str | os.PathLike[str], from_seq: int = 1, to_seq: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Records with ``from_seq <= seq <= to_seq`` of a journal directory, read-only and
    without its lock (a journal being written is read up to its last complete record).
    Raises :class:`JournalCorrupt` on the same defects as opening."""
    directory = Path(directory)
    if not directory.is_dir():
        raise JournalError(f"no journal directory at {directory}")
    stop = _MAX_SEQ if to_seq is None else to_seq
    files = _segment_files(directory)
    for i, (first, path) in enumerate(files):
        if first > stop:
            return
        if i + 1 < len(files) and files[i + 1][0] <= from_seq:
            continue  # every record of this segment is before from_seq
        reader = _SegmentReader(
            path, first, tail_ok=i == len(files) - 1, from_seq=from_seq, to_seq=stop
        )
        for batch in reader.batches():
            yield from batch


# --------------------------------------------------------------------------- journal


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def _libc_madvise():
    try:
        f = ctypes.CDLL(None, use_errno=True).madvise  # ctypes releases the GIL meanwhile
    except (OSError, AttributeError):  # pragma: no cover - not on Linux
        return None
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


_madvise = _libc_madvise()


def _preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes for ``fd`` (so writing through the mapping cannot meet a full
    disk); a file system without fallocate gets a sparse file."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)


class _Mapping(NamedTuple):
    """The active segment's file and its writable mapping."""

    fd: int
    mm: mmap.mmap
    address: int  # of the mapping's first byte
    capacity: int  # bytes mapped (the preallocated size)

    @classmethod
    def open(cls, fd: int, capacity: int) -> _Mapping:
        _preallocate(fd, capacity)
        mm = mmap.mmap(fd, capacity, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        view = ctypes.c_char.from_buffer(mm)
        address = ctypes.addressof(view)
        del view  # a live export would keep the mapping from being closed
        return cls(fd, mm, address, capacity)


class FileJournal:
    """Append-only journal in ``directory``, one writer (process and object) at a time.

    ``fsync`` policy:

    - ``"always"``: :meth:`wait_durable` blocks until an fsync covering its seq is done.
      Waiters share fsyncs (group commit): one of them fsyncs everything written so far
      while appends go on, and releases every waiter it covers.
    - ``"batch"``: a daemon thread fsyncs every ``fsync_interval_ms`` when something was
      written since its last fsync; :meth:`wait_durable` returns at once. A power loss can
      take the appends of the last interval (and of an fsync in progress); a crash of the
      process takes nothing appended.
    - ``"none"``: :meth:`wait_durable` returns at once; data is fsynced only by
      :meth:`sync` and :meth:`close`.

    Whatever the policy, a segment is fsynced when it is left for a new one (and the
    directory when a segment is created or when opening repaired a tail). After each fsync
    the pages an fsync write-protected at the end of the segment, and the next ones, are
    made writable again (``MADV_POPULATE_WRITE``, outside the GIL) so that the next appends
    take no page fault.

    Opening reads and checks every segment. A torn tail of the last segment (fewer bytes
    than a record header left; a record running past the end of the file; a bad payload
    CRC on the record that ends the file; a bad header CRC followed only by zero bytes) is
    cut off and counted in ``truncated_bytes``; a last segment left without records is
    removed. Anything else raises :class:`JournalCorrupt`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: str = "batch",
        fsync_interval_ms: float = 5.0,
        segment_bytes: int = 64 * 2**20,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(
                f"unknown fsync policy {fsync!r}: valid ones are {', '.join(FSYNC_POLICIES)}"
            )
        if not fsync_interval_ms > 0:
            raise ValueError(f"fsync_interval_ms must be positive, got {fsync_interval_ms}")
        if segment_bytes < SEG_HEADER_SIZE + REC_HEADER_SIZE:
            raise ValueError(f"segment_bytes {segment_bytes} is too small")
        self.directory = Path(directory)
        self.fsync_policy = fsync
        self._interval = fsync_interval_ms / 1000.0
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._fd = -1  # active segment, -1 when there is none
        self._map: _Mapping | None = None  # the active segment's mapping
        self._retired: list[_Mapping] = []  # left while an fsync was populating them
        self._synced_size = 0  # active segment's size at the start of the last fsync
        self._size = 0  # bytes in the active segment
        self._limit = -1  # segment_bytes while there is an active segment: appends compare
        self._refused = False  # closed or failed: appends are refused
        self._segments: list[tuple[int, Path]] = []  # (first_seq, path), oldest first
        self._first_seq = 0
        self._last_seq = 0
        self._durable_seq = 0
        self._syncing = False
        self._failed: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.truncated_bytes = 0

        try:
            if not self.directory.is_dir():
                self.directory.mkdir(parents=True, exist_ok=True)
                _fsync_dir(self.directory.parent)
        except OSError as exc:
            raise JournalError(f"cannot create journal directory {self.directory}: {exc}") from exc
        self._lock_fd = self._take_lock()
        try:
            self._recover()
        except BaseException:
            self._release_fds()
            raise
        if fsync == "batch":
            self._thread = threading.Thread(
                target=self._batch_loop, name=f"journal-fsync:{self.directory.name}", daemon=True
            )
            self._thread.start()

    # ---------------------------------------------------------------- opening

    def _take_lock(self) -> int:
        path = self.directory / _LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(
                f"journal directory {self.directory} is in use by another process or journal"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise JournalError(f"cannot lock {path}: {exc}") from exc
        return fd

    def _recover(self) -> None:
        try:
            readers = _check_directory(self.directory)
            repaired = False
            if readers:
                last = readers[-1]
                if last.torn_bytes:
                    self.truncated_bytes = last.torn_bytes
                    os.truncate(last.path, last.good_end)
                    repaired = True
                if last.n_records == 0:
                    # no record survived: the segment is recreated by the next append
                    os.unlink(last.path)
                    readers.pop()
                    repaired = True
            if readers:
                last = readers[-1]
                self._segments = [(r.first_seq, r.path) for r in readers]
                self._first_seq = readers[0].first_seq
                self._last_seq = last.last_seq
                self._fd = os.open(last.path, os.O_RDWR)
                self._size = last.good_end
                self._limit = self._segment_bytes
                self._map = _Mapping.open(self._fd, max(self._segment_bytes, self._size))
                # what is on disk may still be in the page cache only (a crashed process)
                _fsync(self._fd)
                self._durable_seq = self._last_seq
            if repaired:
                _fsync_dir(self.directory)
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.directory}: {exc}") from exc

    # ---------------------------------------------------------------- state

    @property
    def first_seq(self) -> int:
        """Lowest seq still on disk, 0 if the journal is empty."""
        return self._first_seq

    @property
    def last_seq(self) -> int:
        """Highest seq written, 0 if the journal is empty."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """Highest seq known to be fsynced (never decreases)."""
        return self._durable_seq

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalError(f"journal {self.directory} is closed")
        if self._failed is not None:
            raise JournalError(
                f"journal {self.directory} is unusable after a failed write or fsync: {self._failed}"
            )

    # ---------------------------------------------------------------- appending

    def append(self, seq: int, payload: bytes) -> None:
        """Write one record; ``seq`` must be ``last_seq + 1`` (any seq >= 1 when empty)."""
        # the hot path: one join, one os.write, a handful of attribute updates
        pcrc = _crc32(payload)
        try:
            prefix = _pack_prefix(len(payload), seq, pcrc)
        except struct.error:
            raise self._bad_record(seq, payload) from None
        record = b"".join((prefix, _pack_u32(_crc32(prefix)), payload))
        lock = self._lock
        lock.acquire()  # cheaper than ``with`` on this path
        try:
            last = self._last_seq
            if (seq != last + 1 and (last or seq < 1)) or self._refused:
                self._refuse(seq)
            start = self._size
            size = start + len(record)
            if size > self._limit:
                self._append_new_segment(seq, record, seq)
                return
            self._map.mm[start:size] = record  # type: ignore[union-attr]
            self._size = size
            self._last_seq = seq
            if not last:
                self._first_seq = seq
        finally:
            lock.release()

    def append_batch(self, first_seq: int, payloads: Sequence[bytes]) -> None:
        """Write records ``first_seq, first_seq + 1, ...`` in one copy."""
        count = len(payloads)
        if count == 0:
            return
        parts = []
        for seq, payload in enumerate(payloads, first_seq):
            try:
                prefix = _pack_prefix(len(payload), seq, _crc32(payload))
            except struct.error:
                raise self._bad_record(seq, payload) from None
            parts += (prefix, _pack_u32(_crc32(prefix)), payload)
        data = b"".join(parts)
        last_new = first_seq + count - 1
        with self._lock:
            last = self._last_seq
            if (first_seq != last + 1 and (last or first_seq < 1)) or self._refused:
                self._refuse(first_seq)
            size = self._size + len(data)
            if size > self._limit:
                self._append_new_segment(first_seq, data, last_new)
                return
            self._write(data)
            self._size = size
            self._last_seq = last_new
            if not last:
                self._first_seq = first_seq

    def _bad_record(self, seq: object, payload: bytes) -> JournalError:
        if len(payload) > _MAX_PAYLOAD:
            return JournalError(f"payload of {len(payload)} bytes is too large for a record")
        return JournalError(f"seq {seq!r} is not a valid sequence number")

    def _refuse(self, seq: int) -> None:
        self._check_usable()
        if self._last_seq:
            raise JournalError(f"append of seq {seq}: the next seq is {self._last_seq + 1}")
        raise JournalError(f"append of seq {seq}: a sequence number is at least 1")

    def _write(self, data: bytes) -> None:
        """Copy ``data`` after the active segment's records (lock held; it fits)."""
        self._map.mm[self._size : self._size + len(data)] = data  # type: ignore[union-attr]

    def _fail(self, exc: BaseException) -> None:
        self._failed = exc
        self._refused = True

    def _append_new_segment(self, first_seq: int, data: bytes, last_new: int) -> None:
        """Leave the active segment (fsynced) and start one at ``first_seq`` (lock held).

        A record (or batch) larger than ``segment_bytes`` gets a segment of its own.
        """
        path = self.directory / f"journal-{first_seq:020d}.log"
        if self._fd >= 0:
            try:
                os.ftruncate(self._fd, self._size)  # the preallocated zeros go
                _fsync(self._fd)
            except OSError as exc:
                self._fail(exc)
                raise JournalError(f"fsync of journal {self.directory} failed: {exc}") from exc
            if self._last_seq > self._durable_seq:
                self._durable_seq = self._last_seq
                self._cond.notify_all()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot start journal segment {path}: {exc}") from exc
        head = _SEG_HEADER.pack(SEGMENT_MAGIC, first_seq)
        new_map = None
        try:
            new_map = _Mapping.open(fd, max(self._segment_bytes, len(head) + len(data)))
            new_map.mm[: len(head) + len(data)] = b"".join((head, data))
            _fsync_dir(self.directory)
        except (OSError, ValueError) as exc:
            if new_map is not None:
                new_map.mm.close()
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise JournalError(f"cannot start journal segment {path}: {exc}") from exc
        old_fd, old_map = self._fd, self._map
        self._fd, self._map = fd, new_map
        self._synced_size = 0
        if old_map is not None:
            self._retire(old_map)
        elif old_fd >= 0:
            os.close(old_fd)
        was_empty = not self._last_seq
        self._size = len(head) + len(data)
        self._limit = self._segment_bytes
        self._segments.append((first_seq, path))
        self._last_seq = last_new
        if was_empty:
            self._first_seq = first_seq

    # ---------------------------------------------------------------- durability

    def wait_durable(self, seq: int, timeout_s: float | None = None) -> None:
        """With ``fsync="always"``, return once ``seq`` is fsynced; otherwise at once.

        Raises ``TimeoutError`` if another thread's fsync has not covered ``seq`` within
        ``timeout_s`` (an fsync this call started itself is waited for to the end).
        """
        if seq > self._last_seq:
            raise JournalError(f"wait for seq {seq}: the last seq written is {self._last_seq}")
        if self.fsync_policy == "always" and seq > self._durable_seq:
            self._sync_to(seq, timeout_s)

    def sync(self) -> None:
        """Fsync everything written so far, whatever the policy."""
        self._sync_to(self._last_seq, None)

    def _sync_to(self, seq: int, timeout_s: float | None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._durable_seq < seq:
                if self._failed is not None or self._fd < 0:
                    self._check_usable()
                    raise JournalError(f"journal {self.directory} has nothing to sync")
                if self._syncing:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"seq {seq} not durable within {timeout_s} s")
                    self._cond.wait(remaining)
                    continue
                self._fsync_unlocked()

    def _fsync_unlocked(self) -> None:
        """Fsync all written so far with the lock released meanwhile (lock held on entry)."""
        self._syncing = True
        target = self._last_seq
        try:
            fd = os.dup(self._fd)  # stays valid if the segment is left meanwhile
        except OSError as exc:
            self._syncing = False
            raise JournalError(f"fsync of journal {self.directory} failed: {exc}") from exc
        error = None
        grown = self._size - self._synced_size  # appended during the last interval
        self._synced_size = self._size
        self._lock.release()
        try:
            _fsync(fd)
        except OSError as exc:
            error = exc
        finally:
            os.close(fd)
            self._lock.acquire()
            try:
                if error is None:
                    self._populate(grown)
            finally:
                self._syncing = False
                while self._retired:
                    self._close_mapping(self._retired.pop())
                self._cond.notify_all()
        if error is not None:
            self._fail(error)
            raise JournalError(f"fsync of journal {self.directory} failed: {error}") from error
        if target > self._durable_seq:
            self._durable_seq = target

    def _populate(self, grown: int) -> None:
        """Make the pages the next appends will write writable now (lock held on entry and
        exit, released meanwhile): those the fsync just write-protected at the end of the
        records and twice what the last interval appended beyond. Mappings left meanwhile
        are only closed by the caller, once this returns."""
        m = self._map
        if _madvise is None or m is None:
            return
        start = self._size - self._size % _PAGE
        ahead = min(max(2 * grown, _POPULATE_MIN), _POPULATE_MAX)
        end = min(m.capacity, self._size + ahead)
        if end <= start:
            return
        self._lock.release()
        try:
            _madvise(m.address + start, end - start, _MADV_POPULATE_WRITE)  # errors: no harm
        finally:
            self._lock.acquire()

    def _retire(self, m: _Mapping) -> None:
        """A mapping no append uses any more (lock held): closed now, or by the fsync
        that may be populating it."""
        if self._syncing:
            self._retired.append(m)
        else:
            self._close_mapping(m)

    @staticmethod
    def _close_mapping(m: _Mapping) -> None:
        m.mm.close()
        os.close(m.fd)

    def _batch_loop(self) -> None:
        while not self._stop.wait(self._interval):
            with self._cond:
                if (
                    self._closed
                    or self._failed is not None
                    or self._syncing
                    or self._last_seq <= self._durable_seq
                ):
                    continue
                try:
                    self._fsync_unlocked()
                except JournalError:
                    return  # recorded in _failed: appends and syncs report it

    # ---------------------------------------------------------------- reading

    def records(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Records with ``from_seq <= seq <= to_seq`` in order, read from disk and checked.

        Sees the records appended before the call, not those appended while iterating.
        """
        with self._lock:
            self._check_usable()
            segments = list(self._segments)
            active_size = self._size
            last = self._last_seq
        stop = last if to_seq is None else min(to_seq, last)
        if from_seq > stop:
            return iter(())
        return self._iter_records(segments, active_size, from_seq, stop)

    @staticmethod
    def _iter_records(
        segments: list[tuple[int, Path]], active_size: int, from_seq: int, to_seq: int
    ) -> Iterator[tuple[int, bytes]]:
        for i, (first, path) in enumerate(segments):
            if first > to_seq:
                return
            if i + 1 < len(segments):
                if segments[i + 1][0] <= from_seq:
                    continue  # every record of this segment is before from_seq
                limit = None
            else:
                limit = active_size
            reader = _SegmentReader(
                path, first, tail_ok=False, limit=limit, from_seq=from_seq, to_seq=to_seq
            )
            try:
                for batch in reader.batches():
                    yield from batch
            except JournalError as exc:
                if not path.exists():
                    raise JournalError(
                        f"journal segment {path} was deleted while reading it"
                    ) from exc
                raise

    # ---------------------------------------------------------------- housekeeping

    def delete_before(self, seq: int) -> list[Path]:
        """Delete the segments whose records all have a seq below ``seq``.

        The active (last) segment is never deleted. Returns the deleted paths.
        """
        with self._lock:
            self._check_usable()
            doomed = []
            while len(self._segments) > 1 and self._segments[1][0] <= seq:
                doomed.append(self._segments.pop(0)[1])
            if doomed:
                self._first_seq = self._segments[0][0]
        if not doomed:
            return []
        try:
            for path in doomed:
                os.unlink(path)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise JournalError(f"cannot delete journal segment: {exc}") from exc
        return doomed

    def close(self) -> None:
        """Fsync what was written, stop the fsync thread, release the directory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._refused = True
            self._cond.notify_all()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        error = None
        with self._lock:
            if self._fd >= 0 and self._failed is None:
                try:
                    os.ftruncate(self._fd, self._size)  # the preallocated zeros go
                    _fsync(self._fd)
                    if self._last_seq > self._durable_seq:
                        self._durable_seq = self._last_seq
                except OSError as exc:
                    error = exc
            self._cond.notify_all()
            self._release_fds()
        if error is not None:
            raise JournalError(f"fsync of journal {self.directory} failed: {error}") from error

    def _release_fds(self) -> None:
        for m in self._retired:
            self._close_mapping(m)
        self._retired.clear()
        if self._map is not None:
            self._close_mapping(self._map)  # closes self._fd too
            self._map = None
            self._fd = -1
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> FileJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"FileJournal({str(self.directory)!r}, fsync={self.fsync_policy!r}, "
            f"first_seq={self._first_seq}, last_seq={self._last_seq}, "
            f"durable_seq={self._durable_seq})"
        )
