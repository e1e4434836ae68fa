"""Rebuilding the book: the newest valid snapshot, then the journal's events after it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from riskgate.engine.apply import apply, bind_all
from riskgate.engine.book import Book
from riskgate.engine.capture import event_accounts
from riskgate.engine.events import MarketApplied, Stamped

ALL = "\x00all"  # in ``touched``: an event of every account (no account id is empty)


class RecoveryError(RuntimeError):
    """The journal cannot be replayed onto the book (a gap, an event that does not apply)."""


class Replayed(NamedTuple):
    seq: int  # of the last event applied
    events: int  # how many were applied


def replay(
    book: Book, events: Iterable[Stamped], after_seq: int = 0, touched: set[str] | None = None
) -> Replayed:
    """Apply ``events`` (those after ``after_seq``, in order, without gaps) to ``book``.
    ``touched`` collects the ids of the accounts they changed (``ALL``: possibly any)."""
    seq, n = after_seq, 0
    for stamped in events:
        if stamped.seq <= after_seq:
            continue
        if stamped.seq != seq + 1:
            raise RecoveryError(f"journal: event {seq + 1} missing (next is {stamped.seq})")
        if touched is not None and ALL not in touched:
            ids = event_accounts(stamped.event)
            if ids is None or isinstance(stamped.event, MarketApplied):
                touched.add(ALL)
            else:
                touched.update(ids)
        try:
            apply(book, stamped.event)
            if isinstance(stamped.event, MarketApplied):
                bind_all(book)  # as the live engine does before the next market update
        except Exception as exc:
            raise RecoveryError(
                f"journal: event {stamped.seq} ({type(stamped.event).__name__}) does not apply: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        seq, n = stamped.seq, n + 1
    book.status_changes.clear()
    return Replayed(seq, n)
