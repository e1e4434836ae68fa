"""The event journal, snapshots and recovery.

``codec`` turns events and the book into their protobuf records, ``store`` is the data
directory the engine journals into, ``recovery`` replays events onto a book. Storage:

:class:`FileJournal` keeps every state-change event (opaque bytes with a sequence number)
in append-only segment files; :func:`write_snapshot` and :func:`latest_snapshot` keep
atomic snapshots. Start-up recovery reads the newest valid snapshot, then replays the
journal records after its seq.
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
from riskgate.engine.journal.snapshots import (
    SnapshotError,
    SnapshotInfo,
    latest_snapshot,
    list_snapshots,
    prune_snapshots,
    write_snapshot,
)

__all__ = [
    "FSYNC_POLICIES",
    "FileJournal",
    "JournalCorrupt",
    "JournalError",
    "JournalScan",
    "SegmentInfo",
    "SnapshotError",
    "SnapshotInfo",
    "latest_snapshot",
    "list_snapshots",
    "prune_snapshots",
    "scan_journal",
    "write_snapshot",
]
