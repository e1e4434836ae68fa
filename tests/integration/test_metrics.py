"""The Prometheus endpoint (``metrics_address``): scraped over HTTP from a real server after
a known sequence of calls, the counters and histograms say exactly what happened."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from riskgate.config import SettingsError
from riskgate.server.app import RiskGateServer, ServeError
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import server_settings, serving

T = 10.0


def _settings(**overrides: object):
    # the counts below are exact: a generous budget keeps a loaded machine's slow decision
    # from becoming a latency reject
    base = {"demo_accounts": 2, "log_level": "warning", "metrics_address": "127.0.0.1:0",
            "decision_budget_us": 1e6}  # fmt: skip
    return server_settings(**base | overrides)


@pytest.fixture(scope="module")
def server() -> Iterator[RiskGateServer]:
    with serving(_settings(), grace_s=0) as srv:
        yield srv


def scrape(srv: RiskGateServer) -> dict[tuple[str, tuple], float]:
    url = f"http://127.0.0.1:{srv.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=T) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def order(account: str, coid: str, symbol: str = "BTC-PERPETUAL") -> pb.Order:
    return pb.Order(
        account_id=account,
        client_order_id=coid,
        symbol=symbol,
        side=pb.SIDE_BUY,
        order_type=pb.ORDER_TYPE_MARKET,
        quantity=0.01,
    )


def test_metrics_count_what_happened(server: RiskGateServer) -> None:
    acct = server.demo_accounts[0]
    before = scrape(server)
    assert before[("riskgate_market_version", ())] == 1.0
    assert before[("riskgate_working_orders", ())] == 0.0
    with grpc.insecure_channel(server.address) as channel:
        stub = riskgate_pb2_grpc.RiskGateStub(channel)
        for k in range(3):
            d = stub.CheckOrder(pb.CheckOrderRequest(order=order(acct, f"a{k}")), timeout=T)
            assert d.accepted
        for k in range(2):
            d = stub.CheckOrder(
                pb.CheckOrderRequest(order=order(acct, f"r{k}", "BTC-NOPE")), timeout=T
            )
            assert d.reason == pb.REJECT_REASON_UNKNOWN_INSTRUMENT
        replay = stub.CheckOrder(pb.CheckOrderRequest(order=order(acct, "a0")), timeout=T)
        assert replay.duplicate and replay.accepted
        assert stub.WhatIf(pb.CheckOrderRequest(order=order(acct, "w")), timeout=T).accepted
        batch = stub.CheckOrders(
            pb.CheckOrdersRequest(orders=[order(acct, "b0"), order(acct, "b1")]), timeout=T
        )
        assert all(d.accepted for d in batch.decisions)
        sent = time.time()
        stub.UpdateMarket(pb.UpdateMarketRequest(index_usd={"BTC": 70_500.0}), timeout=T)
    m = scrape(server)
    since_sent = time.time() - sent

    def decisions(rpc: str, decision: str, reason: str) -> float:
        key = (("decision", decision), ("reason", reason), ("rpc", rpc))
        return m.get(("riskgate_decisions_total", key), 0.0)

    assert decisions("CheckOrder", "accept", "ACCEPTED") == 3
    assert decisions("CheckOrder", "replay", "ACCEPTED") == 1
    assert decisions("CheckOrder", "reject", "UNKNOWN_INSTRUMENT") == 2
    assert decisions("WhatIf", "accept", "ACCEPTED") == 1
    assert decisions("CheckOrders", "accept", "ACCEPTED") == 2
    # histograms: every decision counted once, cumulative buckets ending at the count
    for rpc, n in (("CheckOrder", 5), ("WhatIf", 1), ("CheckOrders", 2)):  # replays not timed
        assert m[("riskgate_decision_compute_seconds_count", (("rpc", rpc),))] == n
        assert m[("riskgate_decision_compute_seconds_bucket", (("le", "+Inf"), ("rpc", rpc)))] == n
        assert m[("riskgate_decision_compute_seconds_sum", (("rpc", rpc),))] > 0.0
    assert m[("riskgate_market_updates_total", ())] == 1
    assert m[("riskgate_market_update_seconds_count", ())] == 1
    assert m[("riskgate_market_version", ())] == 2
    # the market's age counts from the update's arrival
    assert 0.0 <= m[("riskgate_market_age_seconds", ())] <= since_sent
    assert m[("riskgate_working_orders", ())] == 5  # 3 + 2 accepted, none acknowledged
    accounts = sum(v for (name, _), v in m.items() if name == "riskgate_accounts")
    assert accounts == len(server.demo_accounts)
    assert m[("riskgate_reservations_expired_total", ())] == 0


def test_bad_metrics_address_is_a_clear_error_and_binds_nothing() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        grpc_port = probe.getsockname()[1]
    for address in ("nonsense", "127.0.0.1:notaport", "127.0.0.1:99999"):
        # refused with the settings, before anything is bound
        with pytest.raises(SettingsError, match="metrics_address"):
            _settings(demo=False, metrics_address=address, listen_address=f"127.0.0.1:{grpc_port}")
    # nothing was left listening: a server can take the same gRPC port at once
    with serving(_settings(demo=False, listen_address=f"127.0.0.1:{grpc_port}"), grace_s=0) as srv:
        assert srv.port == grpc_port


def test_metrics_port_taken_releases_the_grpc_port() -> None:
    with serving(_settings(demo=False), grace_s=0) as first:
        taken = f"127.0.0.1:{first.metrics_port}"
        srv = RiskGateServer(_settings(demo=False, metrics_address=taken))
        with pytest.raises(ServeError, match="cannot bind"):
            srv.start()
        assert srv.port is None


def test_metrics_address_forms() -> None:
    for address in (":0", "[::1]:0"):
        try:
            with serving(_settings(demo=False, metrics_address=address), grace_s=0) as srv:
                url = f"http://{'[::1]' if '::1' in address else '127.0.0.1'}:{srv.metrics_port}/"
                with urllib.request.urlopen(url + "metrics", timeout=T) as resp:
                    assert resp.status == 200
                    assert b"riskgate_market_version 0.0" in resp.read()
        except ServeError as exc:
            if "::1" in address and "ddress" in str(exc):
                continue  # no IPv6 loopback on this machine
            raise


def test_only_the_metrics_path_answers() -> None:
    with serving(_settings(demo=False, metrics_address="127.0.0.1:0"), grace_s=0) as srv:
        base = f"http://127.0.0.1:{srv.metrics_port}"
        with urllib.request.urlopen(base + "/metrics", timeout=T) as resp:
            assert resp.status == 200 and b"riskgate_market_version" in resp.read()
        for path in ("/", "/foo", "/metrics/", "/metricsfoo", "/favicon.ico"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + path, timeout=T)
            assert err.value.code == 404, path
            assert b"/metrics" in err.value.read()
