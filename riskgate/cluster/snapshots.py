"""Shard snapshots in a JetStream Object Store, and trimming the shard's stream below them.

Bucket ``riskgate-snapshots`` (``replicas`` copies), object ``shard.<k>.<seq:020d>``: the
same bytes as the file journal's snapshot payload (:func:`RiskEngine.snapshot`, a
``BookSnapshot`` carrying its state hash and the seq of the last event it covers). An object
(it may be bigger than a key-value entry's limit) is stored in chunks and its SHA-256 digest
checked when it is read back; the book's state hash is checked when it is decoded.

Written by a standby (:class:`Snapshotter`), so the owner's order path never pauses: the
standby's engine takes the copy-on-write snapshot of its own book, which equals the
owner's at that seq. After each snapshot the oldest beyond ``keep`` are deleted and the
stream is purged below the oldest kept one (``purge_stream(seq=...)`` removes the messages
before it; the stream's last sequence, what the owner's expected-last-sequence check
compares with, does not change).

A starting standby (:func:`restore_newest`) loads the newest snapshot that reads back and
decodes with its hash, and that the stream continues (its seq + 1 is still in the stream),
then tails only the events after it; a snapshot that fails is skipped for the previous one,
and a book is only served once whole (it is built aside, then handed to the engine).
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError

from riskgate.engine.book import Book
from riskgate.engine.journal import codec
from riskgate.engine.journal.nats_journal import (
    STREAM_IN_USE,
    LoopThread,
    connect,
    retrying,
    stream_name,
)
from riskgate.server.logging import get_logger

BUCKET = "riskgate-snapshots"
_log = get_logger("riskgate.cluster")


def object_name(shard: int, seq: int) -> str:
    return f"shard.{shard}.{seq:020d}"


def _seq_of(shard: int, name: str) -> int | None:
    prefix = f"shard.{shard}."
    if not name.startswith(prefix):
        return None
    tail = name[len(prefix) :]
    return int(tail) if tail.isdigit() else None


class ShardSnapshots:
    """Shard ``shard``'s snapshots and stream bounds, over a connection of its own."""

    def __init__(
        self,
        urls: Sequence[str],
        shard: int,
        *,
        replicas: int = 3,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.shard = shard
        self._lt = LoopThread(f"riskgate-snapshots-{shard}")
        try:
            self._lt.run(self._open(urls, replicas, connect_timeout_s), connect_timeout_s + 30.0)
        except BaseException:
            self._lt.close()
            raise

    async def _open(self, urls: Sequence[str], replicas: int, timeout_s: float) -> None:
        self._nc = await connect(urls, f"riskgate-snapshots-{self.shard}", timeout_s)
        self._js = js = self._nc.jetstream(timeout=5.0)
        try:
            self._obs = await retrying(lambda: js.object_store(BUCKET), timeout_s, "snapshots")
        except BucketNotFoundError:
            config = ObjectStoreConfig(replicas=replicas, storage=StorageType.FILE)
            try:
                self._obs = await retrying(
                    lambda: js.create_object_store(BUCKET, config=config), timeout_s, "snapshots"
                )
            except BadRequestError as exc:  # created by another process meanwhile
                if exc.err_code != STREAM_IN_USE:
                    raise
                self._obs = await js.object_store(BUCKET)

    def _run(self, coro: Any, timeout_s: float = 60.0) -> Any:
        return self._lt.run(coro, timeout_s)

    def seqs(self) -> list[int]:
        """The seqs of this shard's snapshots, newest first."""

        async def run() -> list[int]:
            try:
                infos = await self._obs.list(ignore_deletes=True)
            except NotFoundError:
                return []
            found = (_seq_of(self.shard, i.name) for i in infos if not i.deleted)
            return sorted((s for s in found if s is not None), reverse=True)

        return self._run(retrying(run, 30.0, "list snapshots"))

    def put(self, seq: int, payload: bytes) -> None:
        self._run(self._obs.put(object_name(self.shard, seq), payload), 120.0)

    def get(self, seq: int) -> bytes:
        """The snapshot's bytes (``DigestMismatchError`` if they do not read back whole)."""

        async def run() -> bytes:
            buf = io.BytesIO()
            await self._obs.get(object_name(self.shard, seq), writeinto=buf)
            return buf.getvalue()

        return self._run(run(), 120.0)

    def delete(self, seq: int) -> None:
        with contextlib.suppress(NotFoundError):
            self._run(self._obs.delete(object_name(self.shard, seq)))

    def stream_bounds(self) -> tuple[int, int]:
        """(first, last) sequence of the shard's stream (first = last + 1 when it is empty,
        (1, 0) when it does not exist yet)."""

        async def run() -> tuple[int, int]:
            try:
                info = await self._js.stream_info(stream_name(self.shard))
            except NotFoundError:
                return 1, 0
            return max(1, info.state.first_seq), info.state.last_seq

        return self._run(retrying(run, 30.0, "stream info"))

    def trim_stream(self, keep_from_seq: int) -> bool:
        """Purge the shard's stream below ``keep_from_seq`` (messages ``>= keep_from_seq``
        stay)."""
        name = stream_name(self.shard)
        return self._run(retrying(lambda: self._js.purge_stream(name, seq=keep_from_seq), 30.0,
                                  "purge stream"))  # fmt: skip

    def prune(self, keep: int) -> int:
        """Delete all but the newest ``keep`` snapshots, then trim the stream below the oldest
        kept one; the seq the stream is kept from (0: nothing trimmed)."""
        seqs = self.seqs()
        if len(seqs) < keep or keep < 1:
            return 0
        for seq in seqs[keep:]:
            self.delete(seq)
        oldest = seqs[keep - 1]
        first, _ = self.stream_bounds()
        if oldest + 1 > first:
            self.trim_stream(oldest + 1)
        return oldest + 1

    def close(self) -> None:
        if not self._lt.loop.is_closed():
            with contextlib.suppress(Exception):
                self._lt.run(self._nc.close(), 10.0)
            self._lt.close()


def restore_newest(
    snaps: ShardSnapshots, new_book: Callable[[], Book], first: int, last: int
) -> tuple[Book, int, list[str]]:
    """The book to start a standby from: the newest valid snapshot the stream continues
    (``first <= seq + 1``, ``seq <= last``), else an empty book at 0 if the stream still
    starts at event 1. Also what was skipped and why. Raises ``ClusterJournalError`` if
    the stream was trimmed and no usable snapshot is left."""
    from riskgate.engine.journal.nats_journal import ClusterJournalError

    skipped: list[str] = []
    for seq in snaps.seqs():
        if seq > last:
            skipped.append(f"{seq}: after the stream's last event {last}")
            continue
        if seq + 1 < first:
            skipped.append(f"{seq}: the stream was trimmed past it (first event {first})")
            break  # the older ones are further behind
        try:
            book = new_book()
            got = codec.decode_snapshot(snaps.get(seq), book)
            if got != seq:
                raise codec.CodecError(f"holds event {got}, named {seq}")
        except Exception as exc:  # a digest or hash mismatch, a deleted object: the next
            skipped.append(f"{seq}: {type(exc).__name__}: {exc}")
            continue
        book.status_changes.clear()
        return book, seq, skipped
    if first > 1:
        raise ClusterJournalError(
            f"shard {snaps.shard}: the stream starts at event {first} and no snapshot "
            f"continues it ({'; '.join(skipped) or 'none'})"
        )
    return new_book(), 0, skipped


class Snapshotter:
    """On a standby: every ``interval_s``, if ``engine.seq`` moved on since the newest
    snapshot, takes one (``engine.snapshot()``), stores it, prunes to ``keep`` and trims the
    stream. Stops at :meth:`stop` (a snapshot under way finishes: it is copy-on-write)."""

    def __init__(
        self,
        snaps: ShardSnapshots,
        snapshot: Callable[[], tuple[int, bytes]],
        *,
        interval_s: float,
        keep: int,
    ) -> None:
        self.snaps, self.snapshot = snaps, snapshot
        self.interval_s, self.keep = interval_s, max(1, keep)
        self.last_seq = 0
        self.taken = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="riskgate-snapshotter", daemon=True)

    def start(self) -> Snapshotter:
        with contextlib.suppress(Exception):
            seqs = self.snaps.seqs()
            self.last_seq = seqs[0] if seqs else 0
        self._thread.start()
        return self

    def take(self) -> int:
        """One snapshot now (if there is anything new); its seq, or 0."""
        t0 = time.monotonic()
        seq, payload = self.snapshot()
        if seq <= self.last_seq:
            return 0
        self.snaps.put(seq, payload)
        self.last_seq, self.taken = seq, self.taken + 1
        kept_from = self.snaps.prune(self.keep)
        _log.info("cluster_snapshot", shard=self.snaps.shard, seq=seq, bytes=len(payload),
                  seconds=round(time.monotonic() - t0, 3), stream_kept_from=kept_from)  # fmt: skip
        return seq

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.take()
            except Exception:
                _log.exception("cluster_snapshot_failed", shard=self.snaps.shard)

    def stop(self, wait_s: float = 0.0) -> None:
        self._stop.set()
        if wait_s and self._thread.is_alive():
            self._thread.join(wait_s)
