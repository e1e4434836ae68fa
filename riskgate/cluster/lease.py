"""Shard ownership leases in a JetStream key-value bucket.

Bucket ``riskgate-shards`` (``replicas`` copies, entries expire ``ttl_s`` after their last
write), key ``shard.<k>``, value the owner's id. :meth:`Lease.acquire` creates the key (only
if it does not exist, so of two contenders one wins); the owner renews it well within the
TTL with a compare-and-set on its own revision; if it stops renewing (it died, it paused,
it lost the network) a standby's ``acquire`` succeeds ``ttl_s`` after the standby first saw
that revision (a compare-and-set on it, by the standby's own clock: it does not wait for
the server's expiry timer), or once the entry has expired.

The lease only decides who *should* write; safety does not depend on clocks: the stream's
expected-last-sequence check refuses a stale owner's appends whatever it believes about its
lease (:class:`~riskgate.engine.journal.nats_journal.OwnershipLost`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence

from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)

from riskgate.engine.journal.nats_journal import STREAM_IN_USE, LoopThread, connect, retrying

BUCKET = "riskgate-shards"


def lease_key(shard: int) -> str:
    return f"shard.{shard}"


class Lease:
    """``owner_id``'s claim on shard ``shard``. Not thread-safe for concurrent callers; the
    renewal thread started by :meth:`keep` is the only one calling :meth:`renew`."""

    def __init__(
        self,
        urls: Sequence[str],
        shard: int,
        owner_id: str,
        *,
        ttl_s: float = 3.0,
        replicas: int = 3,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.shard, self.owner_id, self.ttl_s = shard, owner_id, ttl_s
        self.key = lease_key(shard)
        self.revision = 0  # of our entry while we hold the lease; 0: not held
        # when the write that last (re)started our lease's TTL was sent (monotonic): after
        # ttl_s from it, it may have lapsed and a standby taken over, whatever we believe
        self.renewed_at = 0.0
        # the holder's revision as another process first saw it, and when (acquire)
        self._seen_revision, self._seen_at = 0, 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lt = LoopThread(f"riskgate-lease-{shard}")
        try:
            self._lt.run(self._open(urls, replicas, connect_timeout_s), connect_timeout_s + 30.0)
        except BaseException:
            self._lt.close()
            raise

    async def _open(self, urls: Sequence[str], replicas: int, timeout_s: float) -> None:
        self._nc = await connect(urls, f"riskgate-lease-{self.shard}", timeout_s)
        js = self._nc.jetstream(timeout=2.0)
        try:
            self._kv = await retrying(lambda: js.key_value(BUCKET), timeout_s, "lease bucket")
        except BucketNotFoundError:
            config = KeyValueConfig(
                bucket=BUCKET, history=1, ttl=self.ttl_s, replicas=replicas,
                storage=StorageType.FILE,
            )  # fmt: skip
            try:
                self._kv = await retrying(
                    lambda: js.create_key_value(config), timeout_s, "lease bucket"
                )
            except BadRequestError as exc:  # created by another process meanwhile
                if exc.err_code != STREAM_IN_USE:
                    raise
                self._kv = await js.key_value(BUCKET)

    @property
    def held(self) -> bool:
        return self.revision != 0

    def fresh(self, margin_s: float = 0.0) -> bool:
        """Held, and renewed less than ``ttl_s - margin_s`` ago by this process's clock."""
        return self.revision != 0 and time.monotonic() - self.renewed_at < self.ttl_s - margin_s

    def owner(self) -> str | None:
        """The current holder's id, or None (no lease, or it lapsed)."""

        async def get() -> str | None:
            try:
                entry = await self._kv.get(self.key)
            except KeyNotFoundError:  # KeyDeletedError too
                return None
            return entry.value.decode() if entry.value else None

        return self._lt.run(retrying(get, 10.0, f"lease {self.key}"), 15.0)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it, or if the holder's entry has not been
        rewritten for ``ttl_s`` by this process's clock (it stopped renewing).

        The second way does not wait for the bucket to expire the entry (the server's
        expiry timer fires some time after the TTL): the standby watches the holder's
        revision, and ``ttl_s`` after it first saw it unchanged it replaces it with a
        compare-and-set on that revision. It first saw the revision after it was written,
        and the holder stops serving ``ttl_s`` after it *sent* that write
        (:meth:`fresh`), so the two never both believe they hold it; and the stream's
        expected-last-sequence check fences the writes whatever they believe."""

        async def take() -> bool:
            me = self.owner_id.encode()
            now = time.monotonic()
            try:
                entry = await self._kv.get(self.key)
            except KeyNotFoundError:  # nobody (never held, released, or expired)
                entry = None
            if entry is None:
                self.renewed_at = now
                try:
                    self.revision = await self._kv.create(self.key, me)
                    return True
                except (KeyWrongLastSequenceError, KeyNotFoundError):
                    # somebody else was first (nats-py's create then reads the key, which
                    # a replica not yet caught up may not hold: KeyNotFoundError)
                    return False
            if entry.value == me:  # ours: a retried write whose first try got there
                self.renewed_at, self.revision = now, entry.revision
                return True
            if entry.revision != self._seen_revision:
                self._seen_revision, self._seen_at = entry.revision, now
                return False
            if now - self._seen_at < self.ttl_s:
                return False
            self.renewed_at = now
            try:
                self.revision = await self._kv.update(self.key, me, last=entry.revision)
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                return False  # renewed (or replaced) at the last moment
            return True

        return self._lt.run(retrying(take, 10.0, f"lease {self.key}"), 15.0)

    def renew(self) -> bool:
        """Write the lease again (resetting its TTL) if it is still ours; False if it lapsed
        and somebody else (or nobody) holds it now."""
        if not self.revision:
            return False

        async def update() -> bool:
            sent = time.monotonic()
            try:
                self.revision = await self._kv.update(
                    self.key, self.owner_id.encode(), last=self.revision
                )
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                self.revision = 0
                return False
            self.renewed_at = sent
            return True

        return self._lt.run(retrying(update, self.ttl_s, f"lease {self.key}"), self.ttl_s + 5.0)

    def keep(self, on_lost: Callable[[], None] | None = None) -> None:
        """Renew every third of the TTL in a background thread until :meth:`close`; call
        ``on_lost`` once if the lease is lost."""

        def loop() -> None:
            while not self._stop.wait(self.ttl_s / 3):
                ok = False
                with contextlib.suppress(Exception):
                    ok = self.renew()
                if not ok:
                    self.revision = 0
                    if on_lost is not None:
                        on_lost()
                    return

        self._thread = threading.Thread(target=loop, name=f"riskgate-lease-{self.shard}")
        self._thread.daemon = True
        self._thread.start()

    def release(self) -> None:
        """Give the lease up now (a clean shutdown) so a standby need not wait for the TTL."""
        self._stop.set()
        if self.revision:
            rev, self.revision = self.revision, 0

            async def delete() -> None:
                with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
                    await self._kv.delete(self.key, last=rev)

            with contextlib.suppress(Exception):
                self._lt.run(delete(), 10.0)

    def close(self) -> None:
        """Stop renewing (the lease lapses after the TTL unless released) and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl_s + 10.0)
        if not self._lt.loop.is_closed():
            with contextlib.suppress(Exception):
                self._lt.run(self._nc.close(), 10.0)
            self._lt.close()
