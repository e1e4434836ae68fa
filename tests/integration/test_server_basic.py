"""A real server on a free local port, talked to through the generated stub, the typed
client and the ``riskgate`` commands: health, reflection, demo accounts, a CheckOrder round
trip checked against a full revaluation, ``riskgate check`` / ``riskgate account``, a
graceful stop that drains in-flight calls, and ``riskgate serve`` stopped by SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from riskgate.cli import main
from riskgate.client import RiskGateClient
from riskgate.domain.instruments import parse_symbol
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.types import (
    Decision,
    OrderRequest,
    OrderType,
    PoolMode,
    Reason,
    Side,
)
from riskgate.server.app import RiskGateServer
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import server_settings, serving

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "riskgate.v1.RiskGate"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _settings(**overrides: object):
    base = {"demo_accounts": 2, "accept_log_sample_rate": 1.0, "shutdown_grace_s": 2.0}
    return server_settings(**base | overrides)


@pytest.fixture(scope="module")
def server() -> Iterator[RiskGateServer]:
    with serving(_settings()) as srv:
        yield srv


@pytest.fixture(scope="module")
def channel(server: RiskGateServer) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(server.address)
    try:
        yield ch
    finally:
        ch.close()


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> riskgate_pb2_grpc.RiskGateStub:
    return riskgate_pb2_grpc.RiskGateStub(channel)


# ---- health, reflection, demo data ---------------------------------------------------------


def test_health_is_serving(server: RiskGateServer, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert resp.status == SERVING, service
    with RiskGateClient(server.address) as client:
        assert client.health() == "SERVING"


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    listed, described = list(refl.ServerReflectionInfo(iter(requests), timeout=5))
    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
    assert described.file_descriptor_response.file_descriptor_proto  # the .proto is served


@pytest.mark.parametrize("package", ["grpc.reflection.v1", "grpc.reflection.v1alpha"])
def test_reflection_under_both_names(channel: grpc.Channel, package: str) -> None:
    # grpcurl and other current clients ask grpc.reflection.v1 first; the messages of the
    # two are the same field for field, so v1alpha's classes can write v1 requests here
    call = channel.stream_stream(
        f"/{package}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1.ServerReflection"
        ),
    ]
    listed, described, v1 = list(call(iter(requests), timeout=5))
    names = {s.name for s in listed.list_services_response.service}
    assert names == {
        SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }  # fmt: skip
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in described.file_descriptor_response.file_descriptor_proto
    ]
    assert any(f.package == "riskgate.v1" and f.service[0].name == "RiskGate" for f in files)
    (v1_file,) = (
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in v1.file_descriptor_response.file_descriptor_proto
    )
    assert v1_file.package == "grpc.reflection.v1"
    method = v1_file.service[0].method[0]
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.client_streaming and method.server_streaming


def test_demo_accounts_exist(server: RiskGateServer, stub: riskgate_pb2_grpc.RiskGateStub) -> None:
    assert server.demo_accounts == ["demo-1", "demo-2"]
    for account_id in server.demo_accounts:
        view = stub.GetAccount(pb.GetAccountRequest(account_id=account_id), timeout=5)
        assert view.account_id == account_id
        assert view.positions and view.pools
        assert view.equity_usd > view.initial_margin_usd > 0.0
        assert view.market_version >= 1
    with pytest.raises(grpc.RpcError) as err:
        stub.GetAccount(pb.GetAccountRequest(account_id="demo-3"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "demo-3" in err.value.details()


# ---- the order path ------------------------------------------------------------------------


def _full_im(server: RiskGateServer, account_id: str, holdings: dict[str, float]) -> float:
    """Initial margin of ``holdings`` by a full revaluation (single-pool accounts)."""
    engine = server.engine
    assert engine.market is not None
    acc = engine.accounts[account_id]
    pools = full_revaluation(
        engine.model,
        engine.market.snapshot,
        {parse_symbol(s): q for s, q in holdings.items() if q != 0.0},
        engine.account_view(account_id).collateral,  # futures' variation margin included
        acc.pool_mode == PoolMode.SEGREGATED,
    )
    assert len(pools) == 1
    return next(iter(pools.values())).initial_margin


def test_check_order_round_trip_matches_the_engine(
    server: RiskGateServer, stub: riskgate_pb2_grpc.RiskGateStub
) -> None:
    account_id, symbol, qty = "demo-1", "BTC-PERPETUAL", 0.3
    before = server.engine.account_view(account_id)
    positions = {p.symbol: p.quantity for p in before.positions}
    buys, sells = dict(positions), dict(positions)
    for o in before.working_orders:
        book = buys if o.side == Side.BUY else sells
        book[o.symbol] = book.get(o.symbol, 0.0) + o.side.sign * o.working_quantity
    # an inverse perpetual's order reserves its USD notional at its limit price: in coin at
    # the mark (what full revaluation counts) qty x 70,000 / mark
    mark = server.engine.market.quotes[symbol].mark
    buys[symbol] = buys.get(symbol, 0.0) + qty * 70_000.0 / mark
    expected_im = max(_full_im(server, account_id, buys), _full_im(server, account_id, sells))
    # the engine's own answer for the same order, reserving nothing
    whatif = server.engine.whatif(
        OrderRequest(account_id, "", symbol, Side.BUY, qty, 70_000.0, OrderType.LIMIT)
    )

    order = pb.Order(
        account_id=account_id,
        client_order_id="it-basic-1",
        symbol=symbol,
        side=pb.SIDE_BUY,
        order_type=pb.ORDER_TYPE_LIMIT,
        quantity=qty,
        price=70_000.0,
    )
    d = stub.CheckOrder(pb.CheckOrderRequest(order=order))  # no deadline
    assert d.accepted and d.reason == pb.REJECT_REASON_UNSPECIFIED
    assert (d.account_id, d.client_order_id) == (account_id, "it-basic-1")
    assert d.initial_margin_after == pytest.approx(whatif.initial_margin_after, rel=1e-12)
    assert d.initial_margin_after == pytest.approx(expected_im, rel=1e-9)
    assert d.initial_margin_before == pytest.approx(before.pools[0].initial_margin, rel=1e-12)
    assert d.equity_before == pytest.approx(before.equity_usd, rel=1e-12)
    assert d.pool_currency == "USD" and d.worst_scenario.pool_currency == "USD"
    assert 0 < d.compute_ns < 50_000_000
    assert not d.HasField("context")

    after = stub.GetAccount(pb.GetAccountRequest(account_id=account_id), timeout=5)
    assert after.pools[0].initial_margin == pytest.approx(d.initial_margin_after, rel=1e-12)
    working = {o.client_order_id: o for o in after.working_orders}
    assert working["it-basic-1"].working_quantity == pytest.approx(qty)
    assert working["it-basic-1"].status == pb.ORDER_STATUS_PENDING_ACK

    # a retry with a deadline returns the original decision and reserves nothing again
    retry = stub.CheckOrder(pb.CheckOrderRequest(order=order), timeout=5)
    assert retry.duplicate and retry.accepted
    assert retry.initial_margin_after == d.initial_margin_after
    again = stub.GetAccount(pb.GetAccountRequest(account_id=account_id), timeout=5)
    assert again.pools[0].initial_margin == pytest.approx(d.initial_margin_after, rel=1e-12)

    # the gateway cancels it: the reservation is released
    ack = stub.ReportOrderEvent(
        pb.OrderEvent(account_id=account_id, client_order_id="it-basic-1", cancelled={}),
        timeout=5,
    )
    assert ack.order_status == pb.ORDER_STATUS_CANCELLED and ack.working_quantity == 0.0


def test_order_path_request_shape(stub: riskgate_pb2_grpc.RiskGateStub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckOrder(pb.CheckOrderRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order" in err.value.details()
    # a problem with the order's content is a reject naming the field, not an error
    d = stub.CheckOrder(
        pb.CheckOrderRequest(
            order=pb.Order(
                account_id="demo-1",
                client_order_id="it-basic-nan",
                symbol="BTC-PERPETUAL",
                side=pb.SIDE_SELL,
                order_type=pb.ORDER_TYPE_LIMIT,
                quantity=float("nan"),
                price=70_000.0,
            )
        ),
        timeout=5,
    )
    assert not d.accepted and d.reason == pb.REJECT_REASON_INVALID_ORDER
    assert d.context.field == "quantity"
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportOrderEvent(
            pb.OrderEvent(account_id="demo-1", client_order_id="it-basic-nan"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "event" in err.value.details()


def test_typed_client(server: RiskGateServer) -> None:
    with RiskGateClient(server.address, timeout_s=2.0) as client:
        w = client.whatif("demo-2", "ETH-PERPETUAL", "sell", 1.0, order_type="market")
        assert w.accepted and w.client_order_id == ""
        mq = client.max_quantity("demo-2", "ETH-PERPETUAL")
        assert mq.max_buy_quantity > 0.0 and mq.max_sell_quantity > 0.0
        ds = client.check_orders(
            [
                {
                    "account_id": "demo-2",
                    "client_order_id": "it-batch-1",
                    "symbol": "ETH-PERPETUAL",
                    "side": Side.BUY,
                    "quantity": 0.5,
                    "order_type": "market",
                },
                {
                    "account_id": "demo-2",
                    "client_order_id": "it-batch-2",
                    "symbol": "NOPE-PERPETUAL",
                    "side": "sell",
                    "quantity": 0.5,
                    "price": 1.0,
                },
            ]
        )
        assert [d.accepted for d in ds] == [True, False]
        assert ds[1].reason == Reason.UNKNOWN_INSTRUMENT
        assert client.ack("demo-2", "it-batch-1", "v-1").order_status == pb.ORDER_STATUS_OPEN
        filled = client.fill("demo-2", "it-batch-1", 0.5, 3_500.0, fill_id="t-1")
        assert filled.order_status == pb.ORDER_STATUS_FILLED
        assert client.fill("demo-2", "it-batch-1", 0.5, 3_500.0, fill_id="t-1").duplicate


def test_margin_status_stream_on_a_market_move(
    server: RiskGateServer, stub: riskgate_pb2_grpc.RiskGateStub
) -> None:
    account_id = "it-stream"
    stub.UpsertAccount(
        pb.UpsertAccountRequest(account_id=account_id, collateral={"USD": 2_000.0}), timeout=5
    )
    stub.SetPositions(
        pb.SetPositionsRequest(
            account_id=account_id, positions=[pb.Position(symbol="BTC-PERPETUAL", quantity=0.1)]
        ),
        timeout=5,
    )
    with pytest.raises(grpc.RpcError) as err:
        next(stub.StreamMarginStatus(pb.StreamMarginStatusRequest(account_ids=["nobody"])))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    market = server.engine.market
    assert market is not None
    index, mark = market.snapshot.index_usd["BTC"], market.quotes["BTC-PERPETUAL"].mark
    stream = stub.StreamMarginStatus(
        pb.StreamMarginStatusRequest(account_ids=[account_id], include_current=True), timeout=20
    )
    try:
        current = next(stream)  # also proves the subscription is live
        assert current.account_id == account_id
        assert current.status == pb.MARGIN_STATUS_OK
        assert current.previous_status == pb.MARGIN_STATUS_UNSPECIFIED
        stub.UpdateMarket(
            pb.UpdateMarketRequest(
                index_usd={"BTC": index * 0.8}, marks_usd={"BTC-PERPETUAL": mark * 0.8}
            ),
            timeout=10,
        )
        change = next(stream)
        assert change.account_id == account_id
        assert change.previous_status == pb.MARGIN_STATUS_OK
        assert change.status in (pb.MARGIN_STATUS_MARGIN_CALL, pb.MARGIN_STATUS_LIQUIDATION)
        assert change.equity < change.initial_margin
        assert change.market_version == market.version + 1
    finally:
        stream.cancel()
        stub.SetPositions(pb.SetPositionsRequest(account_id=account_id), timeout=5)
        stub.UpdateMarket(
            pb.UpdateMarketRequest(index_usd={"BTC": index}, marks_usd={"BTC-PERPETUAL": mark}),
            timeout=10,
        )


# ---- commands ------------------------------------------------------------------------------


def test_cli_check_and_account(server: RiskGateServer, capsys: pytest.CaptureFixture) -> None:
    target = ["--target", server.address]
    assert main(["check", "demo-2", "BTC-PERPETUAL", "buy", "0.1", "70000", *target]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ACCEPTED  demo-2  BUY BTC-PERPETUAL 0.1 BTC @ 70,000.00 USD")
    for label in ("initial margin", "equity", "worst scenario", "compute", "client order id cli-"):
        assert label in out

    argv = ["check", "demo-2", "BTC-PERPETUAL", "sell", "1e6", "--client-order-id", "it-cli-2"]
    assert main([*argv, "--json", *target]) == 1  # rejected
    decision = json.loads(capsys.readouterr().out)
    assert decision["client_order_id"] == "it-cli-2"
    assert decision["accepted"] is False
    assert decision["reason"] == "REJECT_REASON_INSUFFICIENT_MARGIN"

    assert main(["account", "demo-2", *target]) == 0
    out = capsys.readouterr().out
    for label in ("account demo-2", "initial margin", "pools", "positions", "working orders"):
        assert label in out
    assert "BTC-PERPETUAL" in out  # the working order placed above

    assert main(["account", "demo-2", "--json", *target]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["account_id"] == "demo-2" and view["pools"]


def _cli_stderr(capsys: pytest.CaptureFixture) -> list[str]:
    """stderr lines of the command (the in-process server's JSON log lines left out)."""
    return [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("{")]


def test_cli_errors_are_one_line(server: RiskGateServer, capsys: pytest.CaptureFixture) -> None:
    assert main(["account", "nobody", "--target", server.address]) == 2
    err = _cli_stderr(capsys)
    assert len(err) == 1 and "NOT_FOUND" in err[0] and "nobody" in err[0]

    # a port nothing listens on: bind one, note it, release it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    target = f"127.0.0.1:{free}"
    code = main(["check", "demo-1", "BTC-PERPETUAL", "buy", "1", "--target", target])
    assert code == 2
    err = _cli_stderr(capsys)
    assert len(err) == 1 and "cannot reach riskgate" in err[0] and target in err[0]


# ---- shutdown ------------------------------------------------------------------------------


def test_stop_drains_in_flight_calls() -> None:
    srv = RiskGateServer(_settings(demo=False))
    srv.start()
    entered = threading.Event()
    real_check = srv.engine.check_order

    def slow_check(order: OrderRequest, deadline_ns: int | None = None, reserve: bool = True):
        entered.set()
        time.sleep(0.5)
        d: Decision = real_check(order, deadline_ns, reserve)
        return d

    srv.engine.check_order = slow_check  # type: ignore[method-assign]
    ch = grpc.insecure_channel(srv.address)
    try:
        stub = riskgate_pb2_grpc.RiskGateStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
        assert next(watch).status == SERVING
        stream = stub.StreamMarginStatus(pb.StreamMarginStatusRequest(), timeout=10)
        result: dict[str, object] = {}

        def call() -> None:
            order = pb.Order(
                account_id="x", client_order_id="c", symbol="BTC-PERPETUAL", side=1,
                order_type=2, quantity=1.0,
            )  # fmt: skip
            try:
                result["decision"] = stub.CheckOrder(pb.CheckOrderRequest(order=order), timeout=10)
            except grpc.RpcError as exc:  # pragma: no cover - the failure being tested for
                result["error"] = exc.code()

        t = threading.Thread(target=call)
        t.start()
        assert entered.wait(5)
        t0 = time.perf_counter()
        srv.stop(grace=5.0)
        stopped_in = time.perf_counter() - t0
        t.join(5)
        # the in-flight call finished normally (no market loaded: a fail-closed reject)
        assert "error" not in result
        decision = result["decision"]
        assert isinstance(decision, pb.Decision)
        assert decision.reason == pb.REJECT_REASON_MARKET_DATA_MISSING
        # health watchers saw NOT_SERVING; the open stream ended; the drain did not wait
        # for the stream's grace period
        assert next(watch).status == NOT_SERVING
        assert list(stream) == []
        assert stopped_in < 3.0
        with pytest.raises(grpc.RpcError) as err:
            stub.GetAccount(pb.GetAccountRequest(account_id="x"), timeout=2)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert srv.wait(timeout=1)
    finally:
        ch.close()


def test_serve_command_stops_on_sigterm() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RISKGATE_DEMO_ACCOUNTS": "1",
        "RISKGATE_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskgate.cli", "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))
        reader.start()
        reader.join(60)
        assert first, "riskgate serve printed nothing within 60 s"
        line = first[0]
        assert line.startswith("riskgate: serving riskgate.v1.RiskGate on 127.0.0.1:"), line
        assert "demo accounts: demo-1" in line
        address = line.split(" on ", 1)[1].split(" ", 1)[0]
        with RiskGateClient(address) as client:
            assert client.health() == "SERVING"
            assert client.get_account("demo-1").account_id == "demo-1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert '"event": "stopped"' in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_gil_switch_interval_set_while_serving_and_restored() -> None:
    before = sys.getswitchinterval()
    with serving(_settings(demo=False, gil_switch_interval_us=700.0), grace_s=0):
        assert sys.getswitchinterval() == pytest.approx(700e-6)
    assert sys.getswitchinterval() == before
    # servers overlapping in one process, stopped in the order they started: the interval
    # stays set while any serves and the interpreter's own comes back after the last
    a = RiskGateServer(_settings(demo=False, gil_switch_interval_us=700.0))
    b = RiskGateServer(_settings(demo=False, gil_switch_interval_us=900.0))
    a.start()
    b.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(900e-6)
        a.stop(grace=0)
        assert sys.getswitchinterval() == pytest.approx(900e-6)
    finally:
        a.stop(grace=0)
        b.stop(grace=0)
    assert sys.getswitchinterval() == before
