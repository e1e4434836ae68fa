"""The replicated journal on a real 3-node nats-server cluster (127.0.0.1, free ports): an
owner engine journals to its shard's stream, a standby tailing the stream and a recovery
from it rebuild the owner's exact state; the journal survives the loss of a node (R=3); a
stale writer's append is refused (fencing); a standby takes over from a killed owner."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from riskgate.cluster import Lease, Standby
from riskgate.engine.engine import RiskEngine
from riskgate.engine.events import ACTOR
from riskgate.engine.journal import codec
from riskgate.engine.journal.nats_journal import (
    ClusterJournalError,
    JetStreamJournal,
    JournalUnavailable,
    OwnershipLost,
    connect,
    recover_from_stream,
    stream_name,
)
from riskgate.engine.types import (
    Acknowledged,
    Cancelled,
    EngineConfig,
    EngineError,
    Filled,
    OrderRequest,
    Side,
)
from tests.reference.engine_market import MODELS, RULES, SNAP, VT, make_engine
from tests.reference.nats_cluster import NatsCluster, nats_server_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nats_server_binary() is None, reason="nats-server is not installed"),
]

SYMBOLS = ["BTC-PERPETUAL", "BTC_USDC-PERPETUAL", "BTC-25DEC26-70500-C", "ETH-25DEC26-2375-P"]
_shards = itertools.count(100)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with NatsCluster(tmp_path_factory.mktemp("nats")) as c:
        yield c


def drive(eng: RiskEngine, rng: random.Random, n: int) -> None:
    """A random-ish run of every kind of command: accounts, positions, orders, venue events
    (acks, fills, cancels), a market update, trading states."""
    accounts = ["A", "B", "C", "D"]
    for a in accounts:
        eng.upsert_account(a, collateral={"USD": rng.choice([20_000.0, 100_000.0]), "BTC": 1.0})
    eng.set_positions("B", [("BTC-PERPETUAL", 1.0, 70_000.0)])
    ids = itertools.count()
    for _ in range(n):
        a, sym = rng.choice(accounts), rng.choice(SYMBOLS)
        k = rng.random()
        with contextlib.suppress(EngineError):
            if k < 0.5:
                mark = eng.market.quotes[sym].mark
                side = rng.choice([Side.BUY, Side.SELL])
                eng.check_order(
                    OrderRequest(a, f"o{next(ids)}", sym, side, rng.choice([0.1, 0.5, 2.0]), mark)
                )
            elif k < 0.8:
                acc = eng.accounts[a]
                if acc.orders:
                    coid = rng.choice(sorted(acc.orders))
                    order = acc.orders[coid]
                    mark = eng.market.quotes[order.symbol].mark
                    body = rng.choice(
                        [Acknowledged("V1"), Filled(0.1, mark, f"f{next(ids)}"), Cancelled()]
                    )
                    eng.order_event(a, coid, body)
            elif k < 0.9:
                eng.upsert_account(a, collateral={"USD": rng.choice([5_000.0, 50_000.0])})
            elif k < 0.97:
                move = rng.choice([-0.02, 0.01, 0.03])
                eng.update_market(
                    full_snapshot=False,
                    valuation_time=max(eng.market.valuation_time, VT + timedelta(minutes=1)),
                    index_usd={"BTC": SNAP.index_usd["BTC"] * (1 + move)},
                    marks_usd={"BTC-PERPETUAL": SNAP.marks_usd["BTC-PERPETUAL"] * (1 + move)},
                    ivs={},
                )
            else:
                eng.set_positions(a, [(sym, rng.choice([-1.0, 0.5]), None)])


def fresh_engine() -> RiskEngine:
    return RiskEngine(MODELS["deribit"], RULES, EngineConfig(decision_budget_ns=10**10))


def recovered_hash(urls, shard: int) -> tuple[str, int]:
    eng = fresh_engine()
    book, seq = recover_from_stream(urls, shard, eng.new_book())
    return codec.state_hash(book), seq


def stream_leader(urls, shard: int) -> str:
    async def ask() -> str:
        nc = await connect(urls, "test")
        try:
            info = await nc.jetstream().stream_info(stream_name(shard))
            return info.cluster.leader
        finally:
            await nc.close()

    return asyncio.run(ask())


def test_the_pinned_nats_server_is_at_least_2_12() -> None:
    out = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    major, minor = (int(x) for x in out.strip().split("v")[-1].split(".")[:2])
    assert (major, minor) >= (2, 12), out


def test_every_node_fsyncs_each_write(cluster) -> None:
    # what the README promises of sync_interval: always (the server's /varz shows it)
    for node in cluster.nodes:
        status, varz = node.monitor("/varz")
        assert status == 200 and varz["jetstream"]["config"]["sync_always"] is True


def test_standby_and_recovery_rebuild_the_owners_state(cluster) -> None:
    shard = next(_shards)
    sink = JetStreamJournal(cluster.urls, shard, mode="sync")
    standby = Standby(shard, cluster.urls, fresh_engine())
    try:
        owner = make_engine(sink=sink)
        drive(owner, random.Random(7), 150)
        assert sink.acked == owner.seq and sink.lag == 0  # sync: every reply was acknowledged
        assert standby.wait_for(owner.seq) == owner.seq
        live = codec.state_hash(owner.book)
        assert standby.state_hash() == live
        assert recovered_hash(cluster.urls, shard) == (live, owner.seq)
    finally:
        standby.close()
        sink.close()


def test_async_mode_replies_at_once_and_catches_up(cluster) -> None:
    shard = next(_shards)
    sink = JetStreamJournal(cluster.urls, shard, mode="async", max_inflight=64)
    try:
        owner = make_engine(sink=sink)
        drive(owner, random.Random(11), 80)
        assert sink.lag <= 64 + 1
        sink.mode = "sync"
        sink.wait_durable(owner.seq)  # everything gets there
        assert sink.lag == 0
        assert recovered_hash(cluster.urls, shard) == (codec.state_hash(owner.book), owner.seq)
    finally:
        sink.close()


def test_a_stale_writer_is_refused_and_reports_it_lost_ownership(cluster) -> None:
    shard = next(_shards)
    old_sink = JetStreamJournal(cluster.urls, shard, writer_id="old")
    new_sink = None
    try:
        old = make_engine(sink=old_sink)
        drive(old, random.Random(3), 10)
        # a second process takes the shard over: it recovers the stream and appends
        new_sink = JetStreamJournal(cluster.urls, shard, writer_id="new")
        new = fresh_engine()
        book, seq = recover_from_stream(cluster.urls, shard, new.new_book())
        assert seq == old.seq == new_sink.start_seq
        new.restore(book, seq)
        new.sink = new_sink
        new.upsert_account("NEW", collateral={"USD": 1_000.0})
        # the old owner, still believing it owns the shard, commits again: refused
        with pytest.raises(OwnershipLost, match="lost ownership"):
            old.upsert_account("OLD", collateral={"USD": 1_000.0})
        assert old_sink.lost_ownership
        with pytest.raises(OwnershipLost):
            old_sink.write([])
        # the stream holds the new owner's event, not the stale one
        h, last = recovered_hash(cluster.urls, shard)
        assert (h, last) == (codec.state_hash(new.book), new.seq)
        assert not new_sink.lost_ownership
    finally:
        old_sink.close()
        if new_sink is not None:
            new_sink.close()


def test_the_journal_survives_losing_a_node(tmp_path) -> None:
    with NatsCluster(tmp_path) as cluster:
        shard = 1
        sink = JetStreamJournal(cluster.urls, shard, durable_timeout_s=30.0)
        try:
            owner = make_engine(sink=sink)
            rng = random.Random(5)
            drive(owner, rng, 30)
            leader = stream_leader(cluster.urls, shard)
            victim = next(i for i, n in enumerate(cluster.nodes) if n.name == leader)
            cluster.kill_node(victim)  # the stream's leader, the worst node to lose
            drive(owner, rng, 30)  # every reply still waits for 2 of 3 replicas
            assert sink.acked == owner.seq and sink.error is None
            # back to three; then lose the node the sink is connected to (it reconnects)
            cluster.start_node(victim)
            port = sink._nc.connected_url.port
            cluster.kill_node(next(i for i, n in enumerate(cluster.nodes) if n.port == port))
            drive(owner, rng, 30)
            assert sink.acked == owner.seq and sink.error is None
            live = codec.state_hash(owner.book)
            assert recovered_hash(cluster.urls, shard) == (live, owner.seq)
        finally:
            sink.close()


def start_owner(cluster, shard: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reference.nats_owner", *cluster.urls,
         "--shard", str(shard), "--owner", "owner-A", "--ttl", "2", "--seconds", "120"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip


def test_a_standby_takes_over_when_the_owner_is_killed(cluster) -> None:
    shard = next(_shards)
    owner = start_owner(cluster, shard)
    standby = lease = sink = None
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().startswith("ready"), "the owner did not start"
        eng = fresh_engine()
        standby = Standby(shard, cluster.urls, eng)
        lease = Lease(cluster.urls, shard, "standby-B", ttl_s=2.0)
        assert not lease.acquire() and lease.owner() == "owner-A"  # a standby, not an owner
        acked = 0
        while acked < 60:
            acked = int(owner.stdout.readline().split()[1])
        owner.kill()  # kill -9, mid-flow
        owner.wait(10)
        acked = max([acked] + [int(line.split()[1]) for line in owner.stdout if line.strip()])
        t0 = time.monotonic()
        sink = standby.take_over(lease, timeout_s=30.0)
        failover_s = time.monotonic() - t0
        assert eng.sink is sink and lease.owner() == "standby-B"
        assert eng.seq >= acked  # every event the owner's client saw acknowledged
        assert recovered_hash(cluster.urls, shard) == (codec.state_hash(eng.book), eng.seq)
        eng.upsert_account("AFTER", collateral={"USD": 1.0})  # the new owner serves
        assert sink.acked == eng.seq and not sink.lost_ownership
        assert failover_s < 10.0, failover_s  # lease TTL 2 s, generous on a loaded machine
        print(f"failover {failover_s:.2f} s, acked {acked}, taken over at {sink.start_seq}")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        for closable in (standby, lease, sink):
            if closable is not None:
                closable.close()


def test_a_paused_owner_that_wakes_up_after_a_takeover_is_refused(cluster) -> None:
    shard = next(_shards)
    owner = start_owner(cluster, shard)
    standby = lease = sink = None
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().startswith("ready"), "the owner did not start"
        eng = fresh_engine()
        standby = Standby(shard, cluster.urls, eng)
        lease = Lease(cluster.urls, shard, "standby-B", ttl_s=2.0)
        while int(owner.stdout.readline().split()[1]) < 30:
            pass
        owner.send_signal(signal.SIGSTOP)  # paused mid-flow: it stops renewing its lease
        sink = standby.take_over(lease, timeout_s=30.0)
        eng.upsert_account("NEW", collateral={"USD": 1.0})
        owner.send_signal(signal.SIGCONT)  # it wakes up still believing it owns the shard
        lines = [line.strip() for line in owner.stdout]
        assert owner.wait(30) == 3, lines[-3:]
        assert "lost ownership" in lines[-1], lines[-3:]
        acked = [int(line.split()[1]) for line in lines if line.startswith("acked")]
        # whatever it acknowledged is in the new owner's book; nothing after the takeover
        assert max(acked, default=0) <= sink.start_seq
        assert recovered_hash(cluster.urls, shard) == (codec.state_hash(eng.book), eng.seq)
        assert not sink.lost_ownership
    finally:
        if owner.poll() is None:
            owner.send_signal(signal.SIGCONT)
            owner.kill()
            owner.wait(10)
        for closable in (standby, lease, sink):
            if closable is not None:
                closable.close()


def test_a_sink_refuses_events_of_an_engine_that_did_not_recover(cluster) -> None:
    shard = next(_shards)
    first = JetStreamJournal(cluster.urls, shard)
    try:
        make_engine(sink=first)
    finally:
        first.close()
    second = JetStreamJournal(cluster.urls, shard)
    try:
        assert second.start_seq == 1
        with pytest.raises(ClusterJournalError, match="recover before committing"):
            make_engine(sink=second)  # would commit event 1 again
    finally:
        second.close()


def test_losing_the_quorum_fails_closed(tmp_path) -> None:
    with NatsCluster(tmp_path) as cluster:
        sink = JetStreamJournal(
            cluster.urls, 1, durable_timeout_s=3.0, ack_timeout_s=0.5,
            async_principals=["gw-async"],
        )  # fmt: skip
        try:
            eng = make_engine(sink=sink)
            cluster.kill_node(0)
            cluster.kill_node(1)  # one of three left: no stream can acknowledge
            # a principal acknowledged async gets its reply without the acknowledgement
            token = ACTOR.set("gw-async")
            try:
                eng.upsert_account("B", collateral={"USD": 1.0})
            finally:
                ACTOR.reset(token)
            assert sink.acked < eng.seq and sink.lag >= 1
            with pytest.raises(JournalUnavailable, match="not acknowledged"):
                eng.upsert_account("A", collateral={"USD": 1.0})
            with pytest.raises(JournalUnavailable):  # and it stays failed
                sink.write([])
        finally:
            sink.close()


def test_recovery_and_a_standby_can_start_from_a_snapshot(cluster) -> None:
    shard = next(_shards)
    sink = JetStreamJournal(cluster.urls, shard)
    standby = None
    try:
        owner = make_engine(sink=sink)
        rng = random.Random(13)
        drive(owner, rng, 40)
        snap_seq, snap = owner.seq, codec.encode_snapshot(owner.book, owner.seq)
        drive(owner, rng, 40)
        live = codec.state_hash(owner.book)
        book = fresh_engine().new_book()
        assert codec.decode_snapshot(snap, book) == snap_seq
        book, seq = recover_from_stream(cluster.urls, shard, book, after_seq=snap_seq)
        assert (codec.state_hash(book), seq) == (live, owner.seq)
        warm = fresh_engine()
        warm_book = warm.new_book()
        codec.decode_snapshot(snap, warm_book)
        warm.restore(warm_book, snap_seq)
        standby = Standby(shard, cluster.urls, warm)  # tails from snap_seq + 1
        assert standby.wait_for(owner.seq) == owner.seq
        assert standby.state_hash() == live
    finally:
        if standby is not None:
            standby.close()
        sink.close()
