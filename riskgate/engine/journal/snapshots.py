"""Atomic snapshot files: the engine state as of a journal seq, as opaque bytes.

On-disk format of ``snapshot-<seq:020d>.snap`` (integers little-endian)::

    offset  size  field
    0       8     magic  b"RGSNAP1\\n"
    8       8     u64 seq (also in the file name)
    16      8     u64 payload_length
    24      4     u32 payload_crc32   zlib.crc32 of the payload
    28      4     u32 header_crc32    zlib.crc32 of header bytes 0..28
    32      n     payload

A snapshot is written to a temporary file ``.snapshot-<seq>.<pid>.<token>.tmp`` in the
same directory, fsynced, renamed to its final name and the directory fsynced, so a reader
sees a whole snapshot or none. Temporary files left by a crash are ignored by readers and
removed by :func:`write_snapshot` and :func:`prune_snapshots`.
"""

from __future__ import annotations

import contextlib
import operator
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SnapshotError",
    "SnapshotInfo",
    "latest_snapshot",
    "list_snapshots",
    "prune_snapshots",
    "write_snapshot",
]

SNAPSHOT_MAGIC = b"RGSNAP1\n"
_HEADER = struct.Struct("<8sQQII")
_HEADER_CRC_SPAN = struct.calcsize("<8sQQI")
HEADER_SIZE = _HEADER.size
_NAME = re.compile(r"snapshot-(\d{20})\.snap")
_TEMP_PREFIX = ".snapshot-"
_TEMP_SUFFIX = ".tmp"
_TEMP_PID = re.compile(r"\.snapshot-\d+\.(\d+)\.[0-9a-f]+\.tmp")
_MAX_U64 = 0xFFFFFFFFFFFFFFFF

# temporary files this process is writing now: never removed as leftovers
_writing: set[str] = set()
_writing_lock = threading.Lock()


class SnapshotError(Exception):
    """A snapshot that cannot be written or read."""


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot file; ``error`` says why it is not ``valid`` (empty when it is)."""

    seq: int
    path: Path
    size_bytes: int
    valid: bool
    error: str


def _snapshot_path(directory: Path, seq: int) -> Path:
    return directory / f"snapshot-{seq:020d}.snap"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(directory: Path) -> list[Path]:
    """Remove temporary files no live writer owns; returns the removed paths."""
    removed = []
    me = os.getpid()
    for entry in os.scandir(directory):
        name = entry.name
        if not (name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)):
            continue
        with _writing_lock:
            if name in _writing:
                continue
        m = _TEMP_PID.fullmatch(name)
        if m and int(m.group(1)) != me and _pid_alive(int(m.group(1))):
            continue  # another process may be writing it
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    return removed


def write_snapshot(directory: str | os.PathLike[str], seq: int, payload: bytes) -> Path:
    """Write the snapshot of ``seq`` atomically and durably; returns its path.

    A snapshot of the same seq already there is replaced.
    """
    directory = Path(directory)
    try:
        seq = operator.index(seq)
    except TypeError:
        raise SnapshotError(f"snapshot seq {seq!r} is not an integer") from None
    if not 0 <= seq <= _MAX_U64:
        raise SnapshotError(f"snapshot seq {seq} is out of range")
    view = memoryview(payload).cast("B")
    pcrc = zlib.crc32(view)
    prefix = struct.pack("<8sQQI", SNAPSHOT_MAGIC, seq, len(view), pcrc)
    header = prefix + struct.pack("<I", zlib.crc32(prefix))
    final = _snapshot_path(directory, seq)
    try:
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(directory.parent)
        _remove_leftovers(directory)
    except OSError as exc:
        raise SnapshotError(f"cannot prepare snapshot directory {directory}: {exc}") from exc
    name = f"{_TEMP_PREFIX}{seq:020d}.{os.getpid()}.{os.urandom(4).hex()}{_TEMP_SUFFIX}"
    temp = directory / name
    with _writing_lock:
        _writing.add(name)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, header)
            _write_all(fd, view)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
        _fsync_dir(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise SnapshotError(f"cannot write snapshot {final}: {exc}") from exc
    finally:
        with _writing_lock:
            _writing.discard(name)
    return final


def _read(path: Path, seq: int) -> bytes:
    """The payload of a snapshot file, or SnapshotError saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read: {exc}") from exc
    if len(data) < HEADER_SIZE:
        raise SnapshotError(f"truncated header ({len(data)} of {HEADER_SIZE} bytes)")
    magic, head_seq, length, pcrc, hcrc = _HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(f"not a snapshot file (magic {magic!r})")
    if zlib.crc32(memoryview(data)[:_HEADER_CRC_SPAN]) != hcrc:
        raise SnapshotError("bad header CRC")
    if head_seq != seq:
        raise SnapshotError(f"header seq {head_seq} does not match the file name")
    have = len(data) - HEADER_SIZE
    if have < length:
        raise SnapshotError(f"truncated payload ({have} of {length} bytes)")
    if have > length:
        raise SnapshotError(f"{have - length} bytes after the payload")
    payload = data[HEADER_SIZE:]
    if zlib.crc32(payload) != pcrc:
        raise SnapshotError("bad payload CRC")
    return payload


def _snapshot_files(directory: Path) -> list[tuple[int, Path]]:
    """(seq, path) of the snapshot files, newest first; none if no such directory."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SnapshotError(f"cannot list snapshot directory {directory}: {exc}") from exc
    found = []
    for entry in entries:
        m = _NAME.fullmatch(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    found.sort(reverse=True)
    return found


def latest_snapshot(directory: str | os.PathLike[str]) -> tuple[int, bytes, Path] | None:
    """``(seq, payload, path)`` of the newest valid snapshot, None if there is none."""
    for seq, path in _snapshot_files(Path(directory)):
        try:
            return seq, _read(path, seq), path
        except SnapshotError:
            continue
    return None


def list_snapshots(directory: str | os.PathLike[str]) -> list[SnapshotInfo]:
    """Every snapshot file, newest first, each read and checked."""
    infos = []
    for seq, path in _snapshot_files(Path(directory)):
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        try:
            _read(path, seq)
        except SnapshotError as exc:
            infos.append(SnapshotInfo(seq, path, size, False, str(exc)))
        else:
            infos.append(SnapshotInfo(seq, path, size, True, ""))
    return infos


def prune_snapshots(directory: str | os.PathLike[str], keep: int = 2) -> list[Path]:
    """Keep the newest ``keep`` valid snapshots; delete the older ones.

    Invalid snapshots older than the newest valid one go too (newer invalid ones stay for
    inspection), as do temporary files left by a crash. With no valid snapshot nothing
    but those temporary files is deleted. Returns the deleted paths.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (the newest valid snapshot), got {keep}")
    directory = Path(directory)
    if not directory.is_dir():
        return []
    try:
        deleted = _remove_leftovers(directory)
    except OSError as exc:
        raise SnapshotError(f"cannot list snapshot directory {directory}: {exc}") from exc
    infos = list_snapshots(directory)
    valid = [info for info in infos if info.valid]
    if not valid:
        return deleted
    newest = valid[0].seq
    kept = {info.path for info in valid[:keep]}
    for info in infos:
        if info.path in kept or (not info.valid and info.seq > newest):
            continue
        try:
            os.unlink(info.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SnapshotError(f"cannot delete snapshot {info.path}: {exc}") from exc
        deleted.append(info.path)
    return deleted
