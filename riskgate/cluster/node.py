"""One serving process of a shard: a hot standby until it holds the shard's lease, then the
owner, until it loses the lease or its journal refuses it; then it steps down (serves
nothing), starts over with an empty book and becomes a standby again.

The cycle (a thread of its own, :meth:`ClusterNode._run`):

1. **standby**: a :class:`~riskgate.cluster.standby.Standby` applies the shard's stream to
   the newest valid snapshot (:mod:`riskgate.cluster.snapshots`; an empty book if there is
   none) — the role is ``standby`` once it has applied the stream as it stood when it
   started: warm; from then on the node polls the lease every ``lease_ttl_s / 20`` (taking
   it once the owner's entry has not changed for ``lease_ttl_s``), and takes a snapshot of
   its book every ``cluster_snapshot_interval_s`` (trimming the stream below the oldest of
   the ``cluster_snapshot_keep`` kept).
2. **take-over**: with the lease, it opens the stream as its writer, applies every event up
   to the stream's last (every acknowledged decision), starts taking market updates
   (:class:`~riskgate.cluster.market.MarketFollower`), is the **owner** and writes its
   address into the shard map. On a new cluster (empty stream) with ``demo`` it publishes the
   demo market (into an empty market stream only) and creates the demo accounts of its
   shard.
3. **step down** when the lease is lost (not renewed in time: the process was paused, or
   NATS unreachable), or the journal refuses a write (another owner appended: fencing) or
   fails: from then on every call is refused; the sink is closed and the cycle restarts.

:meth:`ClusterNode.is_owner` is what the routing interceptor asks on every call: the role,
the sink's health, and the lease's age by this process's own clock (a process that was
paused longer than the TTL refuses at once when it wakes, before it has even tried to renew).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from riskgate.cluster.lease import Lease
from riskgate.cluster.market import MarketFeed, MarketFollower
from riskgate.cluster.sharding import ShardMap, shard_of
from riskgate.cluster.snapshots import ShardSnapshots, Snapshotter, restore_newest
from riskgate.cluster.standby import Standby
from riskgate.config import Settings
from riskgate.engine.engine import RiskEngine
from riskgate.engine.journal import nats_journal
from riskgate.engine.journal.nats_journal import JetStreamJournal
from riskgate.engine.types import MarketUpdateResult
from riskgate.server.logging import get_logger
from riskgate.v1 import riskgate_pb2 as pb

STARTING, STANDBY, OWNER, STEPPED_DOWN, STOPPED = (
    "starting", "standby", "owner", "stepped_down", "stopped",
)  # fmt: skip
_log = get_logger("riskgate.cluster")


def connect_options(s: Settings) -> dict[str, Any]:
    """nats-py connection options for the settings' credentials and TLS."""
    opts: dict[str, Any] = {}
    if s.nats_creds_file:
        opts["user_credentials"] = s.nats_creds_file
    if s.nats_token:
        opts["token"] = s.nats_token
    if s.nats_tls_ca_file or s.nats_tls_cert_file:
        ctx = ssl.create_default_context(cafile=s.nats_tls_ca_file)
        if s.nats_tls_cert_file:
            ctx.load_cert_chain(s.nats_tls_cert_file, s.nats_tls_key_file)
        opts["tls"] = ctx
    return opts


