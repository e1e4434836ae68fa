"""The service's data directory at run time: recovery at start-up, periodic and shutdown
snapshots, closing the journal. Without a data directory nothing is persisted."""

from __future__ import annotations

import threading
from pathlib import Path

from riskgate.config import Settings
from riskgate.engine.engine import RiskEngine
from riskgate.engine.journal.codec import CodecError
from riskgate.engine.journal.file import JournalError
from riskgate.engine.journal.recovery import RecoveryError
from riskgate.engine.journal.snapshots import SnapshotError
from riskgate.engine.journal.store import DataStore, Recovery
from riskgate.server.logging import get_logger

_log = get_logger("riskgate.durability")
STORE_ERRORS = (JournalError, RecoveryError, CodecError, SnapshotError, OSError)


class DataDirError(RuntimeError):
    """The data directory cannot be opened or recovered; names the file and the problem."""


class Durability:
    """Owns the engine's :class:`DataStore`: recovers into the engine, then snapshots."""

    def __init__(self, settings: Settings, engine: RiskEngine) -> None:
        assert settings.data_dir is not None
        self.settings = settings
        self.engine = engine
        try:
            self.store = DataStore(
                settings.data_dir,
                fsync=settings.journal_fsync,
                fsync_interval_ms=settings.journal_fsync_interval_ms,
                segment_bytes=int(settings.journal_segment_mb * 2**20),
                keep_snapshots=settings.snapshot_keep,
            )
        except STORE_ERRORS as exc:
            raise DataDirError(f"data_dir: {settings.data_dir}: {exc}") from None
        self.recovery: Recovery | None = None
        self.snapshot_seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one snapshot at a time

    def recover(self) -> Recovery:
        """Rebuild the engine's book from the data directory; from now on every commit is
        journaled there."""
        book = self.engine.new_book()
        try:
            rec = self.store.recover(book)
        except STORE_ERRORS as exc:
            self.store.close()
            raise DataDirError(f"data_dir: {self.settings.data_dir}: {exc}") from None
        self.engine.restore(book, rec.last_seq)
        self.engine.sink = self.store
        self.recovery, self.snapshot_seq = rec, rec.snapshot_seq
        _log.info(
            "recovered", data_dir=str(Path(self.settings.data_dir).resolve()),
            snapshot_seq=rec.snapshot_seq, events_replayed=rec.events_replayed,
            last_seq=rec.last_seq, accounts=len(book.accounts),
            truncated_bytes=rec.truncated_bytes, invalid_snapshots=list(rec.invalid_snapshots),
            seconds=round(rec.seconds, 3), state_hash=rec.state_hash,
            fsync=self.settings.journal_fsync,
        )  # fmt: skip
        return rec

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="riskgate-snapshot", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.snapshot_interval_s):
            try:
                self.snapshot()
            except Exception:
                _log.exception("snapshot_failed")

    def snapshot(self) -> int:
        """Write a snapshot if anything happened since the last one; returns its seq."""
        with self._lock:
            if self.engine.seq == self.snapshot_seq:
                return self.snapshot_seq
            seq, payload = self.engine.snapshot()
            path = self.store.save_snapshot(seq, payload)
            self.snapshot_seq = seq
        _log.info("snapshot", seq=seq, bytes=len(payload), path=path.name)
        return seq

    def close(self) -> None:
        """Stop snapshotting, write the shutdown snapshot, close the journal. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self.engine.sink is self.store:
            try:
                self.snapshot()
            finally:
                self.engine.sink = None
                self.store.close()
