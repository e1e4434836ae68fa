"""Which accounts an event changes, and the copy-on-write capture of a snapshot's accounts
(the engine's snapshot, recovery's reuse of a snapshot's encoded accounts)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from riskgate.engine.book import Account, Book
from riskgate.engine.events import Audited, Event


class SnapshotCapture:
    """The accounts of a snapshot's cut, copied (``copy(account)``) once each: by the
    snapshot, or by the first commit that would change one (:meth:`before`)."""

    def __init__(self, accounts: Sequence[Account], copy: Callable[[Account], Any]) -> None:
        self._todo = {id(a): a for a in accounts}
        self._done: dict[int, Any] = {}
        self._copy = copy

    def take(self, acc: Account) -> None:
        if self._todo.pop(id(acc), None) is not None:
            self._done[id(acc)] = self._copy(acc)

    def before(self, book: Book, event: Event) -> None:
        """Copy what ``event`` is about to change (commit lock held)."""
        targets = event_accounts(event)
        if targets is None:
            for acc in list(self._todo.values()):
                self.take(acc)
            return
        for aid in targets:
            acc = book.accounts.get(aid)
            if acc is not None:
                self.take(acc)

    def states(self, accounts: Sequence[Account]) -> list[Any]:
        return [self._done[id(a)] for a in accounts]


def event_accounts(event: Event) -> tuple[str, ...] | None:
    """The accounts an event changes; None: possibly every account."""
    if isinstance(event, Audited):
        return ()
    if getattr(event, "all_accounts", False):
        return None
    aid = getattr(event, "account_id", None)
    if aid is None:
        req = getattr(event, "request", None)
        aid = getattr(req, "account_id", None)
    return None if aid is None else (aid,)
