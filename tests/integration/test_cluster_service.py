"""Cluster mode end to end: a real 3-node nats-server cluster and real ``riskgate serve
--nats`` processes on 127.0.0.1 (free ports), two shards, shard 0 with an owner and a
standby. The tests run in order on one cluster (starting processes is the slow part):
routing and "not owner", market data reaching both shards, ``kill -9`` of the owner under
gRPC load (0 acknowledged decisions lost, retries give the original decisions), a paused
owner refused after it wakes, a NATS node killed."""

from __future__ import annotations

import time

import grpc
import pytest

from loadtest.cluster_procs import RiskgateProc
from loadtest.failover import TRANSIENT_REASONS, Load, accounts_for, decision_key, verify
from riskgate.client import RiskGateClient
from riskgate.cluster.client import ClusterClient
from riskgate.cluster.routing import OWNER_KEY, SHARD_KEY
from riskgate.cluster.sharding import shard_of
from riskgate.server.app import demo_market_request
from tests.reference.nats_cluster import NatsCluster, free_port, nats_server_binary

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nats_server_binary() is None, reason="nats-server is not installed"),
]
ENV = {"RISKGATE_RESERVATION_TTL_S": "3600"}


class Cluster:
    def __init__(self, nats: NatsCluster, log_dir) -> None:
        self.nats, self.urls = nats, nats.urls
        self.log_dir = log_dir
        self.procs: dict[int, list[RiskgateProc]] = {0: [], 1: []}
        self.accounts = accounts_for(2, 3)

    def add(self, shard: int, *extra: str) -> RiskgateProc:
        n = len(self.procs[shard])
        p = RiskgateProc(self.urls, shard, 2, self.log_dir, f"s{shard}-{n}",
                         extra=("--no-demo", *extra), env=ENV).start()  # fmt: skip
        self.procs[shard].append(p)
        return p

    def owner(self, shard: int) -> RiskgateProc:
        return next(p for p in self.procs[shard] if p.alive and p.role() == "owner")

    def client(self, **kw) -> ClusterClient:
        return ClusterClient(self.urls, timeout_s=5.0, **kw)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    with NatsCluster(base / "nats") as nats:
        c = Cluster(nats, base)
        try:
            first = c.add(0)
            first.wait_role("owner")  # the first process of shard 0 takes its lease
            c.metrics_port = free_port()
            c.add(0), c.add(1, "--metrics", f"127.0.0.1:{c.metrics_port}")
            c.procs[0][1].wait_role("standby")
            c.procs[1][0].wait_role("owner")
            with c.client(failover_wait_s=20.0) as rg:
                rg._routed(0, lambda x: x.stub.UpdateMarket(demo_market_request(), timeout=30))
                for a in [a for v in c.accounts.values() for a in v]:
                    _upsert_once_market_applied(rg, a)
            yield c
        finally:
            for ps in c.procs.values():
                for p in ps:
                    p.stop()


def test_orders_on_two_shards_and_not_owner_answers(cluster) -> None:
    a0, a1 = cluster.accounts[0][0], cluster.accounts[1][0]
    assert shard_of(a0, 2) == 0 and shard_of(a1, 2) == 1
    with cluster.client() as rg:
        assert rg.shards == 2
        assert rg.owners[0] == cluster.owner(0).address
        assert rg.owners[1] == cluster.owner(1).address
        for a in (a0, a1):
            cid, d = _accepted(rg, a, "two-1")
            assert d.accepted, d
            assert [o.client_order_id for o in rg.get_account(a).working_orders] == [cid]
    standby = next(p for p in cluster.procs[0] if p.role() == "standby")
    owner0, owner1 = cluster.owner(0), cluster.owner(1)
    # the standby names the owner of its shard; an owner names the owner of the other shard
    for target, account, want_shard, want_owner in (
        (standby, a0, 0, owner0.address),
        (owner0, a1, 1, owner1.address),
        (owner1, a0, 0, owner0.address),
    ):
        with RiskGateClient(target.address, 5.0) as direct:
            with pytest.raises(grpc.RpcError) as err:
                direct.check_order(account, "x", "BTC-PERPETUAL", "buy", 0.1, None, "market")
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details().startswith("not owner")
            md = {m.key: m.value for m in err.value.trailing_metadata()}
            assert md == {SHARD_KEY: str(want_shard), OWNER_KEY: want_owner}
            # admin calls route like orders
            with pytest.raises(grpc.RpcError) as err:
                direct.upsert_account(account, collateral={"USD": 1.0})
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # a client that starts at the wrong process follows the answer once
    with cluster.client() as rg:
        rg.owners[0] = standby.address
        assert rg.get_account(a0).account_id == a0
        assert rg.redirects == 1
    assert standby.health("riskgate.v1.RiskGate") == "NOT_SERVING"


def test_a_market_update_reaches_every_shard_in_the_same_order(cluster) -> None:
    a0, a1 = cluster.accounts[0][0], cluster.accounts[1][0]
    with cluster.client() as rg:
        before = {a: rg.get_account(a).market_version for a in (a0, a1)}
        index = {"BTC": demo_market_request().index_usd["BTC"] * 1.01}
        resp = rg.update_market(index_usd=index)
        deadline = time.monotonic() + 20
        views = {}
        while time.monotonic() < deadline:
            views = {a: rg.get_account(a) for a in (a0, a1)}
            if all(v.market_version > before[a] for a, v in views.items()):
                break
            time.sleep(0.1)
        assert [v.market_version for v in views.values()] == [resp.market_version] * 2
    # both owners and the standby hold the same market (the standby answers ListInstruments)
    # (the standby once it has applied the owner's events: it tails them)
    deadline = time.monotonic() + 20
    while True:
        listed = []
        for p in [p for ps in cluster.procs.values() for p in ps if p.alive]:
            with RiskGateClient(p.address, 5.0) as direct:
                listed.append(direct.list_instruments("BTC").SerializeToString(deterministic=True))
        if len(set(listed)) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(listed) == 3 and len(set(listed)) == 1


