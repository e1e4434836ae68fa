"""A foreign client works: Node's @grpc/grpc-js with the .proto loaded at run time.

``clients/node/check_order.js`` (no generated code: @grpc/proto-loader reads
``protos/riskgate/v1/riskgate.proto`` when it starts) sends GetAccount and one CheckOrder to a
real server and prints the decision as one JSON line. For each order, the same order is first
asked as a WhatIf through the Python stub (which reserves nothing), so the Node CheckOrder is
the first real order and must get the same decision.

Needs ``node`` on PATH and ``clients/node/node_modules`` (``npm ci --prefix clients/node``);
skipped otherwise.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import ServerEnv, server_settings, serving

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node"
SCRIPT = NODE_DIR / "check_order.js"
NODE = shutil.which("node")

if NODE is None:
    pytest.skip(
        "node is not on PATH (the foreign-client test needs Node.js)", allow_module_level=True
    )
if not all((NODE_DIR / "node_modules" / "@grpc" / p).is_dir() for p in ("grpc-js", "proto-loader")):
    pytest.skip(
        "clients/node/node_modules is missing: run `npm ci --prefix clients/node`",
        allow_module_level=True,
    )

VT = datetime(2030, 6, 3, tzinfo=UTC)
EXP = "28JUN30"
PERP = "BTC_USDC-PERPETUAL"
CALL = f"BTC-{EXP}-70000-C"
INDEX = {"BTC": 70_000.0, "ETH": 3_500.0}
MARKS = {PERP: 70_005.0, "BTC-PERPETUAL": 70_010.0, "ETH-PERPETUAL": 3_500.5}
IVS = {CALL: 0.5, f"BTC-{EXP}-60000-P": 0.6}
ACCOUNT = "node-1"
T = 10.0
SIDES = {"buy": pb.SIDE_BUY, "sell": pb.SIDE_SELL}


@pytest.fixture(scope="module")
def env() -> Iterator[ServerEnv]:
    settings = server_settings(demo=False, log_level="warning", decision_budget_us=2_000_000.0)
    with serving(settings) as srv, grpc.insecure_channel(srv.address) as channel:
        stub = riskgate_pb2_grpc.RiskGateStub(channel)
        req = pb.UpdateMarketRequest(full_snapshot=True, index_usd=INDEX, marks_usd=MARKS, ivs=IVS)
        req.valuation_time.FromDatetime(VT)
        stub.UpdateMarket(req, timeout=T)
        stub.UpsertAccount(
            pb.UpsertAccountRequest(
                account_id=ACCOUNT,
                collateral={"USD": 60_000.0},
                margin_method=pb.MARGIN_METHOD_PORTFOLIO,
            ),
            timeout=T,
        )
        stub.SetPositions(
            pb.SetPositionsRequest(
                account_id=ACCOUNT,
                positions=[
                    pb.Position(symbol=PERP, quantity=1.5),
                    pb.Position(symbol=CALL, quantity=-2.0),
                ],
            ),
            timeout=T,
        )
        yield ServerEnv(srv, stub)


def run_node(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NODE or "node", str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def node_check(target: str, coid: str, *order: str) -> tuple[int, dict[str, Any]]:
    proc = run_node("--target", target, "--client-order-id", coid, *order)
    lines = proc.stdout.splitlines()
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stdout  # one JSON line
    return proc.returncode, json.loads(lines[0])


# (client order id, symbol, side, quantity, price or None = a market order, expected reason)
ORDERS = [
    pytest.param("node-perp-buy", PERP, "buy", "0.5", "70005", "UNSPECIFIED", id="limit-buy"),
    pytest.param("node-call-buy", CALL, "buy", "1", "0.05", "UNSPECIFIED", id="option-buy"),
    pytest.param("node-perp-sell", PERP, "sell", "3", None, "UNSPECIFIED", id="market-sell"),
    pytest.param("node-too-big", PERP, "buy", "100", None, "INSUFFICIENT_MARGIN", id="too-big"),
    pytest.param(
        "node-unknown", "SOL-PERPETUAL", "sell", "1", "150", "UNKNOWN_INSTRUMENT", id="unknown"
    ),
    pytest.param("node-bad-price", PERP, "sell", "1", "-5", "INVALID_ORDER", id="bad-price"),
]


@pytest.mark.parametrize(("coid", "symbol", "side", "qty", "price", "reason"), ORDERS)
def test_node_check_order_matches_a_python_whatif(
    env: ServerEnv, coid: str, symbol: str, side: str, qty: str, price: str | None, reason: str
) -> None:
    stub = env.stub
    order = pb.Order(
        account_id=ACCOUNT,
        client_order_id=coid,
        symbol=symbol,
        side=SIDES[side],
        order_type=pb.ORDER_TYPE_MARKET if price is None else pb.ORDER_TYPE_LIMIT,
        quantity=float(qty),
    )
    if price is not None:
        order.price = float(price)
    before = stub.GetAccount(pb.GetAccountRequest(account_id=ACCOUNT), timeout=T)
    expected = stub.WhatIf(pb.CheckOrderRequest(order=order), timeout=T)
    assert pb.RejectReason.Name(expected.reason) == f"REJECT_REASON_{reason}"  # the set-up
    assert stub.GetAccount(pb.GetAccountRequest(account_id=ACCOUNT), timeout=T) == before

    code, got = node_check(
        env.server.address, coid, ACCOUNT, symbol, side, qty, *([price] if price else [])
    )

    assert code == (0 if expected.accepted else 1)
    assert got["accepted"] is expected.accepted
    assert got["reason"] == pb.RejectReason.Name(expected.reason)
    assert (got["account_id"], got["client_order_id"]) == (ACCOUNT, coid)
    assert got["duplicate"] is False
    for name in (
        "initial_margin_before",
        "initial_margin_after",
        "maintenance_margin_after",
        "equity_before",
    ):
        assert got[name] == pytest.approx(getattr(expected, name), rel=1e-9, abs=1e-12), name
    assert got["risk_reducing"] is expected.risk_reducing
    assert got["pool_currency"] == expected.pool_currency
    assert got["margin_method"] == pb.MarginMethod.Name(expected.margin_method)
    assert int(got["market_version"]) == expected.market_version  # uint64 as a string
    assert int(got["compute_ns"]) > 0
    if expected.accepted:
        assert got["context"] is None
    else:
        assert got["context"]["field"] == expected.context.field
        assert got["detail"] == expected.detail
    # the GetAccount the Node client sent first
    acc = got["account_before"]
    assert acc["account_id"] == ACCOUNT
    assert acc["trading_state"] == "TRADING_STATE_ACTIVE"
    assert acc["initial_margin_usd"] == pytest.approx(before.initial_margin_usd, rel=1e-12)
    assert acc["equity_usd"] == pytest.approx(before.equity_usd, rel=1e-12)
    assert acc["working_orders"] == len(before.working_orders)

    # the Node CheckOrder was a real order: reserved if accepted, nothing otherwise
    after = stub.GetAccount(pb.GetAccountRequest(account_id=ACCOUNT), timeout=T)
    working = {o.client_order_id: o for o in after.working_orders}
    if expected.accepted:
        assert working[coid].working_quantity == float(qty)
        assert working[coid].status == pb.ORDER_STATUS_PENDING_ACK
        assert after.pools[0].initial_margin == pytest.approx(got["initial_margin_after"], rel=1e-9)
    else:
        assert after == before
    # and a Python retry of the same id sees the Node order's decision
    retry = stub.CheckOrder(pb.CheckOrderRequest(order=order), timeout=T)
    assert retry.duplicate and retry.accepted is expected.accepted


def test_node_client_errors(env: ServerEnv) -> None:
    proc = run_node("--target", env.server.address, "nobody", PERP, "buy", "1")
    assert proc.returncode == 2 and not proc.stdout
    assert "NOT_FOUND" in proc.stderr and "nobody" in proc.stderr

    proc = run_node("--target", env.server.address, ACCOUNT, PERP, "hold", "1")
    assert proc.returncode == 2 and "SIDE" in proc.stderr

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_node(
        "--target", f"127.0.0.1:{port}", "--timeout-ms", "1500", ACCOUNT, PERP, "buy", "1"
    )
    assert proc.returncode == 2 and not proc.stdout
    assert "UNAVAILABLE" in proc.stderr or "DEADLINE_EXCEEDED" in proc.stderr


def test_node_client_loads_the_proto_at_run_time(tmp_path: Path) -> None:
    """No generated code: point --proto-root at a directory without the .proto and it fails
    while loading it, before any call."""
    proc = run_node("--proto-root", str(tmp_path), ACCOUNT, PERP, "buy", "1")
    assert proc.returncode == 2
    assert "riskgate.proto" in proc.stderr
