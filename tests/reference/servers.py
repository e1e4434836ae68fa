"""Servers the integration tests start: on a free 127.0.0.1 port, stopped by the test."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from riskgate.config import Settings, load_settings
from riskgate.server.app import RiskGateServer
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc


def server_settings(**overrides: object) -> Settings:
    """Test-server settings: a free local port, JSON logs, a short drain; then ``overrides``
    (no environment variables are read)."""
    base: dict[str, object] = {
        "listen_address": "127.0.0.1:0",
        "log_format": "json",
        "shutdown_grace_s": 1.0,
    }
    base.update(overrides)
    return load_settings(env={}, **base)


@contextmanager
def serving(settings: Settings, grace_s: float = 1.0) -> Iterator[RiskGateServer]:
    """A started server, stopped (``grace_s`` to drain) when the block ends."""
    srv = RiskGateServer(settings)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop(grace=grace_s)


@dataclass
class ServerEnv:
    """A started server and a stub on a channel to it."""

    server: RiskGateServer
    stub: riskgate_pb2_grpc.RiskGateStub


def create_account(
    stub: riskgate_pb2_grpc.RiskGateStub,
    account: str,
    usd: float,
    positions: Mapping[str, float] | None = None,
    timeout_s: float = 10.0,
) -> None:
    """A new cross-pool, portfolio-margined account with ``usd`` of cash (and positions)."""
    resp = stub.UpsertAccount(
        pb.UpsertAccountRequest(
            account_id=account,
            collateral={"USD": usd},
            pool_mode=pb.MARGIN_POOL_MODE_CROSS,
            margin_method=pb.MARGIN_METHOD_PORTFOLIO,
        ),
        timeout=timeout_s,
    )
    assert resp.created, account
    if positions:
        stub.SetPositions(
            pb.SetPositionsRequest(
                account_id=account,
                positions=[pb.Position(symbol=s, quantity=q) for s, q in positions.items()],
            ),
            timeout=timeout_s,
        )
