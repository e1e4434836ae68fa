"""Market data for every shard: an update is published once, to the cluster's market stream
(``RISKGATE_MARKET``, subject ``riskgate.market``, replicated like the shard streams), and
each shard's owner takes the stream's messages in stream order, each one exactly once:
message ``s`` is applied with :meth:`RiskEngine.update_market` and journaled in the shard's
own stream as ``MarketApplied`` followed by ``MarketSourced(s)`` — or, if this shard refuses
it (it would drop an instrument one of its accounts holds, say), as ``MarketSourced(s,
refused)``. So every shard's journal holds the same sequence of market snapshots, in the
same order, and a standby or a new owner (whose book says which message was taken last)
goes on from the next one. The message is the API's ``UpdateMarketRequest``; its arrival
time is the stream's timestamp, the same for every shard.

A crash between the two events makes the next owner apply message ``s`` again: the same
update on the same market (marks and index unchanged by it, so futures settle nothing
twice).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from riskgate.engine.engine import RiskEngine
from riskgate.engine.journal.nats_journal import (
    STREAM_IN_USE,
    ClusterJournalError,
    LoopThread,
    connect,
    retrying,
)
from riskgate.engine.types import EngineError, MarketUpdateResult
from riskgate.server import convert
from riskgate.v1 import riskgate_pb2 as pb

MARKET_STREAM = "RISKGATE_MARKET"
MARKET_SUBJECT = "riskgate.market"
_STOP = (0, b"", 0)


async def ensure_market_stream(js: Any, replicas: int, timeout_s: float) -> None:
    config = StreamConfig(
        name=MARKET_STREAM, subjects=[MARKET_SUBJECT], num_replicas=replicas,
        storage=StorageType.FILE, retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
        max_msgs=-1,
    )  # fmt: skip
    try:
        await retrying(lambda: js.add_stream(config), timeout_s, "create market stream")
    except BadRequestError as exc:
        if exc.err_code != STREAM_IN_USE:
            raise


class MarketFeed:
    """Publishes market updates to the market stream (any process may)."""

    def __init__(self, urls: Sequence[str], replicas: int = 3, timeout_s: float = 10.0) -> None:
        self._lt = LoopThread("riskgate-market-feed")
        try:
            self._lt.run(self._open(urls, replicas, timeout_s), timeout_s + 30.0)
        except BaseException:
            self._lt.close()
            raise

    async def _open(self, urls: Sequence[str], replicas: int, timeout_s: float) -> None:
        self._nc = await connect(urls, "riskgate-market-feed", timeout_s)
        self._js = self._nc.jetstream(timeout=2.0)
        await ensure_market_stream(self._js, replicas, timeout_s + 20.0)

    def publish(self, request: pb.UpdateMarketRequest, only_first: bool = False) -> int:
        """The stream sequence of the published update; with ``only_first`` it is published
        only into an empty stream (0 if the stream already held an update)."""
        data = request.SerializeToString()
        headers = {"Nats-Expected-Last-Sequence": "0"} if only_first else None

        async def pub() -> int:
            try:
                ack = await self._js.publish(MARKET_SUBJECT, data, headers=headers)
            except BadRequestError:
                if only_first:
                    return 0
                raise
            return ack.seq

        return self._lt.run(retrying(pub, 20.0, "market publish"), 30.0)

    def close(self) -> None:
        if not self._lt.loop.is_closed():
            with contextlib.suppress(Exception):
                self._lt.run(self._nc.close(), 10.0)
            self._lt.close()


def _apply(engine: RiskEngine, seq: int, data: bytes, received_ns: int) -> Any:
    request = pb.UpdateMarketRequest.FromString(data)
    try:
        return engine.update_market(
            full_snapshot=request.full_snapshot,
            valuation_time=convert.valuation_time_from_proto(request),
            index_usd=dict(request.index_usd), marks_usd=dict(request.marks_usd),
            ivs=dict(request.ivs), rate=request.rate if request.HasField("rate") else None,
            market_seq=seq, received_ns=received_ns,
        )  # fmt: skip
    except EngineError as exc:  # refused by this shard: journaled as taken, refused
        engine.skip_market(seq, exc.message)
        return exc


class MarketFollower:
    """Applies the market stream's messages after ``engine.book.market_seq`` to the owner's
    ``engine`` (which journals them), one at a time in a worker thread. ``on_error`` is
    called if applying fails otherwise than by a refusal (the journal failed: step down)."""

    def __init__(
        self,
        urls: Sequence[str],
        engine: RiskEngine,
        on_error: Callable[[Exception], None] | None = None,
        timeout_s: float = 10.0,
        replicas: int = 3,
    ) -> None:
        self.engine, self.on_error, self.replicas = engine, on_error, replicas
        self.seq = engine.book.market_seq
        self.error: Exception | None = None
        self._results: dict[int, Any] = {}
        self._cond = threading.Condition()
        self._queue: queue.SimpleQueue[tuple[int, bytes, int]] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._loop, name="riskgate-market", daemon=True)
        self._worker.start()
        self._lt = LoopThread("riskgate-market-follow")
        try:
            self._lt.run(self._subscribe(urls, timeout_s), timeout_s + 30.0)
        except BaseException:
            self.close()
            raise

    async def _subscribe(self, urls: Sequence[str], timeout_s: float) -> None:
        self._nc = await connect(urls, "riskgate-market-follow", timeout_s)
        js = self._nc.jetstream(timeout=2.0)
        await ensure_market_stream(js, self.replicas, timeout_s + 20.0)
        self._sub = await retrying(
            lambda: js.subscribe(
                MARKET_SUBJECT, stream=MARKET_STREAM, ordered_consumer=True, cb=self._on_msg,
                idle_heartbeat=1.0,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.seq + 1
                ),
            ), timeout_s + 20.0, "market stream consumer",
        )  # fmt: skip

    async def _on_msg(self, msg: Any) -> None:
        md = msg.metadata
        self._queue.put((md.sequence.stream, msg.data, int(md.timestamp.timestamp() * 1e9)))

    def _loop(self) -> None:
        while True:
            seq, data, received_ns = self._queue.get()
            if (seq, data, received_ns) == _STOP:
                return
            if seq <= self.seq or self.error is not None:
                continue  # delivered again after a consumer reset
            try:
                result = _apply(self.engine, seq, data, received_ns)
            except Exception as exc:  # the journal refused or failed: stop taking updates
                self.error = exc
                with self._cond:
                    self._cond.notify_all()
                if self.on_error is not None:
                    self.on_error(exc)
                continue
            with self._cond:
                self.seq = seq
                self._results[seq] = result
                while len(self._results) > 64:
                    self._results.pop(next(iter(self._results)))
                self._cond.notify_all()

    def wait_applied(self, seq: int, timeout_s: float = 30.0) -> MarketUpdateResult:
        """The result of applying message ``seq`` here; raises the refusal's EngineError."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.seq < seq and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClusterJournalError(f"market update {seq} not applied in {timeout_s}s")
                self._cond.wait(left)
            if self.error is not None and self.seq < seq:
                raise ClusterJournalError(f"market updates stopped: {self.error}")
            result = self._results.get(seq)
        if isinstance(result, EngineError):
            raise result
        if result is None:
            raise ClusterJournalError(f"market update {seq}: result no longer kept")
        return result

    def close(self) -> None:
        if not self._lt.loop.is_closed():
            with contextlib.suppress(Exception):
                self._lt.run(self._nc.close(), 10.0)
            self._lt.close()
        self._queue.put(_STOP)
        self._worker.join(10.0)