def test_metrics_report_the_role_and_the_journal(cluster) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.metrics_port}/metrics") as r:
        text = r.read().decode()
    lines = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("riskgate_cl")
    )
    assert float(lines['riskgate_cluster_role{role="owner"}']) == 1.0
    assert float(lines['riskgate_cluster_role{role="standby"}']) == 0.0
    # shard 1's events so far: the market update(s) and its accounts, all acknowledged
    assert float(lines["riskgate_cluster_journal_acked_seq"]) >= 1 + len(cluster.accounts[1])
    assert float(lines["riskgate_cluster_journal_lag_events"]) == 0.0
    assert float(lines["riskgate_cluster_takeovers_total"]) == 1.0


def test_kill_9_of_the_owner_under_load_loses_no_acknowledged_decision(cluster) -> None:
    accounts = cluster.accounts[0]
    old = cluster.owner(0)
    load = Load(cluster.urls, accounts, threads=2).start()
    try:
        deadline = time.monotonic() + 30
        while len(load.seen) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        t_kill = time.monotonic()
        old.kill()
        while load.first_after(t_kill) is None and time.monotonic() - t_kill < 30:
            time.sleep(0.05)
        assert load.first_after(t_kill) is not None, "no decision after the kill"
        n = len(load.seen)
        while len(load.seen) < n + 100 and time.monotonic() - t_kill < 40:
            time.sleep(0.05)
    finally:
        load.stop()
    new = cluster.owner(0)
    assert new is not old
    result = verify(cluster.urls, load.seen)
    assert result["lost"] == 0, result
    assert result["changed_on_retry"] == 0, result
    assert result["acknowledged"] >= 300 and result["accepted"] >= 0.9 * result["acknowledged"]
    old.start()  # back as the standby
    old.wait_role("standby")


def test_a_paused_owner_is_refused_when_it_wakes(cluster) -> None:
    account = cluster.accounts[0][1]
    owner = cluster.owner(0)
    standby = next(p for p in cluster.procs[0] if p.alive and p is not owner)
    with cluster.client(failover_wait_s=20.0) as rg:
        id1, first = _accepted(rg, account, "pause-1")
    owner.pause()
    try:
        standby.wait_role("owner", 30.0)
        with cluster.client(failover_wait_s=20.0) as rg:
            assert rg.owners[0] == standby.address
            id2, d = _accepted(rg, account, "pause-2")
            assert d.accepted
        # calls sent to the paused process wait in its socket; it wakes up with them
        direct = RiskGateClient(owner.address, 10.0)
        pending = direct.stub.CheckOrder.future(_order(account, "pause-3"), timeout=10.0)
    finally:
        owner.resume()
    with pytest.raises(grpc.RpcError) as err:
        pending.result()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        direct.get_account(account)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    direct.close()
    owner.wait_role("standby", 30.0)  # it stepped down and follows the new owner
    with cluster.client() as rg:
        view = rg.get_account(account)
        ids = {o.client_order_id for o in view.working_orders}
        assert {id1, id2} <= ids and "pause-3" not in ids
        again = rg.check_order(account, id1, "BTC-PERPETUAL", "buy", 0.1, None, "market")
        assert decision_key(again) == decision_key(first)


def test_the_service_goes_on_when_a_nats_node_is_killed(cluster) -> None:
    cluster.nats.kill_node(0)
    try:
        with cluster.client(failover_wait_s=20.0) as rg:
            for shard in (0, 1):
                a = cluster.accounts[shard][2]
                for i in range(20):
                    d = rg.check_order(a, f"node-{i}", "BTC-PERPETUAL", "buy", 0.01, None,
                                       "market")  # fmt: skip
                    assert d.accepted or str(d.reason) in TRANSIENT_REASONS, d
                assert len(rg.get_account(a).working_orders) >= 19
    finally:
        cluster.nats.start_node(0)


def _upsert_once_market_applied(rg: ClusterClient, account: str) -> None:
    """UpdateMarket answers once the receiving shard applied it; the other shard's owner
    takes it from the market stream a moment later: until then it refuses account calls."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            rg.upsert_account(account, collateral={"USD": 1e9})
            return
        except grpc.RpcError as exc:
            late = exc.code() == grpc.StatusCode.FAILED_PRECONDITION and "no market" in str(
                exc.details()
            )
            if not late or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _accepted(rg, account: str, coid: str, qty: float = 0.1):
    """An accepted order (client order id ``coid``, or ``coid-2``...: on this loaded machine
    a decision can hit the latency budget, a fail-closed reject a retry decides afresh)."""
    for k in range(1, 6):
        cid = coid if k == 1 else f"{coid}-{k}"
        d = rg.check_order(account, cid, "BTC-PERPETUAL", "buy", qty, None, "market")
        if d.accepted or str(d.reason) not in TRANSIENT_REASONS:
            return cid, d
    return cid, d


def _order(account: str, coid: str):
    from riskgate.client import make_order
    from riskgate.v1 import riskgate_pb2 as pb

    return pb.CheckOrderRequest(
        order=make_order(account, coid, "BTC-PERPETUAL", "buy", 0.1, None, "market")
    )
