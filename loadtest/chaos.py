"""``python -m loadtest.chaos``: kill -9 riskgate under load, again and again, and check after
every restart that nothing it acknowledged is lost and nothing is accepted twice.

What it does:

1. starts ``riskgate serve --data-dir DIR --no-demo`` on a free 127.0.0.1 port, loads a
   market (UpdateMarket, the full demo snapshot) and eight accounts (UpsertAccount; some
   get positions with SetPositions);
2. drives open-loop traffic at ``--rate`` operations per second from four worker threads,
   each owning two accounts: CheckOrder and CheckOrders (unique client order ids),
   ReportOrderEvent on accepted orders (acknowledged, partial and full fills with fill ids,
   cancelled) and administration (UpsertAccount collateral changes, SetTradingState
   HALTED / ACTIVE);
3. records each operation whose reply arrived (acknowledged); one in flight at a kill is
   unknown;
4. ``kill -9``s the server at seeded random moments (most while traffic flows, some with
   the traffic paused, some while the restarted server is still recovering), restarts it
   on the same data dir and times process start -> health SERVING;
5. after each restart checks every account (GetAccount) against the client's model: working
   orders (ids, quantities, filled, status), positions, collateral and trading state as
   acknowledged, an unknown operation's effect either present or absent; then sends each
   unknown operation again (an order retried must be a duplicate of the decision made
   before the kill if, and only if, it is working; fills and cancels are idempotent);
   retries a sample of acknowledged orders, which must return ``duplicate`` and exactly the
   original decision, and leave every account exactly as it was; after a kill with the
   traffic paused, every account must be bit for bit what it was before the kill.

What is compared exactly, and why it can be: the model holds only what the client sent and
the replies it received. Quantities are multiples of 1/8 of a lot, so positions and filled
quantities are exact in any order of addition. Only futures and perpetuals are filled, at
exactly the mark the server reports for them: a fill moves collateral by its P&L against
the mark, which is then exactly 0.0, so collateral balances must be exactly what
UpsertAccount last set (options and spot orders are decided, acknowledged and cancelled,
never filled). Margin figures are not modelled; they are compared with the server's own
figures before the kill (paused kills) and before the retries.

Reservations must not expire during the run (``RISKGATE_RESERVATION_TTL_S=3600``); a
snapshot every 2 s and 1 MB journal segments make recoveries start from snapshots with
journal tails, across deleted segments.

Exit status: 0 if nothing was lost and there was no violation, 1 otherwise, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

from loadtest import chaos_report
from loadtest.chaos_model import (
    ACCOUNT_PLANS,
    AccountModel,
    Findings,
    Instrument,
    NewOrders,
    compare,
    decision_key,
    get_views,
    pick_instruments,
)
from loadtest.chaos_server import Servers, log_events
from loadtest.chaos_traffic import ORDER_TIMEOUT_S, Control, Worker, client_for
from loadtest.servers import ServerError
from loadtest.workload import WorkloadSpec, build_market, full_snapshot_request
from riskgate.client import RiskGateClient
from riskgate.v1 import riskgate_pb2 as pb

__all__ = ["build_parser", "main", "run"]

WORKERS = 4
PAUSED_KILLS, STARTUP_KILLS = 0.15, 0.10  # shares of the kills
RETRY_SAMPLE = 8  # random acknowledged orders retried per restart (+ the latest per worker)
FIRST_START_TIMEOUT_S = 180.0  # the first start may compile the numba kernels
RESTART_TIMEOUT_S = 120.0


# ---- set-up and checks ------------------------------------------------------------------


def setup(
    client: RiskGateClient, instruments: list[Instrument], market: Any
) -> tuple[list[AccountModel], list[Instrument]]:
    client.stub.UpdateMarket(full_snapshot_request(market.snapshot), timeout=120.0)
    fillable = [i for i in instruments if i.fillable]
    models, marks = [], {}
    for k, (mode, method, collateral, with_positions) in enumerate(ACCOUNT_PLANS):
        aid = f"chaos-{k}"
        client.upsert_account(aid, collateral, pool_mode=mode, margin_method=method)
        m = AccountModel(aid, dict(collateral))
        if with_positions:
            m.positions = {
                i.symbol: i.lot * (1 + (k + j) % 4) / 8 * (1 if (k + j) % 2 else -1)
                for j, i in enumerate(fillable)
            }
            view = client.set_positions(aid, m.positions).account
            marks.update({p.symbol: p.mark_price for p in view.positions})
        models.append(m)
    # fills are priced at the server's own mark: their P&L against it is exactly zero
    return models, [replace(i, price=marks[i.symbol]) if i.fillable else i for i in instruments]


class Checker:
    def __init__(self, models: list[AccountModel], workers: list[Worker], findings: Findings,
                 rng: random.Random) -> None:  # fmt: skip
        self.models = {m.account_id: m for m in models}
        self.workers, self.findings, self.rng = workers, findings, rng
        self.retried = 0

    def _record(self, restart: int, diffs: list[dict[str, Any]]) -> None:
        for d in diffs:
            (self.findings.add_lost if d.pop("lost") else self.findings.add_violation)(
                restart=restart, check="state", **d
            )

    def check(self, client: RiskGateClient, restart: int) -> dict[str, pb.AccountView | None]:
        ids = sorted(self.models)
        views = get_views(client, ids)
        unknown = {w.unknown.account_id: w.unknown for w in self.workers if w.unknown}
        for aid in ids:  # as recovered: acknowledged state, unknown operations either way
            op, m = unknown.get(aid), self.models[aid]
            if isinstance(op, NewOrders):
                diffs = compare(views[aid], m, {o.client_order_id: o for o in op.orders})
            else:
                diffs = compare(views[aid], m)
                if diffs and op is not None and not compare(views[aid], op.after(m)):
                    diffs = []
            self._record(restart, diffs)
        for w in self.workers:
            if w.unknown is not None:
                w.resolve(client, views[w.unknown.account_id])
        views = get_views(client, ids)
        for aid in ids:
            self._record(restart, compare(views[aid], self.models[aid]))
        self._retry_sample(client, restart)
        after = get_views(client, ids)
        for aid in ids:
            if after[aid] != views[aid]:
                self.findings.add_violation(
                    restart=restart, check="retries changed an account", account=aid,
                    fields=view_diff(views[aid], after[aid]),
                )  # fmt: skip
        return after

    def _retry_sample(self, client: RiskGateClient, restart: int) -> None:
        everything = [d for w in self.workers for d in w.decisions]
        sample = [d for w in self.workers for d in w.decisions[-3:]]
        sample += self.rng.sample(everything, min(RETRY_SAMPLE, len(everything)))
        for order, key in sample:
            d = client.stub.CheckOrder(pb.CheckOrderRequest(order=order), timeout=ORDER_TIMEOUT_S)
            self.retried += 1
            where = {"restart": restart, "account": order.account_id,
                     "order": order.client_order_id}  # fmt: skip
            if not d.duplicate:
                self.findings.add_lost(
                    check="retry of an acknowledged order", what="decided afresh",
                    accepted=d.accepted, **where,
                )  # fmt: skip
            elif decision_key(d) != key:
                original = pb.Decision.FromString(key)
                self.findings.add_violation(
                    check="retry of an acknowledged order", what="another decision",
                    fields=view_diff(original, d, skip=("duplicate",)), **where,
                )  # fmt: skip


def view_diff(a: Any, b: Any, skip: Sequence[str] = ()) -> list[str]:
    """Names of the top-level fields where two messages differ."""
    if a is None or b is None:
        return ["(account missing)"]
    names = [f.name for f in a.DESCRIPTOR.fields if f.name not in skip]
    return [n for n in names if getattr(a, n) != getattr(b, n)]


# ---- the run ----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    own_dir = args.data_dir is None
    work = Path(tempfile.mkdtemp(prefix="riskgate-chaos-"))
    data_dir = work / "data" if own_dir else Path(args.data_dir)
    log_dir = work / "logs"
    log_dir.mkdir()
    servers = Servers(data_dir, log_dir, args.fsync)
    control, findings = Control(), Findings()
    market = build_market(WorkloadSpec())
    restarts: list[dict[str, Any]] = []
    kills = {"traffic": 0, "paused": 0, "startup": 0, "startup_before_serving": 0}
    workers: list[Worker] = []
    t_run = time.monotonic()
    traffic_s = 0.0
    first_s: float | None = None
    checker: Checker | None = None
    final: dict[str, Any] | None = None
    error = None
    try:
        servers.start()
        first_s = servers.wait_serving(FIRST_START_TIMEOUT_S)
        with client_for(servers.current.address) as client:  # type: ignore[union-attr]
            models, instruments = setup(client, pick_instruments(market), market)
        workers = [
            Worker(w, control, models[w::WORKERS], instruments, args.seed, args.rate / WORKERS,
                   findings)
            for w in range(WORKERS)
        ]  # fmt: skip
        checker = Checker(models, workers, findings, rng)
        for w in workers:
            w.start()
        mean_s = args.seconds / args.kills
        while sum(kills[k] for k in ("traffic", "paused", "startup")) < args.kills:
            paused = rng.random() < PAUSED_KILLS
            control.resume(servers.current.address)  # type: ignore[union-attr]
            interval = rng.uniform(0.25, 1.75) * mean_s
            time.sleep(interval)
            traffic_s += interval
            before = None
            if paused:
                if not control.pause(60.0):
                    raise RuntimeError("workers did not pause within 60 s")
                with client_for(servers.current.address) as client:  # type: ignore[union-attr]
                    before = get_views(client, sorted(checker.models))
            control.halt()  # what is in flight at the kill is unknown, nothing starts after it
            servers.kill()
            kills["paused" if paused else "traffic"] += 1
            if not control.pause(60.0):
                raise RuntimeError("workers did not stop within 60 s of the kill")
            n = len(restarts) + 1
            record = _restart(servers, rng, kills, args.kills, restarts, findings)
            if record is None:
                break
            with client_for(servers.current.address) as client:  # type: ignore[union-attr]
                if before is not None:
                    for aid, view in get_views(client, sorted(before)).items():
                        if view != before[aid]:
                            findings.add_violation(
                                restart=n, check="paused kill: account differs after recovery",
                                account=aid, fields=view_diff(before[aid], view),
                            )  # fmt: skip
                checker.check(client, n)
            record["kill"] = "paused" if paused else "traffic"
            restarts.append(record)
            crashed = [w.crash for w in workers if w.crash]
            if crashed:
                raise RuntimeError(f"worker thread failed: {crashed[0]}")
            if not findings.ok:
                break
        control.stop()
        final = _final(servers, checker, findings) if findings.ok else None
    except (ServerError, RuntimeError, grpc.RpcError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        control.stop()
        servers.kill()
        for w in workers:
            w.join(timeout=15.0)
    report = chaos_report.build(
        args=args, findings=findings, restarts=restarts, kills=kills, workers=workers,
        first_start_s=first_s, traffic_s=traffic_s,
        run_s=time.monotonic() - t_run, data_dir=data_dir, final=final, error=error,
        retried=checker.retried if checker is not None else 0,
    )  # fmt: skip
    report["logs"] = str(log_dir)
    if report["passed"] and not args.keep:  # the logs (and the data dir unless given)
        shutil.rmtree(work, ignore_errors=True)
        report["logs"] = None
    return report


def _restart(
    servers: Servers, rng: random.Random, kills: dict[str, int], budget: int,
    restarts: list[dict[str, Any]], findings: Findings,
) -> dict[str, Any] | None:  # fmt: skip
    """Start the server again (perhaps killing it while it recovers, within the kill budget);
    the restart's record once it is SERVING, None if it failed to recover."""
    startup_kills = 0
    while True:
        srv = servers.start()
        total = kills["traffic"] + kills["paused"] + kills["startup"]
        if total < budget and rng.random() < STARTUP_KILLS:
            typical = (
                sorted(r["recovery_s"] for r in restarts)[len(restarts) // 2] if restarts else 2.0
            )
            time.sleep(rng.uniform(0.05, 0.9 * typical))
            serving = servers.kill()
            kills["startup"] += 1
            kills["startup_before_serving"] += not serving
            startup_kills += 1
            continue
        try:
            seconds = servers.wait_serving(RESTART_TIMEOUT_S)
        except ServerError as exc:
            findings.add_violation(restart=len(restarts) + 1, check="recovery failed",
                                   detail=str(exc))  # fmt: skip
            return None
        rec = next((e for e in log_events(srv.log_path) if e.get("event") == "recovered"), {})
        return {
            "recovery_s": seconds, "startup_kills": startup_kills,
            **{k: rec.get(k) for k in ("snapshot_seq", "events_replayed", "last_seq",
                                       "truncated_bytes")},
            "replay_s": rec.get("seconds"),
        }  # fmt: skip


def _final(servers: Servers, checker: Checker, findings: Findings) -> dict[str, Any]:
    """A graceful stop (shutdown snapshot), one more start, the same checks."""
    code = servers.stop()
    servers.start()
    seconds = servers.wait_serving(RESTART_TIMEOUT_S)
    with client_for(servers.current.address) as client:  # type: ignore[union-attr]
        checker.check(client, 0)
    stop_code = servers.stop()
    if (code, stop_code) != (0, 0):
        findings.add_violation(check="graceful stop", exit_codes=[code, stop_code])
    return {"graceful_exit_codes": [code, stop_code], "clean_restart_s": seconds}


# ---- command line -----------------------------------------------------------------------


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.chaos",
        description="Crash test: kill -9 riskgate under load, restart it on the same data "
        "dir, check that every acknowledged operation survived and none was applied twice.",
        epilog=__doc__.split("What it does:")[1].split("What is compared")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kills", type=_positive(int), default=50, help="kill -9s (default 50)")
    p.add_argument(
        "--seconds",
        type=_positive(float),
        default=100.0,
        help="seconds of traffic over the run, between the kills (default 100)",
    )
    p.add_argument(
        "--rate",
        type=_positive(float),
        default=300.0,
        help="operations per second, all workers together (default 300)",
    )
    p.add_argument(
        "--fsync",
        choices=["batch", "always", "none"],
        default="batch",
        help="journal fsync policy of the server (default batch)",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the server's data dir: must be empty or absent (default: a new "
        "temporary directory, removed after a run that passed)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the server logs (and the temporary data dir) "
        "after a run that passed too (they are always kept after a failed one)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    return p  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        d = Path(args.data_dir)
        if d.exists() and (not d.is_dir() or any(d.iterdir())):
            parser.error(f"--data-dir {d}: must be an empty directory or not exist yet")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up on SIGTERM
    report = run(args)
    print(chaos_report.render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
