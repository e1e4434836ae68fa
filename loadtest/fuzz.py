"""``python -m loadtest.fuzz``: random and hostile requests against every RPC of a live
riskgate, asserting that none crashes the server, hangs, answers INTERNAL or UNKNOWN (or
an order decision INTERNAL_ERROR), or changes an account it must leave alone.

What is sent (:mod:`loadtest.fuzz_gen`): for a random RPC of ``riskgate.v1.RiskGate``, a
message generated from the request's descriptor (edge values, and plausible ones naming
accounts, orders and symbols that exist), or, one call in six, raw bytes through a generic
channel call (random, crafted or a mutated serialised request). Each call claims to be a
principal of the auth file (usually one whose role allows the RPC, some whose role does
not), or carries no credentials, an unknown token, a wrong scheme or an empty token.

What is checked, per call:

- **no hang**: every call is answered within ``--deadline``; a DEADLINE_EXCEEDED is a hang.
  A margin-status subscription without ``include_current`` rightly sends nothing until a
  status changes, so it is opened with a short deadline and its end checked when it comes:
  there DEADLINE_EXCEEDED is the expected end; any other status is judged as usual;
- **no INTERNAL or UNKNOWN** status, and no order decision with INTERNAL_ERROR;
- **access**: an unauthenticated caller gets UNAUTHENTICATED, a caller without the RPC's
  role PERMISSION_DENIED, nothing else (so never OK); error messages and decision details
  stay short (at most 600 characters, whatever the size of the bad value);
- **refused calls change nothing**: a refused call (a non-OK status, or an order path call
  whose decisions are all rejects) leaves every account byte-identical, and so do the read
  -only RPCs and duplicates. :class:`~loadtest.fuzz_env.StateTracker` says how this is
  checked exactly without a full snapshot around every call;
- **no crash**: the health service says SERVING every 1,000 calls and at the end.

The server runs in this process (:func:`loadtest.fuzz_env.fuzz_server`) rather than as a
subprocess: the state check reads every account's view directly from the engine, with the
very conversion GetAccount replies with, instead of tens of extra RPCs per call, and a
report is written even when the server stops serving. A crash that takes the whole
process down (a fault in native code) ends the run with a non-zero status all the same.

Exit status 0 only if every count of failures is zero. ``--json FILE`` writes the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.fuzz_env import (
    ACCOUNTS,
    ALL,
    CHANGES_STATE,
    MAX_BATCH,
    MAY_CALL,
    ODD_ACCOUNTS,
    Caller,
    StateTracker,
    callers,
    fuzz_server,
)
from loadtest.fuzz_gen import Generator, Pools
from loadtest.fuzz_report import Report
from riskgate.server.app import RiskGateServer
from riskgate.v1 import riskgate_pb2 as pb

__all__ = ["main", "run"]

SERVICE = pb.DESCRIPTOR.services_by_name["RiskGate"]
RPCS = list(SERVICE.methods_by_name)
assert set(RPCS) == set(MAY_CALL), "every RPC needs its access rule in fuzz_env.MAY_CALL"
IN = {m.name: GetMessageClass(m.input_type) for m in SERVICE.methods}
OUT = {m.name: GetMessageClass(m.output_type) for m in SERVICE.methods}
STREAMING = {m.name for m in SERVICE.methods if m.server_streaming}
ORDER_PATH = {"CheckOrder", "CheckOrders", "WhatIf"}
QUIET_DEADLINE_S = 0.5  # of a subscription that rightly sends nothing
LONGEST_MESSAGE = 600
HEALTH_EVERY = 1000
C = grpc.StatusCode
_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", -1)]


def named_accounts(rpc: str, r: Any) -> Any:
    """The accounts a request names (ALL for a call about every account), as the access
    rules read them; () for a request that did not decode."""
    if r is None:
        return ()
    if rpc in ("CheckOrder", "WhatIf"):
        return (r.order.account_id,)
    if rpc == "CheckOrders":
        return tuple(dict.fromkeys(o.account_id for o in r.orders))
    if rpc in ("UpdateMarket", "UpsertGroup", "GetGroup") or (
        rpc == "SetTradingState" and r.all_accounts
    ):
        return ALL  # a group's limits bind every account in it
    if rpc == "StreamMarginStatus":
        return tuple(r.account_ids)
    if rpc == "ListInstruments":
        return ()  # market data: about no account
    return (r.account_id,)


def _pools(server: RiskGateServer, rng: random.Random) -> Pools:
    engine = server.engine
    market = engine.market
    assert market is not None
    held = sorted({p.symbol for a in engine.accounts for p in engine.account_view(a).positions})
    symbols = sorted(set(held) | set(rng.sample(sorted(market.instruments), 40)))
    for coin in market.snapshot.index_usd:
        symbols += [f"{coin}-PERPETUAL", f"{coin}_USDC-PERPETUAL", f"{coin}_USDC"]
    symbols = sorted(s for s in set(symbols) if s in market.instruments)
    pools = Pools(
        accounts=ACCOUNTS, odd_accounts=ODD_ACCOUNTS, symbols=symbols,
        options=[s for s in symbols if s in market.snapshot.ivs],
        linear=[s for s in symbols if s not in market.snapshot.ivs],
        coins=[*market.snapshot.index_usd, "XYZ", "btc", "SOL"],
        currencies=["USD", "USDC", "BTC", "ETH", "usd", "USDT", "XYZ"],
    )  # fmt: skip
    refresh_market(pools, server)
    return pools


def refresh_market(pools: Pools, server: RiskGateServer) -> None:
    """The pools' market values from the engine's current market."""
    market = server.engine.market
    if market is None:
        return
    snap = market.snapshot
    pools.index = dict(snap.index_usd)
    pools.all_marks_usd = dict(snap.marks_usd)
    pools.ivs = dict(snap.ivs)
    pools.marks = {s: market.quotes[s].mark for s in pools.symbols if s in market.quotes}
    pools.valuation_s = int(market.valuation_time.timestamp())


class Fuzzer:
    def __init__(self, server: RiskGateServer, tokens: dict[str, str], seed: int, deadline: float):
        self.server, self.deadline = server, deadline
        self.rng = random.Random(seed)
        self.pools = _pools(server, self.rng)
        self.gen = Generator(self.rng, self.pools, MAX_BATCH)
        self.principals, self.strangers = callers(tokens)
        self.entitled = {rpc: [c for c in self.principals if c.may(rpc)] for rpc in RPCS}
        self.channel = grpc.insecure_channel(server.address, options=_OPTIONS)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.typed, self.raw = {}, {}
        for rpc in RPCS:
            path = f"/{SERVICE.full_name}/{rpc}"
            make = self.channel.unary_stream if rpc in STREAMING else self.channel.unary_unary
            self.typed[rpc] = make(path, IN[rpc].SerializeToString, OUT[rpc].FromString)
            self.raw[rpc] = make(path)
        self.tracker = StateTracker(server)
        self.report = Report()
        self.quiet: list[tuple[Any, dict[str, Any]]] = []  # open silent subscriptions

    def close(self) -> None:
        self.channel.close()

    def caller(self, rpc: str) -> Caller:
        r = self.rng.random()
        if r < 0.55:
            return self.rng.choice(self.entitled[rpc])
        return self.rng.choice(self.principals if r < 0.82 else self.strangers)

    def serving(self) -> bool:
        try:
            for service in ("", SERVICE.full_name):
                reply = self.health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=self.deadline
                )
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    return False
        except grpc.RpcError:
            return False
        return True

    # ---- one call -------------------------------------------------------------------------

    def one(self, n: int) -> None:
        rpc = self.rng.choice(RPCS)
        caller = self.caller(rpc)
        self.pools.scope = caller.in_scope
        raw = self.rng.random() < 1 / 6
        if raw:
            payload: Any = self.gen.raw(IN[rpc])
            try:
                request = IN[rpc].FromString(payload)
            except Exception:
                request = None
        else:
            payload = request = self.gen.message(IN[rpc])
        named = named_accounts(rpc, request)
        looked = caller.may(rpc) and rpc in CHANGES_STATE
        if looked:
            self.tracker.look(n - 1, named)
        call = {"n": n, "rpc": rpc, "caller": caller.name, "raw": raw, "payload": payload}
        code, reply, details = self.send(rpc, caller, payload, request, call)
        changed = self.judge(call, caller, request, code, reply, details)
        self.tracker.record(call)
        if looked:
            self.tracker.look(n, named, changed)
        if n % self.tracker.full_every == 0:
            self.tracker.look(n, ALL)

    def send(
        self, rpc: str, caller: Caller, payload: Any, request: Any, call: dict[str, Any]
    ) -> tuple[str, Any, str]:
        """(status code name, the reply or None, the status details)."""
        fn = (self.raw if call["raw"] else self.typed)[rpc]
        md = caller.metadata
        try:
            if rpc not in STREAMING:
                reply = fn(payload, timeout=self.deadline, metadata=md)
                if call["raw"]:
                    try:
                        reply = OUT[rpc].FromString(reply)
                    except Exception as exc:
                        self.report.fail("bad_replies", call, f"undecodable reply: {exc}")
                        reply = OUT[rpc]()
                return "OK", reply, ""
            if request is not None and not request.include_current and caller.may(rpc):
                stream = fn(payload, timeout=QUIET_DEADLINE_S, metadata=md)
                self.quiet.append((stream, call))
                return "PENDING", None, ""
            stream = fn(payload, timeout=self.deadline, metadata=md)
            try:
                first = next(stream, None)
            finally:
                stream.cancel()
            return "OK", first, ""
        except grpc.RpcError as exc:
            return exc.code().name, None, exc.details() or ""

    def judge(
        self,
        call: dict[str, Any],
        caller: Caller,
        request: Any,
        code: str,
        reply: Any,
        details: str,
    ) -> Any:
        """Count the call's outcome and failures; the accounts it may have changed."""
        rpc, rep = call["rpc"], self.report
        if code == "PENDING":  # judged when the subscription ends (see drain)
            call["refused"] = True
            return ()
        rep.count(rpc, caller.name, call["raw"], code)
        call["code"] = code
        if len(details) > LONGEST_MESSAGE:
            rep.fail("long_messages", call, f"{len(details)} characters: {details[:200]}")
        if code != "OK":
            call["refused"] = True
            if code in ("INTERNAL", "UNKNOWN"):
                rep.fail("internal_unknown", call, details)
            elif code == "DEADLINE_EXCEEDED":
                rep.fail("hangs", call, details)
            elif code == "UNAVAILABLE":
                rep.fail("unavailable", call, details)
            # the interceptor refuses undecodable bytes before it looks at roles
            expected = {"PERMISSION_DENIED"} if caller.roles else {"UNAUTHENTICATED"}
            if caller.roles and request is None and call["raw"]:
                expected.add("INVALID_ARGUMENT")
            if not caller.may(rpc) and code not in expected:
                rep.fail("access_errors", call, f"expected {expected}, got {code}: {details}")
            return ()
        if not caller.may(rpc):
            rep.fail("access_errors", call, f"{caller.name} was let through")
        changed, accepted = self.effects(rpc, request, reply, call)
        call["refused"] = not accepted
        return changed

    def effects(self, rpc: str, r: Any, reply: Any, call: dict[str, Any]) -> tuple[Any, bool]:
        """For an OK reply: (the accounts the call may have changed, whether it was
        accepted), after checking its decisions."""
        if rpc in ORDER_PATH:
            orders = [r.order] if rpc != "CheckOrders" else list(r.orders)
            decisions = [reply] if rpc != "CheckOrders" else list(reply.decisions)
            if len(decisions) != len(orders):
                self.report.fail("bad_replies", call, f"{len(decisions)} decisions")
            changed = set()
            for order, d in zip(orders, decisions, strict=False):
                self.report.decision(d)
                if d.reason == pb.REJECT_REASON_INTERNAL_ERROR:
                    self.report.fail("internal_unknown", call, f"INTERNAL_ERROR: {d.detail}")
                if len(d.detail) > LONGEST_MESSAGE:
                    self.report.fail("long_messages", call, f"detail of {len(d.detail)}")
                if d.accepted and not d.duplicate and rpc != "WhatIf":
                    changed.add(order.account_id)
                    self.pools.remember_order(order.account_id, order.client_order_id, order.symbol)
            return changed, any(d.accepted for d in decisions)
        if rpc == "UpdateMarket":
            refresh_market(self.pools, self.server)
            return ALL, True
        if rpc == "SetTradingState":
            return (ALL if r.all_accounts else {r.account_id}), True
        if rpc == "ReportOrderEvent":
            return (set() if reply.duplicate else {r.account_id}), True
        if rpc in ("UpsertAccount", "SetPositions"):
            return {r.account_id}, True
        if rpc == "UpsertGroup":
            return ALL, True
        if rpc == "SetAccountGroup":
            return {r.account_id}, True
        return set(), True  # queries and streams: read-only

    def drain(self, wait: bool = False) -> None:
        """Judge the silent subscriptions that have ended (all of them, with ``wait``)."""
        still = []
        for stream, call in self.quiet:
            if not stream.done():
                if not wait:
                    still.append((stream, call))
                    continue
                with contextlib.suppress(grpc.RpcError):
                    next(stream, None)
            code = stream.code().name
            caller = next(c for c in self.principals if c.name == call["caller"])
            if code == "DEADLINE_EXCEEDED":  # open until its deadline: the expected end
                code = "OK"
            self.judge(call, caller, None, code, None, stream.details() or "")
        self.quiet = still

    # ---- the run --------------------------------------------------------------------------

    def run(self, requests: int, seconds: float, progress: bool) -> Report:
        t0 = time.monotonic()
        self.tracker.look(-1, ALL, ALL)  # the starting point
        rep, n = self.report, 0
        while n < requests:
            if time.monotonic() - t0 > seconds:
                rep.stopped_by = "seconds"
                break
            n += 1
            self.one(n)
            if len(self.quiet) > 8:
                self.drain()
            if n % HEALTH_EVERY == 0 and not self.serving():
                rep.crashes, rep.stopped_by = 1, "crash"
                break
            if progress and n % 10_000 == 0:
                print(rep.progress(n, time.monotonic() - t0), file=sys.stderr, flush=True)
        self.drain(wait=True)
        self.tracker.look(n, ALL)
        if rep.stopped_by != "crash" and not self.serving():
            rep.crashes = 1
        rep.finish(n, time.monotonic() - t0, self.tracker, self.server)
        return rep


def run(
    requests: int = 100_000,
    seconds: float = 3600.0,
    seed: int = 1,
    deadline: float = 10.0,
    progress: bool = False,
) -> Report:
    """Start a server, fuzz it, stop it; the report."""
    with (
        tempfile.TemporaryDirectory(prefix="riskgate-fuzz-") as tmp,
        fuzz_server(Path(tmp)) as (server, tokens),
    ):
        fuzzer = Fuzzer(server, tokens, seed, deadline)
        try:
            report = fuzzer.run(requests, seconds, progress)
        finally:
            fuzzer.close()
    report.seed = seed
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadtest.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=100_000, help="calls to make (100,000)")
    ap.add_argument("--seconds", type=float, default=3600.0, help="stop after this long")
    ap.add_argument("--seed", type=int, default=1, help="random seed (1)")
    ap.add_argument("--deadline", type=float, default=10.0, help="per call, seconds (10)")
    ap.add_argument("--json", metavar="FILE", help="write the report as JSON")
    args = ap.parse_args(argv)
    report = run(args.requests, args.seconds, args.seed, args.deadline, progress=True)
    print(report.text())
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
