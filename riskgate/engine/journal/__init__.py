"""Durable storage for the engine's recovery: an event journal of state-change events.

:class:`FileJournal` keeps every event (opaque bytes with a sequence number) in
append-only segment files, checked when opened and when read back for replay.
"""

from riskgate.engine.journal.file import (
    FSYNC_POLICIES,
    FileJournal,
    JournalCorrupt,
    JournalError,
    JournalScan,
    SegmentInfo,
    scan_journal,
)

__all__ = [
    "FSYNC_POLICIES",
    "FileJournal",
    "JournalCorrupt",
    "JournalError",
    "JournalScan",
    "SegmentInfo",
    "scan_journal",
]
