"""riskgate load test: an open/closed-loop gRPC load generator, a no-op baseline server
driven with the same messages, HDR-histogram latency reports, JSON and PNG output.

Run ``python -m loadtest --help``; the baseline alone: ``python -m loadtest.baseline``.
Needs the ``loadtest`` extra (hdrhistogram, matplotlib, tqdm). The crash test (kill -9 under
load, nothing acknowledged lost): ``python -m loadtest.chaos``, which needs no extra.
"""

from __future__ import annotations

__all__: list[str] = []
