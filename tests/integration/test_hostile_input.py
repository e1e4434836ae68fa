"""Hostile input on a live server: undecodable bytes, unknown enum numbers and empty map keys
are INVALID_ARGUMENT naming the field (never INTERNAL or UNKNOWN) and change nothing; a
huge id is quoted by a short prefix only; a stream beyond ``stream_workers`` is refused
with RESOURCE_EXHAUSTED at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from riskgate.server.app import RiskGateServer
from riskgate.server.validate import QUOTE_CHARS
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import server_settings, serving

T = 10.0
C = grpc.StatusCode
PERP = "BTC-PERPETUAL"
STREAMS = 2
METHODS = list(pb.DESCRIPTOR.services_by_name["RiskGate"].methods_by_name)


@pytest.fixture(scope="module")
def server() -> Iterator[RiskGateServer]:
    settings = server_settings(demo_accounts=2, log_level="error", stream_workers=STREAMS)
    with serving(settings, grace_s=0) as srv:
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


def _state(stub: Any, server: RiskGateServer) -> tuple[Any, ...]:
    views = tuple(
        stub.GetAccount(pb.GetAccountRequest(account_id=a), timeout=T).SerializeToString(
            deterministic=True
        )
        for a in server.demo_accounts
    )
    market = server.engine.market
    assert market is not None
    return views, market.version


@pytest.mark.parametrize("method", METHODS)
def test_undecodable_bytes_are_invalid_argument(
    server: RiskGateServer, channel: grpc.Channel, stub: Any, method: str
) -> None:
    before = _state(stub, server)
    path = f"/riskgate.v1.RiskGate/{method}"
    streaming = method == "StreamMarginStatus"
    call = (channel.unary_stream if streaming else channel.unary_unary)(path)
    # a field-1 length prefix running past the end: not a protobuf message
    for garbage in (b"\x0a\xff\xff\xff\x0f", b"\xff" * 16):
        with pytest.raises(grpc.RpcError) as err:
            result = call(garbage, timeout=T)
            if streaming:
                next(result)
        assert err.value.code() == C.INVALID_ARGUMENT, err.value
        assert f"cannot decode the {method} request" in err.value.details()
    assert _state(stub, server) == before


def _order(**fields: Any) -> pb.Order:
    base: dict[str, Any] = dict(
        account_id="demo-1", client_order_id="hostile-1", symbol=PERP, side=pb.SIDE_BUY,
        order_type=pb.ORDER_TYPE_MARKET, quantity=0.01,
    )  # fmt: skip
    base.update(fields)
    return pb.Order(**base)


SHAPE = [
    ("CheckOrder", pb.CheckOrderRequest(order=_order(time_in_force=99)), "order.time_in_force"),
    ("WhatIf", pb.CheckOrderRequest(order=_order(time_in_force=-3)), "order.time_in_force"),
    (
        "CheckOrders",
        pb.CheckOrdersRequest(orders=[_order(), _order(client_order_id="h2", time_in_force=7)]),
        "orders[1].time_in_force",
    ),
    ("UpsertAccount", pb.UpsertAccountRequest(account_id="demo-1", pool_mode=7), "pool_mode"),
    (
        "UpsertAccount",
        pb.UpsertAccountRequest(account_id="demo-1", margin_method=9),
        "margin_method",
    ),
    (
        "UpsertAccount",
        pb.UpsertAccountRequest(account_id="demo-1", collateral={"USD": 1.0, "": 5.0}),
        "collateral: empty key",
    ),
    (
        "UpsertAccount",
        pb.UpsertAccountRequest(account_id="demo-1", limits=pb.Limits(position_limits={"": 1.0})),
        "limits.position_limits: empty key",
    ),
    ("SetTradingState", pb.SetTradingStateRequest(account_id="demo-1", state=99), "state"),
    ("UpdateMarket", pb.UpdateMarketRequest(index_usd={"": 70_000.0}), "index_usd: empty key"),
    ("UpdateMarket", pb.UpdateMarketRequest(marks_usd={"": 70_000.0}), "marks_usd: empty key"),
    ("UpdateMarket", pb.UpdateMarketRequest(ivs={"": 0.5}), "ivs: empty key"),
]


@pytest.mark.parametrize(
    ("method", "request_", "field"), SHAPE, ids=[f"{m}-{f.split(':')[0]}" for m, _, f in SHAPE]
)
def test_unknown_enum_numbers_and_empty_keys_are_refused_naming_the_field(
    server: RiskGateServer, stub: Any, method: str, request_: Any, field: str
) -> None:
    before = _state(stub, server)
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(request_, timeout=T)
    assert err.value.code() == C.INVALID_ARGUMENT
    assert err.value.details().startswith(field), err.value.details()
    assert _state(stub, server) == before


def test_an_unknown_side_stays_a_reject_of_the_order(stub: Any) -> None:
    d = stub.WhatIf(pb.CheckOrderRequest(order=_order(side=7)), timeout=T)
    assert not d.accepted and d.reason == pb.REJECT_REASON_INVALID_ORDER
    assert d.context.field == "side"


def _short_quote(message: str) -> bool:
    return (
        len(message) < 300
        and re.search("x{" + str(QUOTE_CHARS // 2) + ",}…", message) is not None
        and "x" * (QUOTE_CHARS + 1) not in message
    )


def test_a_huge_id_is_quoted_by_a_short_prefix(stub: Any) -> None:
    huge = "x" * 200_000
    for call in (
        lambda: stub.GetAccount(pb.GetAccountRequest(account_id=huge), timeout=T),
        lambda: stub.MaxQuantity(pb.MaxQuantityRequest(account_id=huge, symbol=PERP), timeout=T),
        lambda: next(
            stub.StreamMarginStatus(pb.StreamMarginStatusRequest(account_ids=[huge]), timeout=T)
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        # too long to be an account id at all (not RESOURCE_EXHAUSTED from a huge status)
        assert err.value.code() in (C.INVALID_ARGUMENT, C.NOT_FOUND)
        details = err.value.details()
        assert _short_quote(details), details
    d = stub.WhatIf(pb.CheckOrderRequest(order=_order(account_id=huge)), timeout=T)
    assert d.reason == pb.REJECT_REASON_UNKNOWN_ACCOUNT
    assert _short_quote(d.detail), d.detail


def test_streams_beyond_stream_workers_are_refused_at_once(
    server: RiskGateServer, channel: grpc.Channel, stub: Any
) -> None:
    account = server.demo_accounts[0]
    req = pb.StreamMarginStatusRequest(account_ids=[account], include_current=True)
    open_calls = []
    try:
        for _ in range(STREAMS):
            call = stub.StreamMarginStatus(req, timeout=60)
            assert next(call).account_id == account  # running: it holds a stream thread
            open_calls.append(call)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as err:
                next(stub.StreamMarginStatus(req, timeout=60))
            assert err.value.code() == C.RESOURCE_EXHAUSTED
            assert "stream_workers" in err.value.details()
        # reflection sessions share the stream threads
        refl = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=60
        )
        with pytest.raises(grpc.RpcError) as err:
            next(refl)
        assert err.value.code() == C.RESOURCE_EXHAUSTED
        # unary calls are not affected
        assert stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T).account_id
    finally:
        for call in open_calls:
            call.cancel()
    # once an open stream has ended its thread takes a new one (it notices the cancel on
    # its next poll)
    for _attempt in range(100):
        call = stub.StreamMarginStatus(req, timeout=60)
        try:
            assert next(call).account_id == account
            break
        except grpc.RpcError as exc:
            assert exc.code() == C.RESOURCE_EXHAUSTED
            server._stop_expiry.wait(0.1)
        finally:
            call.cancel()
    else:
        pytest.fail("no stream thread came free after the streams were cancelled")
