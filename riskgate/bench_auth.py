"""``riskgate bench-auth``: what the access interceptor adds to a call, in process.

Each timed call is what grpc does per RPC once the request is decoded: the interceptor's
``intercept_service`` (handler lookup) and the handler it returns, called with the request
and a servicer context. Configurations, measured in the same run, interleaved round by
round so that machine drift hits them alike:

- ``direct``: the method without any interceptor;
- ``auth off``: the interceptor without an auth file (everyone is anonymous; the request
  shape checks still run);
- ``auth on``: with an auth file of ``--principals`` token principals, the caller
  presenting its bearer token (sha256 and a constant-time comparison with every digest,
  role, account scope);
- ``auth on, audited``: the same for a state-changing call, with the audit record built
  and handed to a sink that keeps it (no log line);
- ``auth on, cert``: a caller known by its client certificate's CN.

Each is run around a no-op method (the interceptor's own cost) and around the real
``WhatIf`` of the servicer on a demo account (the order path as a gateway sees it). The
context is a stand-in: grpc's own per-call cost, the same with or without the
interceptor, is not in the figures; neither are grpc's C-level calls for the peer's
certificate names (about 0.15 µs each for ``peer_identity_key()`` and ``peer_identities()``
on a 2-vCPU machine).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import structlog

from riskgate.bench import emit
from riskgate.config import load_settings
from riskgate.server.access import AccessInterceptor
from riskgate.server.app import build_engine, tune_gc
from riskgate.server.auth import AuthConfig, Principal, Scope, token_sha256
from riskgate.server.servicer import RiskGateServicer
from riskgate.v1 import riskgate_pb2 as pb

_Metadatum = namedtuple("_Metadatum", ("key", "value"))
_Details = namedtuple("_Details", ("method", "invocation_metadata"))


class _Context:
    """The parts of a grpc.ServicerContext the interceptor and servicer use."""

    def __init__(self, metadata: tuple[Any, ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[Any, ...]:
        return self._metadata

    def time_remaining(self) -> None:
        return None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def code(self) -> None:
        return None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def peer_identity_key(self) -> str | None:
        return None


class _CertContext(_Context):
    """A caller with a verified client certificate whose CN is ``gw-cert`` (no SANs)."""

    def peer_identity_key(self) -> str:
        return "x509_common_name"

    def peer_identities(self) -> list[bytes]:
        return [b"gw-cert"]

    def abort(self, code: Any, message: str) -> None:  # pragma: no cover - valid requests
        raise RuntimeError(f"{code}: {message}")


def _auth(n: int, token: str) -> AuthConfig:
    others = [
        Principal(f"p{k}", frozenset({"viewer"}), Scope(ids=frozenset({f"x{k}"})),
                  bytes.fromhex(token_sha256(f"other-{k}")))
        for k in range(n - 1)
    ]  # fmt: skip
    gw = Principal(
        "gw", frozenset({"gateway", "account_admin"}), Scope(prefixes=("demo-",)),
        bytes.fromhex(token_sha256(token)),
    )  # fmt: skip
    by_cert = Principal(
        "gw-cert", frozenset({"gateway"}), Scope(prefixes=("demo-",)), None, ("CN", "gw-cert")
    )
    return AuthConfig("bench", (*others, gw, by_cert))


def _stats(ns: np.ndarray) -> dict[str, float]:
    us = ns / 1e3
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99))}


def run(calls: int, rounds: int, principals: int) -> dict[str, Any]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    settings = load_settings(env={}, demo=True, demo_accounts=1, accept_log_sample_rate=0.0)
    engine = build_engine(settings)
    servicer = RiskGateServicer(engine, settings)
    token = "bench-token-" + "x" * 32
    whatif = pb.CheckOrderRequest(
        order=pb.Order(
            account_id="demo-1", client_order_id="b", symbol="BTC-PERPETUAL",
            side=pb.SIDE_BUY, order_type=pb.ORDER_TYPE_MARKET, quantity=0.01,
        )
    )  # fmt: skip
    upsert = pb.UpsertAccountRequest(account_id="demo-1")
    reply = pb.Decision()

    def noop(request: Any, context: Any) -> Any:
        return reply

    anonymous, authed = _Context(()), _Context((_Metadatum("authorization", f"Bearer {token}"),))
    kept: list[dict[str, Any]] = []
    off = AccessInterceptor(None)
    on = AccessInterceptor(_auth(principals, token), mutual_tls=True, sinks=[kept.append])
    certified = _CertContext(())

    def through(
        icpt: AccessInterceptor | None, method: str, inner: Callable[..., Any]
    ) -> Callable[[Any, Any], Any]:
        handler = grpc.unary_unary_rpc_method_handler(inner)
        if icpt is None:
            return lambda req, ctx: handler.unary_unary(req, ctx)
        details = _Details(f"/riskgate.v1.RiskGate/{method}", ())

        def call(req: Any, ctx: Any) -> Any:
            return icpt.intercept_service(lambda d: handler, details).unary_unary(req, ctx)

        return call

    configs: dict[str, tuple[Callable[[Any, Any], Any], Any, Any]] = {
        "no-op · direct": (through(None, "WhatIf", noop), whatif, anonymous),
        "no-op · auth off": (through(off, "WhatIf", noop), whatif, anonymous),
        "no-op · auth on": (through(on, "WhatIf", noop), whatif, authed),
        "no-op · auth on, audited": (through(on, "UpsertAccount", noop), upsert, authed),
        "no-op · auth on, cert": (through(on, "WhatIf", noop), whatif, certified),
        "WhatIf · direct": (through(None, "WhatIf", servicer.WhatIf), whatif, anonymous),
        "WhatIf · auth off": (through(off, "WhatIf", servicer.WhatIf), whatif, anonymous),
        "WhatIf · auth on": (through(on, "WhatIf", servicer.WhatIf), whatif, authed),
    }
    for fn, req, ctx in configs.values():  # warm up (and prove the calls are allowed)
        for _ in range(max(10, calls // 10)):
            fn(req, ctx)
    tune_gc()
    samples: dict[str, list[int]] = {name: [] for name in configs}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, (fn, req, ctx) in configs.items():
            out = samples[name]
            for _ in range(calls):
                t0 = clock()
                fn(req, ctx)
                out.append(clock() - t0)
        kept.clear()
    stats = {name: _stats(np.asarray(v, dtype=np.int64)) for name, v in samples.items()}
    added = {
        f"{kind} · {variant}": stats[f"{kind} · {variant}"]["median_us"]
        - stats[f"{kind} · direct"]["median_us"]
        for kind, variant in (
            ("no-op", "auth off"), ("no-op", "auth on"), ("no-op", "auth on, audited"),
            ("no-op", "auth on, cert"),
            ("WhatIf", "auth off"), ("WhatIf", "auth on"),
        )
    }  # fmt: skip
    return {
        "calls_per_config": calls * rounds,
        "principals": principals,
        "stats": stats,
        "added_median_us": added,
    }


def render(results: dict[str, Any]) -> str:
    lines = [
        f"riskgate bench-auth · access interceptor cost per call, in process; "
        f"{results['calls_per_config']} calls per row, {results['principals']} token principals",
        "",
        f"{'call':<28}{'median':>10}{'p99':>10}{'added (median)':>17}",
    ]
    for name, s in results["stats"].items():
        added = results["added_median_us"].get(name)
        extra = f"{added:>+14.2f} µs" if added is not None else ""
        lines.append(f"{name:<28}{s['median_us']:>7.2f} µs{s['p99_us']:>7.2f} µs{extra}")
    lines += ["", "target: the interceptor adds <= 2 µs per call"]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    results = run(args.calls, args.rounds, args.principals)
    return emit(results, render(results), args.json)