class ClusterNode:
    """The cluster side of a server process for shard ``settings.shard``. ``on_role`` is
    called with each new role (the server turns it into health statuses)."""

    def __init__(
        self,
        settings: Settings,
        engine: RiskEngine,
        on_role: Callable[[str], None] | None = None,
    ) -> None:
        self.settings, self.engine, self.on_role = settings, engine, on_role
        self.shard, self.shards, self.urls = settings.shard, settings.shards, settings.journal_urls
        self.address = ""  # set by the server once its port is bound
        self.node_id = f"{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self.role = STARTING
        self.takeovers = 0
        self.sink: JetStreamJournal | None = None
        self.lease: Lease | None = None
        self.standby: Standby | None = None
        self.follower: MarketFollower | None = None
        self.shard_map: ShardMap | None = None
        self.feed: MarketFeed | None = None
        self.last_takeover_s = 0.0  # lease taken -> serving, the last time
        self.snaps: ShardSnapshots | None = None
        self.snapshotter: Snapshotter | None = None
        self.restored_from = 0  # the snapshot seq the last cycle's standby started from
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ queries (hot path)

    def is_owner(self) -> bool:
        if self.role is not OWNER or self._lost.is_set():
            return False
        sink, lease = self.sink, self.lease
        return sink is not None and sink.error is None and lease is not None and lease.fresh(0.1)

    def owns(self, account_id: str) -> bool:
        return shard_of(account_id, self.shards) == self.shard

    def owner_address(self, shard: int) -> str:
        """The shard's owner as the shard map says ('' if unknown, or if it names this
        process while it does not own the shard)."""
        m = self.shard_map
        addr = m.owner(shard) if m is not None else ""
        if not addr and m is not None:  # not known yet: read the map now (refusals are rare)
            m.refresh(min_age_s=0.05)
            addr = m.owner(shard)
        if shard == self.shard and addr == self.address and not self.is_owner():
            return ""
        return addr

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Connect (the shard map, the market feed) and start the role cycle."""
        nats_journal.CONNECT_OPTIONS.clear()
        nats_journal.CONNECT_OPTIONS.update(connect_options(self.settings))
        s = self.settings
        self.shard_map = ShardMap(self.urls, replicas=s.nats_replicas)
        self.shard_map.check_shards(self.shards)
        self.feed = MarketFeed(self.urls, replicas=s.nats_replicas)
        self._thread = threading.Thread(target=self._run, name="riskgate-cluster", daemon=True)
        self._thread.start()

    def _set_role(self, role: str) -> None:
        self.role = role
        _log.info("cluster_role", role=role, shard=self.shard, shards=self.shards,
                  node=self.node_id, address=self.address)  # fmt: skip
        if self.on_role is not None:
            self.on_role(role)

    def _step_down(self, why: Any = None) -> None:
        if not self._lost.is_set():
            _log.error("cluster_step_down", shard=self.shard, node=self.node_id, why=str(why))
        self._lost.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._cycle()
            except Exception:
                _log.exception("cluster_cycle_failed", shard=self.shard)
            finally:
                self._clean_up()
            if not self._stop.is_set():
                self._set_role(STEPPED_DOWN)
                self._stop.wait(1.0)  # then a standby again, from an empty book
        self._set_role(STOPPED)

    def _cycle(self) -> None:
        s, eng = self.settings, self.engine
        self._lost.clear()
        eng.sink = None
        eng.restore(eng.new_book(), 0)
        nats_journal.create_stream(self.urls, self.shard, s.nats_replicas)
        self.snaps = snaps = ShardSnapshots(self.urls, self.shard, replicas=s.nats_replicas)
        # the newest valid snapshot, then only the events after it (built aside: the
        # engine's book is replaced only once it is whole)
        first, last = snaps.stream_bounds()
        book, snap_seq, skipped = restore_newest(snaps, eng.new_book, first, last)
        eng.restore(book, snap_seq)
        self.restored_from = snap_seq
        _log.info("cluster_restore", shard=self.shard, snapshot_seq=snap_seq,
                  stream_first=first, stream_last=last, skipped=skipped)  # fmt: skip
        self.standby = standby = Standby(self.shard, self.urls, eng)
        # a standby in name only once warm: it has applied the stream as it was at start
        while standby.wait_for(last, 0.5) < last:
            if self._stop.is_set():
                return
        self._set_role(STANDBY)
        if s.cluster_snapshot_interval_s > 0:  # a standby's snapshots: the owner never pauses
            self.snapshotter = Snapshotter(
                snaps, eng.snapshot, interval_s=s.cluster_snapshot_interval_s,
                keep=s.cluster_snapshot_keep,
            ).start()  # fmt: skip
        self.lease = lease = Lease(
            self.urls, self.shard, f"{self.node_id}@{self.address}", ttl_s=s.lease_ttl_s,
            replicas=s.nats_replicas,
        )  # fmt: skip
        while not lease.acquire():
            if self._stop.wait(s.lease_ttl_s / 20):  # a KV request each time: cheap
                return
            if standby.error is not None:  # e.g. it fell behind a trim: start over from a
                raise standby.error  # snapshot rather than stay a standby that cannot serve
        t0 = time.monotonic()
        if self.snapshotter is not None:  # the owner takes none (one under way may finish)
            self.snapshotter.stop()
        self.sink = sink = self.standby.take_over(
            lease, mode=s.replication_ack, on_lost=lambda: self._step_down("lease lost"),
            max_inflight=s.replication_max_inflight, replicas=s.nats_replicas,
            async_principals=[p.strip() for p in s.replication_async_principals.split(",")
                              if p.strip()],
        )  # fmt: skip
        sink.on_error = self._step_down
        if sink.error is not None:
            self._step_down(sink.error)
        open_s, catch_up_s = self.standby.takeover_s
        self.standby = None
        t1 = time.monotonic()
        self.follower = MarketFollower(
            self.urls, eng, on_error=self._step_down, replicas=s.nats_replicas
        )
        t2 = time.monotonic()
        if sink.start_seq == 0 and s.demo:
            self._load_demo()
        self.takeovers += 1
        self.last_takeover_s = time.monotonic() - t0
        self._set_role(OWNER)
        assert self.shard_map is not None
        self.shard_map.publish(self.shard, {
            "address": self.address, "node": self.node_id, "shards": self.shards,
            "seq": eng.seq,
        })  # fmt: skip
        _log.info("cluster_owner", shard=self.shard, events=eng.seq,
                  takeover_s=round(self.last_takeover_s, 3),
                  open_stream_s=round(open_s, 3), catch_up_s=round(catch_up_s, 3),
                  market_s=round(t2 - t1, 3))  # fmt: skip
        while not self._stop.is_set() and not self._lost.wait(0.2):
            pass

    def _clean_up(self) -> None:
        snapshotter, self.snapshotter = self.snapshotter, None
        if snapshotter is not None:  # before the next cycle replaces the book it reads
            snapshotter.stop(wait_s=60.0)
        snaps, self.snaps = self.snaps, None
        if snaps is not None:
            with contextlib.suppress(Exception):
                snaps.close()
        for part in (self.follower, self.standby):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self.follower = self.standby = None
        sink, self.sink = self.sink, None
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.close()
        lease, self.lease = self.lease, None
        if lease is not None:
            with contextlib.suppress(Exception):
                if self._stop.is_set() and not self._lost.is_set():
                    lease.release()  # a clean stop: the standby need not wait for the TTL
                lease.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
        for part in (self.feed, self.shard_map):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()

    # ------------------------------------------------------------------ market data

    def update_market(self, request: pb.UpdateMarketRequest) -> MarketUpdateResult:
        """Publish a market update to every shard; the result of applying it here."""
        assert self.feed is not None
        seq = self.feed.publish(request)
        follower = self.follower
        if follower is None:
            raise RuntimeError("market update published, but this process stepped down")
        return follower.wait_applied(seq)

    def _load_demo(self) -> None:
        """A new cluster: the demo market (published only into an empty market stream, so
        the first shard's goes), then the demo accounts of this shard."""
        from riskgate.server.app import demo_accounts, demo_market_request

        assert self.feed is not None and self.follower is not None
        self.feed.publish(demo_market_request(), only_first=True)
        deadline = time.monotonic() + 30.0
        while self.follower.seq < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        ids = demo_accounts(self.engine, self.settings, self.owns)
        _log.info("cluster_demo_accounts", shard=self.shard, accounts=ids)
