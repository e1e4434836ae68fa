"""The gRPC service: proto <-> engine conversion, the servicer, logging and start-up.

``riskgate.server.app`` pulls in grpc's health and reflection services; import it (or
:func:`riskgate.server.app.serve`) explicitly rather than from here, so that importing the
conversion helpers stays cheap.
"""

from __future__ import annotations

__all__ = [
    "access", "app", "auth", "convert", "logging", "market_guard", "servicer", "validate",
]  # fmt: skip
