"""Servers the integration tests start: on a free 127.0.0.1 port, stopped by the test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from riskgate.config import Settings, load_settings
from riskgate.server.app import RiskGateServer


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
