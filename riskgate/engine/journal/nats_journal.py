"""The replicated journal: a shard's events in a NATS JetStream stream (first step of the
cluster mode; the embedded file journal stays the default).

Each shard ``k`` has one stream, ``RISKGATE_SHARD_<k>``, on one subject,
``riskgate.shard.<k>.events``, file storage, ``replicas`` copies (3 on a 3-node cluster).
Event ``seq`` is stored as stream message ``seq``: the stream holds nothing else, so the two
sequences are the same number, and every publish of event ``seq`` carries
``Nats-Expected-Last-Sequence: seq - 1``. JetStream appends it only if the stream's last
message is exactly the previous event, so a writer that is behind (a paused old owner, a
second process on the shard) is refused and :class:`JetStreamJournal` reports that it lost
ownership — it never forks the stream. Each publish also carries
``Nats-Msg-Id: <writer id>:<seq>``: a retransmission after a timeout or a leader change is
deduplicated by the stream, while another writer's message for the same seq is not.

Modes: ``sync`` — :meth:`JetStreamJournal.wait_durable` returns once JetStream has
acknowledged every event up to ``seq`` (publishes are pipelined: :meth:`write` only queues,
so a burst costs one round trip, not one per event); ``async`` — it returns at once unless
more than ``max_inflight`` events are unacknowledged; :attr:`JetStreamJournal.lag` is the
number in flight.

nats-py is asyncio; the sink owns an event loop in a background thread and hands work to it
with ``call_soon_threadsafe`` (the hot path) or ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal, TypeVar

import nats
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from riskgate.engine.book import Book
from riskgate.engine.events import ACTOR, Stamped
from riskgate.engine.journal import codec
from riskgate.engine.journal.recovery import replay

T = TypeVar("T")
Mode = Literal["sync", "async"]
WRONG_LAST_SEQUENCE = 10071  # JetStream's err_code for a failed expected-sequence check
STREAM_IN_USE = 10058  # a stream of that name exists with another configuration
_log = logging.getLogger("riskgate.cluster")


class ClusterJournalError(RuntimeError):
    """The replicated journal cannot take or confirm events; the shard must stop serving."""


class OwnershipLost(ClusterJournalError):
    """Another writer appended to the shard's stream: this one is stale and must step down."""


class JournalUnavailable(ClusterJournalError):
    """JetStream did not acknowledge an event within the durability timeout."""


def stream_name(shard: int) -> str:
    return f"RISKGATE_SHARD_{shard}"


def subject(shard: int) -> str:
    return f"riskgate.shard.{shard}.events"


class LoopThread:
    """One asyncio event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10.0)
        if not self.thread.is_alive():
            self.loop.close()


async def _log_error(exc: Exception) -> None:
    _log.debug("nats: %s: %s", type(exc).__name__, exc)  # reconnects are routine


# connection options every client of this process uses (credentials, TLS): set once at
# start-up by the server (riskgate.cluster.options), before any connection is made
CONNECT_OPTIONS: dict[str, Any] = {}


async def connect(urls: Sequence[str], name: str, connect_timeout_s: float = 10.0):
    """A client that reconnects (to any of ``urls``) for as long as it lives."""
    return await nats.connect(
        servers=list(urls), name=name, connect_timeout=connect_timeout_s,
        allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
        error_cb=_log_error, **CONNECT_OPTIONS,
    )  # fmt: skip


# while a stream or the meta group elects a leader, JetStream API requests go unanswered or
# answer 503: ask again, each time with a short timeout, until the overall deadline
_TRANSIENT = (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)


async def retrying(call: Callable[[], Awaitable[T]], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await call()
        except _TRANSIENT as exc:
            if time.monotonic() > deadline:
                raise ClusterJournalError(f"{what}: no answer in {timeout_s}s ({exc!r})") from exc
            await asyncio.sleep(0.2)


async def ensure_stream(js, shard: int, replicas: int, timeout_s: float = 30.0) -> int:
    """Create the shard's stream if it does not exist; its last sequence."""
    config = StreamConfig(
        name=stream_name(shard), subjects=[subject(shard)], num_replicas=replicas,
        storage=StorageType.FILE, retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.NEW,
        duplicate_window=120.0,
    )  # fmt: skip
    try:
        info = await retrying(lambda: js.add_stream(config), timeout_s, "create stream")
    except BadRequestError as exc:
        if exc.err_code != STREAM_IN_USE:
            raise
        info = await retrying(lambda: js.stream_info(stream_name(shard)), timeout_s, "stream info")
    return info.state.last_seq


