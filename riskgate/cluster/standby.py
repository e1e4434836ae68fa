"""A hot standby: tails a shard's JetStream stream and applies every event to its engine's
book with the same :func:`~riskgate.engine.apply.apply` the owner used (``bind_all`` after
a ``MarketApplied``, as in recovery), so its state hash equals the owner's once caught up.

Messages arrive on an ordered push consumer (no acks, gaps and redeliveries handled by the
client, which recreates the consumer at the next sequence) in the sink's event-loop thread
and are applied in a worker thread, so a long apply (a market update) does not stall the
client's heartbeats.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy

from riskgate.cluster.lease import Lease
from riskgate.engine.apply import apply, bind_all
from riskgate.engine.engine import RiskEngine
from riskgate.engine.events import MarketApplied, MarketSourced
from riskgate.engine.journal import codec
from riskgate.engine.journal.nats_journal import (
    ClusterJournalError,
    JetStreamJournal,
    LoopThread,
    Mode,
    connect,
    retrying,
    stream_name,
    subject,
)

_STOP = (0, b"")
_MARKET_EVENTS = (MarketApplied, MarketSourced)
_NO_LOCK = contextlib.nullcontext()


class Standby:
    """Applies shard ``shard``'s events after ``engine.seq`` to ``engine``'s book.

    ``engine`` must hold no sink (it does not commit) and a book whose last event is
    ``engine.seq`` (an empty book and 0, or a recovered one). :attr:`seq` is the last applied
    event; :attr:`error` is set (and applying stops) if an event does not apply.
    """

    def __init__(
        self,
        shard: int,
        urls: Sequence[str],
        engine: RiskEngine,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if engine.sink is not None:
            raise ValueError("standby: its engine must not journal (it has a sink)")
        self.shard, self.engine, self.urls = shard, engine, list(urls)
        self.seq = engine.seq
        self.applied = 0  # events applied by this standby (after the book it started from)
        self.error: Exception | None = None
        self.takeover_s = (0.0, 0.0)
        self._lock = threading.Lock()  # the book, while an event is applied
        self._applied = threading.Condition(self._lock)
        self._queue: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()
        self._worker = threading.Thread(
            target=self._apply_loop, name=f"riskgate-standby-{shard}", daemon=True
        )
        self._worker.start()
        self._lt = LoopThread(f"riskgate-standby-nats-{shard}")
        try:
            self._lt.run(self._subscribe(urls, connect_timeout_s), connect_timeout_s + 30.0)
        except BaseException:
            self.close()
            raise

    async def _subscribe(self, urls: Sequence[str], connect_timeout_s: float) -> None:
        self._nc = await connect(urls, f"riskgate-standby-{self.shard}", connect_timeout_s)
        js = self._nc.jetstream(timeout=2.0)
        self._sub = await retrying(
            lambda: js.subscribe(
                subject(self.shard), stream=stream_name(self.shard), ordered_consumer=True,
                cb=self._on_msg, idle_heartbeat=1.0,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.seq + 1
                ),
            ), connect_timeout_s + 20.0, f"standby {self.shard}: stream consumer",
        )  # fmt: skip

    async def _on_msg(self, msg) -> None:
        self._queue.put((msg.metadata.sequence.stream, msg.data))

    def _apply_loop(self) -> None:
        eng = self.engine
        book = eng.book
        while True:
            seq, payload = self._queue.get()
            if (seq, payload) == _STOP:
                return
            if seq <= self.seq or self.error is not None:
                continue  # delivered again after a consumer reset
            with self._lock:
                try:
                    if seq != self.seq + 1:
                        raise ClusterJournalError(
                            f"standby {self.shard}: event {self.seq + 1} missing (next is {seq})"
                        )
                    stamped = codec.decode_event_checked(seq, payload)
                    # under the engine's locks, as a commit: its copy-on-write snapshot
                    # (RiskEngine.snapshot) works on a standby's book too (it reads the
                    # market outside the commit lock, holding the market lock)
                    market = isinstance(stamped.event, _MARKET_EVENTS)
                    with eng._market_lock if market else _NO_LOCK, eng._commit_lock:
                        if eng._capture is not None:
                            eng._capture.before(book, stamped.event)
                        apply(book, stamped.event)
                        if isinstance(stamped.event, MarketApplied):
                            bind_all(book)
                        book.status_changes.clear()  # nobody subscribes to a standby
                        eng.seq = eng._written = seq
                except Exception as exc:
                    self.error = exc
                    self._applied.notify_all()
                    continue
                self.seq, self.applied = seq, self.applied + 1
                self._applied.notify_all()

    def wait_for(self, seq: int, timeout_s: float = 30.0) -> int:
        """Until event ``seq`` is applied (or an error, or the timeout); the applied seq."""
        deadline = time.monotonic() + timeout_s
        with self._applied:
            while self.seq < seq and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._applied.wait(left)
        if self.error is not None:
            raise self.error
        return self.seq

    def take_over(
        self,
        lease: Lease,
        *,
        mode: Mode = "sync",
        poll_s: float | None = None,
        timeout_s: float = 60.0,
        on_lost: Callable[[], None] | None = None,
        **sink_options: Any,
    ) -> JetStreamJournal:
        """Become the shard's owner: wait until ``lease`` can be taken (the owner's lapsed),
        open the stream as its writer, finish applying every event in it, stop tailing and
        give the engine the sink (it serves from now on). ``lease`` is renewed from then on;
        ``on_lost`` is called if that fails."""
        deadline = time.monotonic() + timeout_s
        while not lease.acquire():
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby {self.shard}: lease held by {lease.owner()!r}")
            time.sleep(poll_s or lease.ttl_s / 10)
        lease.keep(on_lost)
        # a writer id of its own even if two processes were given one owner id: the stream
        # deduplicates by it, and a stale writer's message must never pass as ours
        writer = f"{lease.owner_id}-{uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        sink = JetStreamJournal(self.urls, self.shard, writer_id=writer, mode=mode, **sink_options)
        t1 = time.monotonic()
        try:
            self.wait_for(sink.start_seq, max(1.0, deadline - time.monotonic()))
            # seconds: opening the stream as writer, then applying the events left
            self.takeover_s = (t1 - t0, time.monotonic() - t1)
            if self.seq != sink.start_seq:
                raise ClusterJournalError(
                    f"standby {self.shard}: applied {self.seq} of {sink.start_seq} events"
                )
            self.close()
        except BaseException:
            sink.close()
            raise
        self.engine.sink = sink
        return sink

    def state_hash(self) -> str:
        """The hash of the book as of :attr:`seq` (no event is half-applied)."""
        with self._lock:
            return codec.state_hash(self.engine.book)

    def close(self) -> None:
        """Stop tailing; the engine keeps the book as of :attr:`seq`."""
        if not self._lt.loop.is_closed():
            with contextlib.suppress(Exception):
                self._lt.run(self._close(), 10.0)
            self._lt.close()
        self._queue.put(_STOP)
        self._worker.join(10.0)

    async def _close(self) -> None:
        nc = getattr(self, "_nc", None)
        if nc is not None:
            await nc.close()
