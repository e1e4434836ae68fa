"""Set-up phase over gRPC: the market (a full UpdateMarket), then every account
(UpsertAccount, SetPositions), then the tight accounts' collateral cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from loadtest.workload import AccountPlan, WorkloadSpec, tight_upsert
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc

__all__ = ["SetupError", "run_setup"]

_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class SetupError(RuntimeError):
    """A set-up call failed; names the call and the gRPC status."""


async def _setup(
    address: str,
    market: pb.UpdateMarketRequest,
    plan: AccountPlan,
    spec: WorkloadSpec,
    concurrency: int,
    timeout_s: float,
) -> dict[str, Any]:
    t0 = time.monotonic()
    async with grpc.aio.insecure_channel(address, options=_OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30.0)
        stub = riskgate_pb2_grpc.RiskGateStub(channel)

        async def call(what: str, fn: Callable[..., Awaitable[Any]], req: Any) -> Any:
            try:
                return await fn(req, timeout=timeout_s)
            except grpc.aio.AioRpcError as exc:
                raise SetupError(
                    f"{address}: {what} failed: {exc.code().name}: {exc.details()}"
                ) from None

        m = await call("UpdateMarket (full snapshot)", stub.UpdateMarket, market)
        market_s = time.monotonic() - t0
        sem = asyncio.Semaphore(concurrency)
        tight = set(plan.tight)
        replay = bool(plan.tight_upserts)
        views: dict[int, pb.AccountView] = {}
        created = 0

        async def one(k: int) -> None:
            nonlocal created
            async with sem:
                up = await call(
                    f"UpsertAccount {plan.upserts[k].account_id}",
                    stub.UpsertAccount,
                    plan.upserts[k],
                )
                created += int(up.created)
                resp = await call(
                    f"SetPositions {plan.positions[k].account_id}",
                    stub.SetPositions,
                    plan.positions[k],
                )
                if k in tight and not replay:
                    views[k] = resp.account

        await asyncio.gather(*(one(k) for k in range(len(plan.upserts))))
        if not replay:  # the first target decides the tight collateral, later ones replay it
            plan.tight_upserts = [tight_upsert(spec, views[k]) for k in plan.tight]

        async def cut(req: pb.UpsertAccountRequest) -> None:
            async with sem:
                await call(f"UpsertAccount {req.account_id} (tight)", stub.UpsertAccount, req)

        await asyncio.gather(*(cut(r) for r in plan.tight_upserts))
    return {
        "market_version": int(m.market_version),
        "market_compute_ms": m.compute_ns / 1e6,
        "market_s": round(market_s, 3),
        "accounts": len(plan.upserts),
        "accounts_created": created,
        "legs_per_account": len(plan.positions[0].positions) if plan.positions else 0,
        "tight_accounts": len(plan.tight_upserts),
        "seconds": round(time.monotonic() - t0, 3),
    }


def run_setup(
    address: str,
    market: pb.UpdateMarketRequest,
    plan: AccountPlan,
    spec: WorkloadSpec,
    concurrency: int = 32,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Load the market and the accounts into the target; returns timings and counts.
    Raises :class:`SetupError` on the first failed call."""
    return asyncio.run(_setup(address, market, plan, spec, concurrency, timeout_s))
