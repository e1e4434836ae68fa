"""The data directory: the event journal (``journal/``) and book snapshots (``snapshots/``).

:class:`DataStore` is the engine's event sink: committed events are encoded and appended
(one write per call) before the reply that depends on them, and ``wait_durable`` applies
the fsync policy. :meth:`DataStore.recover` rebuilds a book from the newest valid snapshot
and the journal's events after it; :meth:`DataStore.save_snapshot` writes one and deletes
the journal segments and snapshots it makes unnecessary.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from riskgate.engine.book import Book
from riskgate.engine.events import Stamped
from riskgate.engine.journal import codec
from riskgate.engine.journal.file import FileJournal
from riskgate.engine.journal.recovery import ALL, RecoveryError, replay
from riskgate.engine.journal.snapshots import (
    latest_snapshot,
    list_snapshots,
    prune_snapshots,
    write_snapshot,
)

JOURNAL_DIR = "journal"
SNAPSHOT_DIR = "snapshots"


@dataclass(frozen=True)
class Recovery:
    """What start-up found in the data directory and did with it."""

    snapshot_seq: int  # 0: no snapshot
    snapshot_path: str
    events_replayed: int
    last_seq: int
    truncated_bytes: int  # of a torn last record, cut off
    invalid_snapshots: tuple[str, ...]  # skipped, with the reason
    seconds: float
    state_hash: str

    @property
    def empty(self) -> bool:
        return self.last_seq == 0


class DataStore:
    def __init__(
        self,
        data_dir: str | Path,
        *,
        fsync: str = "batch",
        fsync_interval_ms: float = 5.0,
        segment_bytes: int = 64 * 2**20,
        keep_snapshots: int = 2,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.snapshot_dir = self.data_dir / SNAPSHOT_DIR
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        self.keep_snapshots = max(1, keep_snapshots)
        self.journal = FileJournal(
            self.data_dir / JOURNAL_DIR,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            segment_bytes=segment_bytes,
        )
        self._encode = codec.encode_event

    # ------------------------------------------------------------------ the sink

    def write(self, events: Sequence[Stamped]) -> None:
        encode = self._encode
        if len(events) == 1:
            self.journal.append(events[0].seq, encode(events[0]))
        elif events:
            self.journal.append_batch(events[0].seq, [encode(e) for e in events])

    def wait_durable(self, seq: int) -> None:
        self.journal.wait_durable(seq)

    # ------------------------------------------------------------------ recovery

    def recover(self, book: Book) -> Recovery:
        """Fill the empty ``book``: newest valid snapshot, then the journal after it.

        The cyclic garbage collector is paused meanwhile: the book grows by millions of
        objects, none of them garbage, and each collection would walk them again (about a
        quarter of the time of a large replay)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._recover(book)
        finally:
            if collecting:
                gc.enable()

    def _recover(self, book: Book) -> Recovery:
        t0 = time.perf_counter()
        invalid = tuple(
            f"{s.path.name}: {s.error}" for s in list_snapshots(self.snapshot_dir) if not s.valid
        )
        snap_seq, snap_path, snap_hash, payload = 0, "", "", b""
        found = latest_snapshot(self.snapshot_dir)
        if found is not None:
            snap_seq, payload, path = found
            try:
                _, snap_hash = codec.decode_snapshot_hashed(payload, book)
            except codec.CodecError as exc:
                raise RecoveryError(f"{path}: {exc}") from None
            snap_path = str(path)
        snap_ids = list(book.accounts)
        first = self.journal.first_seq
        if first and first > snap_seq + 1:
            raise RecoveryError(
                f"journal: starts at event {first} but the newest valid snapshot covers only "
                f"events up to {snap_seq}: events {snap_seq + 1}..{first - 1} are lost"
            )
        if self.journal.last_seq < snap_seq:
            raise RecoveryError(
                f"journal: ends at event {self.journal.last_seq}, before the snapshot's {snap_seq}"
            )
        events = (
            codec.decode_event_checked(seq, payload)
            for seq, payload in self.journal.records(snap_seq + 1)
        )
        touched: set[str] = set()
        done = replay(book, events, after_seq=snap_seq, touched=touched)
        if snap_hash and not done.events:
            state = snap_hash  # nothing after the snapshot: the hash it was checked against
        elif snap_hash and ALL not in touched:
            # the accounts the tail left alone are encoded in the snapshot already
            known = dict(zip(snap_ids, codec.snapshot_accounts(payload), strict=True))
            for aid in touched:
                known.pop(aid, None)
            state = codec.state_hash_reusing(book, known)
        else:
            state = codec.state_hash(book)
        return Recovery(
            snap_seq, snap_path, done.events, done.seq, self.journal.truncated_bytes, invalid,
            time.perf_counter() - t0, state,
        )  # fmt: skip

    # ------------------------------------------------------------------ snapshots

    def save_snapshot(self, seq: int, payload: bytes) -> Path:
        """Write a snapshot covering events up to ``seq``; keep ``keep_snapshots`` of them
        and the journal segments the oldest kept one still needs."""
        self.journal.sync()  # a snapshot never covers events the journal could lose
        path = write_snapshot(self.snapshot_dir, seq, payload)
        prune_snapshots(self.snapshot_dir, keep=self.keep_snapshots)
        kept = [s.seq for s in list_snapshots(self.snapshot_dir) if s.valid]
        if kept:
            self.journal.delete_before(min(kept) + 1)
        return path

    def close(self) -> None:
        self.journal.close()
