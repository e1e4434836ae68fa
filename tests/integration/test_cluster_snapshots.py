"""Shard snapshots in JetStream and stream trimming, on a real 3-node nats-server cluster
(127.0.0.1, free ports): a standby started late loads the newest snapshot (taken by another
standby) and replays only the rest; a corrupt newest snapshot falls back to the previous;
after trimming, a standby still catches up from a snapshot (and cannot without one); the
expected-last-sequence fencing still refuses a stale owner after a purge; a standby takes
the lease from a silent owner without waiting for the bucket to expire it."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest

from riskgate.cluster import Lease, Standby
from riskgate.cluster.snapshots import ShardSnapshots, Snapshotter, restore_newest
from riskgate.engine.journal import codec
from riskgate.engine.journal.nats_journal import (
    ClusterJournalError,
    JetStreamJournal,
    OwnershipLost,
)
from tests.integration.test_nats_cluster import drive, fresh_engine
from tests.reference.engine_market import make_engine
from tests.reference.nats_cluster import NatsCluster, nats_server_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nats_server_binary() is None, reason="nats-server is not installed"),
]
_shards = itertools.count(200)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with NatsCluster(tmp_path_factory.mktemp("nats")) as c:
        yield c


def warm_standby(cluster, shard: int, snaps: ShardSnapshots) -> tuple[Standby, int]:
    """A standby as the node starts one: the newest valid snapshot, then the stream."""
    eng = fresh_engine()
    first, last = snaps.stream_bounds()
    book, seq, _ = restore_newest(snaps, eng.new_book, first, last)
    eng.restore(book, seq)
    return Standby(shard, cluster.urls, eng), seq


def test_a_late_standby_loads_the_snapshot_and_replays_only_the_rest(cluster) -> None:
    shard = next(_shards)
    sink = JetStreamJournal(cluster.urls, shard)
    snaps = ShardSnapshots(cluster.urls, shard)
    first_standby = late = None
    try:
        owner = make_engine(sink=sink)
        rng = random.Random(21)
        first_standby = Standby(shard, cluster.urls, fresh_engine())
        drive(owner, rng, 60)
        first_standby.wait_for(owner.seq)
        at_snapshot = codec.state_hash(owner.book)
        # the first standby snapshots its own book (copy-on-write), the owner pauses not
        taker = Snapshotter(snaps, first_standby.engine.snapshot, interval_s=3600, keep=2)
        snap_seq = taker.take()
        assert snap_seq == owner.seq and snaps.seqs() == [snap_seq]
        check = fresh_engine().new_book()
        assert codec.decode_snapshot(snaps.get(snap_seq), check) == snap_seq
        assert codec.state_hash(check) == at_snapshot  # the owner's state at that seq
        # more snapshots while the owner commits and the standby applies (copy-on-write:
        # a torn snapshot would not replay to the owner's state below)
        flow = threading.Thread(target=drive, args=(owner, random.Random(31), 40))
        flow.start()
        while flow.is_alive():
            taker.take()
        flow.join()
        drive(owner, rng, 10)
        late, start = warm_standby(cluster, shard, snaps)
        assert start == taker.last_seq >= snap_seq
        assert late.wait_for(owner.seq) == owner.seq
        _, last = snaps.stream_bounds()
        assert late.applied == owner.seq - start < last  # fewer than the stream holds
        assert late.state_hash() == codec.state_hash(owner.book)
    finally:
        for c in (first_standby, late, snaps, sink):
            if c is not None:
                c.close()


def test_a_corrupt_newest_snapshot_falls_back_to_the_previous(cluster) -> None:
    shard = next(_shards)
    sink = JetStreamJournal(cluster.urls, shard)
    snaps = ShardSnapshots(cluster.urls, shard)
    standby = None
    try:
        owner = make_engine(sink=sink)
        rng = random.Random(22)
        drive(owner, rng, 40)
        good_seq, good = owner.snapshot()
        snaps.put(good_seq, good)
        drive(owner, rng, 20)
        bad_seq, bad = owner.snapshot()
        flipped = bytearray(bad)
        flipped[len(flipped) // 2] ^= 0xFF  # stored whole (its digest matches), state does not
        snaps.put(bad_seq, bytes(flipped))
        drive(owner, rng, 10)
        first, last = snaps.stream_bounds()
        _, seq, skipped = restore_newest(snaps, fresh_engine().new_book, first, last)
        assert seq == good_seq < bad_seq
        assert len(skipped) == 1 and skipped[0].startswith(f"{bad_seq}:")
        standby, start = warm_standby(cluster, shard, snaps)
        assert start == good_seq
        assert standby.wait_for(owner.seq) == owner.seq
        assert standby.state_hash() == codec.state_hash(owner.book)
    finally:
        for c in (standby, snaps, sink):
            if c is not None:
                c.close()


def test_the_stream_is_trimmed_and_a_standby_still_catches_up(cluster) -> None:
    shard = next(_shards)
    sink = JetStreamJournal(cluster.urls, shard)
    snaps = ShardSnapshots(cluster.urls, shard)
    tail = late = empty = None
    try:
        owner = make_engine(sink=sink)
        rng = random.Random(23)
        tail = Standby(shard, cluster.urls, fresh_engine())
        taker = Snapshotter(snaps, tail.engine.snapshot, interval_s=3600, keep=2)
        seqs = []
        for _ in range(3):
            drive(owner, rng, 25)
            tail.wait_for(owner.seq)
            seqs.append(taker.take())
        # keep 2: the oldest is deleted, the stream starts after the older of the two kept
        assert snaps.seqs() == [seqs[2], seqs[1]]
        first, last = snaps.stream_bounds()
        assert (first, last) == (seqs[1] + 1, owner.seq)
        drive(owner, rng, 15)
        late, start = warm_standby(cluster, shard, snaps)
        assert start == seqs[2]
        assert late.wait_for(owner.seq) == owner.seq
        assert late.state_hash() == codec.state_hash(owner.book) == tail.state_hash()
        # without a snapshot the trimmed stream cannot be replayed: refused, not half-served
        empty = Standby(shard, cluster.urls, fresh_engine())
        with pytest.raises(ClusterJournalError, match="event 1 missing"):
            empty.wait_for(owner.seq, 30.0)
        for s in snaps.seqs():
            snaps.delete(s)
        with pytest.raises(ClusterJournalError, match="no snapshot continues it"):
            restore_newest(snaps, fresh_engine().new_book, *snaps.stream_bounds())
    finally:
        for c in (tail, late, empty, snaps, sink):
            if c is not None:
                c.close()


def test_fencing_refuses_a_stale_owner_after_a_purge(cluster) -> None:
    shard = next(_shards)
    old_sink = JetStreamJournal(cluster.urls, shard, writer_id="old")
    snaps = ShardSnapshots(cluster.urls, shard)
    new_sink = standby = None
    try:
        old = make_engine(sink=old_sink)
        drive(old, random.Random(24), 30)
        seq, payload = old.snapshot()
        snaps.put(seq, payload)
        assert snaps.prune(keep=1) == seq + 1
        assert snaps.stream_bounds() == (seq + 1, seq)  # empty, its last sequence kept
        # a new owner: from the snapshot (nothing after it), then it appends
        standby, start = warm_standby(cluster, shard, snaps)
        assert start == seq
        new_sink = JetStreamJournal(cluster.urls, shard, writer_id="new")
        assert new_sink.start_seq == seq
        new = standby.engine
        standby.close()
        new.sink = new_sink
        new.upsert_account("NEW", collateral={"USD": 1_000.0})
        assert new_sink.acked == seq + 1
        with pytest.raises(OwnershipLost, match="lost ownership"):
            old.upsert_account("OLD", collateral={"USD": 1_000.0})
        assert snaps.stream_bounds() == (seq + 1, seq + 1)  # the new owner's event only
    finally:
        for c in (standby, snaps, old_sink, new_sink):
            if c is not None:
                c.close()


def test_a_standby_takes_a_silent_owners_lease_before_the_bucket_expires_it(tmp_path) -> None:
    with NatsCluster(tmp_path) as c:  # a bucket of its own: this test's TTL
        # the bucket is created with a 60 s TTL: an entry expired by the server would stay
        # that long; the standby's own clock replaces a silent holder after its ttl_s
        holder = Lease(c.urls, 0, "A", ttl_s=60.0)
        standby = Lease(c.urls, 0, "B", ttl_s=1.0)
        deadline = time.monotonic() + 30.0  # a bound on a broken take-over, not a target
        try:
            assert holder.acquire()
            for _ in range(4):  # renewed well within the standby's TTL: not taken
                assert not standby.acquire()
                time.sleep(0.3)
                assert holder.renew()
            assert not standby.acquire()
            # the holder goes silent; its entry stays in the bucket all along
            while True:
                assert standby.owner() == "A" and time.monotonic() < deadline
                if standby.acquire():
                    break
                time.sleep(0.05)
            assert standby.owner() == "B" and standby.held
            assert not holder.renew() and not holder.held  # the old holder learns it lost
        finally:
            holder.close()
            standby.close()