def create_stream(urls: Sequence[str], shard: int, replicas: int, timeout_s: float = 30.0) -> int:
    """:func:`ensure_stream` from a synchronous caller (a standby subscribes to it)."""

    async def run() -> int:
        nc = await connect(urls, f"riskgate-stream-{shard}", timeout_s)
        try:
            return await ensure_stream(nc.jetstream(timeout=2.0), shard, replicas, timeout_s)
        finally:
            await nc.close()

    lt = LoopThread(f"riskgate-stream-{shard}")
    try:
        return lt.run(run(), timeout_s + 15.0)
    finally:
        lt.close()


class JetStreamJournal:
    """The engine's event sink on shard ``shard``'s stream (see the module docstring).

    Opening it creates the stream if needed and reads its last sequence: the engine must hold
    exactly that many events (recovered with :func:`recover_from_stream`) before its next
    commit. After :class:`OwnershipLost` or :class:`JournalUnavailable` every call raises it
    again: the book may hold events the stream does not, so the process must step down and
    recover.
    """

    def __init__(
        self,
        urls: Sequence[str],
        shard: int,
        *,
        mode: Mode = "sync",
        replicas: int = 3,
        writer_id: str | None = None,
        ack_timeout_s: float = 1.0,
        durable_timeout_s: float = 15.0,
        max_inflight: int = 10_000,
        max_pipeline: int = 256,
        connect_timeout_s: float = 10.0,
        async_principals: Sequence[str] = (),
    ) -> None:
        if mode not in ("sync", "async"):
            raise ValueError(f"mode: {mode!r} (sync or async)")
        self.shard, self.mode, self.max_inflight = shard, mode, max(1, max_inflight)
        # calls of these principals are acknowledged as in async mode (the rest: ``mode``)
        self.async_principals = frozenset(async_principals)
        self.max_pipeline = max(1, max_pipeline)  # publishes awaiting an ack, at most
        self.subject = subject(shard)
        # unique per writer: retransmissions are deduplicated by it, so two writers sharing
        # one id could see each other's message for a seq acknowledged as their own
        self.writer_id = writer_id or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.ack_timeout_s, self.durable_timeout_s = ack_timeout_s, durable_timeout_s
        self.error: ClusterJournalError | None = None
        # called once (on a thread of its own) when the sink fails: the shard must step down
        self.on_error: Callable[[ClusterJournalError], None] | None = None
        self.counters = {"published": 0, "acked": 0, "resent": 0, "no_responders": 0}
        self._encode = codec.encode_event
        self._cond = threading.Condition()
        self._outbox: collections.deque[tuple[int, bytes]] = collections.deque()
        self._inflight: dict[int, bytes] = {}  # sent, not acknowledged
        self._early: set[int] = set()  # acknowledged out of order, above _acked + 1
        self._first_sent_ns = 0  # when the oldest unacknowledged event was first sent
        self._last_sent_ns = 0  # when it was last (re)sent
        self._resend_due = False
        self._kicked = False  # a wake-up of the sender is scheduled on the loop
        self._lt = LoopThread(f"riskgate-jetstream-{shard}")
        try:
            self.start_seq = self._lt.run(
                self._open(urls, replicas, connect_timeout_s), connect_timeout_s + 30.0
            )
        except BaseException:
            self._lt.close()
            raise
        self.written = self.acked = self.start_seq  # last event handed over / acknowledged

    @property
    def lost_ownership(self) -> bool:
        return isinstance(self.error, OwnershipLost)

    @property
    def lag(self) -> int:
        """Events written but not yet acknowledged by JetStream."""
        return self.written - self.acked

    # ------------------------------------------------------------------ engine side

    def write(self, events: Sequence[Stamped]) -> None:
        """Queue ``events`` (the next ones, in seq order) for publishing; never waits."""
        if self.error is not None:
            raise self.error
        if not events:
            return
        if events[0].seq != self.written + 1:
            raise ClusterJournalError(
                f"shard {self.shard}: event {events[0].seq} written after {self.written} "
                f"(the stream is at {self.start_seq}: recover before committing)"
            )
        encode = self._encode
        self._outbox.extend((e.seq, encode(e)) for e in events)
        self.written = events[-1].seq
        if not self._kicked:  # else a wake-up is already on its way; it will see these
            self._kicked = True
            self._lt.loop.call_soon_threadsafe(self._kick)

    def wait_durable(self, seq: int) -> None:
        """``sync``: until JetStream has acknowledged events up to ``seq``. ``async``: only
        while more than ``max_inflight`` events are unacknowledged."""
        if self.mode == "async" or (self.async_principals and ACTOR.get() in self.async_principals):
            seq -= self.max_inflight
        if self.acked >= seq:
            if self.error is not None:
                raise self.error
            return
        deadline = time.monotonic() + self.durable_timeout_s + self.ack_timeout_s
        with self._cond:
            while self.acked < seq:
                if self.error is not None:
                    raise self.error
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JournalUnavailable(
                        f"shard {self.shard}: event {seq} not acknowledged "
                        f"in {self.durable_timeout_s}s"
                    )
                self._cond.wait(min(left, 0.5))
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop publishing (events not yet acknowledged stay unconfirmed) and disconnect."""
        if self._lt.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self._lt.run(self._close(), 10.0)
        self._lt.close()

    # ------------------------------------------------------------------ loop side

    async def _open(self, urls: Sequence[str], replicas: int, connect_timeout_s: float) -> int:
        self._nc = await connect(urls, f"riskgate-shard-{self.shard}", connect_timeout_s)
        js = self._nc.jetstream(timeout=2.0)
        last = await ensure_stream(js, self.shard, replicas, connect_timeout_s + 20.0)
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # the pipeline has room again
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        self._tasks = [
            asyncio.ensure_future(self._sender()),
            asyncio.ensure_future(self._watchdog()),
        ]
        return last

    async def _close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._nc.close()

    def _headers(self, seq: int) -> dict[str, str]:
        return {
            "Nats-Msg-Id": f"{self.writer_id}:{seq}",
            "Nats-Expected-Last-Sequence": str(seq - 1),
        }

    async def _publish(self, seq: int, payload: bytes) -> None:
        await self._nc.publish(
            self.subject, payload, reply=f"{self._inbox}.{seq}", headers=self._headers(seq)
        )

    def _kick(self) -> None:
        self._kicked = False  # first: a write from now on schedules another wake-up
        self._wake.set()

    async def _sender(self) -> None:
        outbox, inflight = self._outbox, self._inflight
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox and self.error is None:
                if len(inflight) >= self.max_pipeline:
                    # more would only overrun the stream leader's queue and be refused
                    self._room.clear()
                    await self._room.wait()
                    continue
                seq, payload = outbox.popleft()
                now = time.monotonic_ns()
                if not inflight:
                    self._first_sent_ns = self._last_sent_ns = now
                inflight[seq] = payload
                self.counters["published"] += 1
                await self._publish(seq, payload)

    async def _resend(self) -> None:
        """Publish every unacknowledged event again, in order (the stream drops the ones it
        already holds by their message id)."""
        self._resend_due = False
        self._last_sent_ns = time.monotonic_ns()
        for seq in sorted(self._inflight):
            if self.error is not None:
                return
            payload = self._inflight.get(seq)
            if payload is not None:
                self.counters["resent"] += 1
                await self._publish(seq, payload)

    def _schedule_resend(self, delay_s: float) -> None:
        if not self._resend_due:
            self._resend_due = True
            self._lt.loop.call_later(delay_s, lambda: asyncio.ensure_future(self._resend()))

    async def _watchdog(self) -> None:
        """Retransmit after ``ack_timeout_s`` without an acknowledgement; give up (fail
        closed) after ``durable_timeout_s``."""
        while True:
            await asyncio.sleep(min(0.1, self.ack_timeout_s / 4))
            if not self._inflight or self.error is not None:
                continue
            now = time.monotonic_ns()
            if now - self._first_sent_ns > self.durable_timeout_s * 1e9:
                self._fail(
                    JournalUnavailable(
                        f"shard {self.shard}: event {self.acked + 1} not acknowledged "
                        f"in {self.durable_timeout_s}s"
                    )
                )
            elif now - self._last_sent_ns > self.ack_timeout_s * 1e9 and not self._resend_due:
                await self._resend()

    def _fail(self, error: ClusterJournalError) -> None:
        first = self.error is None
        if first:
            self.error = error
        self._room.set()
        with self._cond:
            self._cond.notify_all()
        if first and self.on_error is not None:
            threading.Thread(target=self.on_error, args=(error,), daemon=True).start()

    async def _on_ack(self, msg) -> None:
        seq = int(msg.subject.rsplit(".", 1)[1])
        if seq not in self._inflight:
            return  # a late answer to a retransmitted event
        if msg.headers and msg.headers.get("Status") == "503":
            self.counters["no_responders"] += 1  # no stream leader yet: try again soon
            self._schedule_resend(0.1)
            return
        try:
            ack = json.loads(msg.data)
        except ValueError:
            self._schedule_resend(0.1)
            return
        err = ack.get("error")
        if err is not None:
            self._refused(seq, err)
            return
        if ack.get("seq") != seq:
            self._fail(
                ClusterJournalError(
                    f"shard {self.shard}: event {seq} stored as stream message {ack.get('seq')}"
                )
            )
            return
        self._acked_one(seq)

    def _refused(self, seq: int, err: dict) -> None:
        code, desc = err.get("err_code"), str(err.get("description", ""))
        if code != WRONG_LAST_SEQUENCE:
            self._schedule_resend(0.25)  # e.g. a leader change under way
            return
        try:
            last = int(desc.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            last = -1
        if 0 <= last < seq - 1 and last >= self.acked:
            # an earlier event of ours did not get there (lost in a reconnect or a leader
            # change): send them all again, in order
            self._schedule_resend(0.05)
            return
        self._fail(
            OwnershipLost(
                f"shard {self.shard}: stream {stream_name(self.shard)} is at message {last}, "
                f"event {seq} of writer {self.writer_id} expected {seq - 1}: another writer "
                f"appended, this one has lost ownership of the shard"
            )
        )

    def _acked_one(self, seq: int) -> None:
        inflight = self._inflight
        inflight.pop(seq, None)
        self.counters["acked"] += 1
        if len(inflight) < self.max_pipeline:
            self._room.set()
        acked = self.acked
        if seq != acked + 1:
            self._early.add(seq)
            return
        acked = seq
        early = self._early
        while early and acked + 1 in early:
            acked += 1
            early.discard(acked)
        now = time.monotonic_ns()
        self._first_sent_ns = self._last_sent_ns = now
        with self._cond:
            self.acked = acked
            self._cond.notify_all()


# ---------------------------------------------------------------------- recovery


async def _read_stream(
    urls: Sequence[str], shard: int, after_seq: int, timeout_s: float
) -> list[tuple[int, bytes]]:
    nc = await connect(urls, f"riskgate-recover-{shard}", timeout_s)
    try:
        js = nc.jetstream(timeout=2.0)
        try:
            info = await retrying(
                lambda: js.stream_info(stream_name(shard)), timeout_s, "stream info"
            )
        except NotFoundError:
            return []
        last = info.state.last_seq
        if last <= after_seq:
            return []
        out: list[tuple[int, bytes]] = []
        sub = await retrying(
            lambda: js.subscribe(
                subject(shard), stream=stream_name(shard), ordered_consumer=True,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1
                ),
            ), timeout_s, "stream consumer",
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClusterJournalError(
                        f"shard {shard}: stream read stopped at {len(out) + after_seq} of {last}"
                    )
                msg = await sub.next_msg(timeout=min(left, 5.0))
                sseq = msg.metadata.sequence.stream
                out.append((sseq, msg.data))
                if sseq >= last:
                    return out
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def recover_from_stream(
    urls: Sequence[str],
    shard: int,
    book: Book,
    after_seq: int = 0,
    timeout_s: float = 60.0,
) -> tuple[Book, int]:
    """Replay shard ``shard``'s stream (the events after ``after_seq``: ``book`` holds a
    snapshot up to it, or is empty) onto ``book``; the book and its last event's seq. The
    stream's last message at the time of the call is the last one read."""
    lt = LoopThread(f"riskgate-recover-{shard}")
    try:
        records = lt.run(_read_stream(urls, shard, after_seq, timeout_s), timeout_s + 30.0)
    finally:
        lt.close()
    events = (codec.decode_event_checked(seq, payload) for seq, payload in records)
    done = replay(book, events, after_seq=after_seq)
    return book, done.seq


__all__ = [
    "ClusterJournalError",
    "JetStreamJournal",
    "JournalUnavailable",
    "LoopThread",
    "OwnershipLost",
    "recover_from_stream",
    "stream_name",
    "subject",
]
