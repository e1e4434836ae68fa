"""Failover under gRPC load: a 3-node NATS JetStream cluster and riskgate shard processes
(owner + standby per shard) on 127.0.0.1; client threads send CheckOrder through the
cluster client while the owner is killed (``kill -9``) again and again; after each kill
the killed process is started again (it becomes the standby).

Measured per failover: the time from the kill to the first decision any client gets
afterwards (necessarily from the new owner). At the end every decision a client saw is
checked on the final owner: each accepted order is among its account's working orders
(``lost`` counts those that are not), and a retry of each decision with its client order
id returns the original decision (``changed`` counts those that do not).

The processes take a snapshot every ``--snapshot-interval`` seconds (2 s: a restarted
process loads one and replays only the events after it; ``restores_from_snapshot`` counts
those starts).

``python -m loadtest.failover --failovers 20 [--threads 2] [--shards 1] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.cluster_procs import RiskgateProc
from riskgate.cluster.client import ClusterClient
from riskgate.cluster.sharding import shard_of

SYMBOL = "BTC-PERPETUAL"
# accepted orders keep their reservations for the whole run (they are checked at the end)
_ENV = {"RISKGATE_RESERVATION_TTL_S": "3600"}
QTY = 0.001
TRANSIENT_REASONS = ("14", "16")  # LATENCY_BUDGET_EXCEEDED, INTERNAL_ERROR


def decision_key(d: Any) -> tuple:
    """What a retry must give back (not compute_ns, not the duplicate flag)."""
    return (d.accepted, d.reason, d.initial_margin_after, d.equity_after, d.market_version)


def accounts_for(shards: int, per_shard: int) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {k: [] for k in range(shards)}
    i = 0
    while any(len(v) < per_shard for v in out.values()):
        a = f"fo-{i}"
        k = shard_of(a, shards)
        if len(out[k]) < per_shard:
            out[k].append(a)
        i += 1
    return out


@dataclass
class Load:
    """Client threads sending CheckOrder round-robin over ``accounts``."""

    urls: list[str]
    accounts: list[str]
    threads: int = 2
    pause_s: float = 0.0
    seen: list[tuple[str, str, str, tuple, float]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)  # when each of ``seen`` was sent
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for t in range(self.threads):
            w = threading.Thread(target=self._run, args=(t,), daemon=True)
            w.start()
            self._workers.append(w)
        return self

    def _run(self, t: int) -> None:
        client = ClusterClient(self.urls, timeout_s=2.0, failover_wait_s=30.0)
        i = 0
        try:
            while not self._stop.is_set():
                i += 1
                account = self.accounts[(i + t) % len(self.accounts)]
                coid, side = f"t{t}-{i}", "buy" if i % 2 else "sell"
                sent = time.monotonic()
                try:
                    d = client.check_order(account, coid, SYMBOL, side, QTY, None, "market")
                except Exception as exc:  # the failover wait ran out: report, go on
                    with self._lock:
                        self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    continue
                with self._lock:
                    self.seen.append((account, coid, side, decision_key(d), time.monotonic()))
                    self.sent.append(sent)
                if self.pause_s:
                    time.sleep(self.pause_s)
        finally:
            client.close()

    def first_after(self, t: float) -> float | None:
        """When the first decision sent after ``t`` was received (a reply received after
        ``t`` may have left the killed process just before it died)."""
        with self._lock:
            after = [s[4] for s, sent in zip(self.seen, self.sent, strict=True) if sent > t]
        return min(after) if after else None

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(60.0)


def verify(urls: list[str], seen: list[tuple[str, str, str, tuple, float]]) -> dict[str, int]:
    """Lost: accepted decisions whose order is not working on the owner; changed: retries
    that did not return the original decision."""
    client = ClusterClient(urls, timeout_s=5.0, failover_wait_s=30.0)
    try:
        working: dict[str, set[str]] = {}
        for account in {s[0] for s in seen}:
            view = client.get_account(account)
            working[account] = {o.client_order_id for o in view.working_orders}
        lost = sum(1 for a, c, _, key, _ in seen if key[0] and c not in working[a])
        changed: dict[str, int] = {}  # by the original decision's reason
        for a, c, side, key, _ in seen:
            d = client.check_order(a, c, SYMBOL, side, QTY, None, "market")
            if decision_key(d) != key:
                changed[str(key[1])] = changed.get(str(key[1]), 0) + 1
        # fail-closed rejects of a moment (latency budget, internal error) are not remembered:
        # a retry is decided afresh, by design
        transient = sum(changed.pop(r, 0) for r in TRANSIENT_REASONS)
        return {"acknowledged": len(seen), "accepted": sum(1 for s in seen if s[3][0]),
                "lost": lost, "changed_on_retry": sum(changed.values()),
                "changed_by_reason": changed, "transient_rejects_decided_again": transient}  # fmt: skip
    finally:
        client.close()


def setup_accounts(urls: list[str], accounts: list[str]) -> None:
    client = ClusterClient(urls, timeout_s=5.0, failover_wait_s=30.0)
    try:
        for a in accounts:
            client.upsert_account(a, collateral={"USD": 1e12})
    finally:
        client.close()


def run(
    failovers: int,
    threads: int,
    shards: int,
    lease_ttl_s: float,
    log_dir: str,
    snapshot_interval_s: float = 2.0,
) -> dict:
    from riskgate.cluster.local import NatsCluster

    env = dict(_ENV, RISKGATE_CLUSTER_SNAPSHOT_INTERVAL_S=str(snapshot_interval_s))
    with NatsCluster(f"{log_dir}/nats") as nats:
        urls = nats.urls
        procs = {
            k: [RiskgateProc(urls, k, shards, log_dir, f"s{k}-{j}", lease_ttl_s=lease_ttl_s,
                             extra=("--no-demo",), env=env) for j in range(2)]
            for k in range(shards)
        }  # fmt: skip
        for pair in procs.values():
            for p in pair:
                p.start()
        try:
            for pair in procs.values():
                for p in pair:
                    _wait_any(p)
            _load_market(urls)
            by_shard = accounts_for(shards, 8)
            accounts = [a for v in by_shard.values() for a in v]
            setup_accounts(urls, accounts)
            load = Load(urls, accounts, threads).start()
            times: list[float] = []
            takeovers: list[float] = []  # lease taken -> serving, from the new owner's log
            time.sleep(2.0)
            for n in range(failovers):
                shard = n % shards
                pair = procs[shard]
                owner = next(p for p in pair if p.role() == "owner")
                standby = next(p for p in pair if p is not owner)
                standby.wait_role("standby", 60.0)
                time.sleep(1.0)  # load on the owner
                t_kill = time.monotonic()
                owner.kill()
                first = None
                while first is None and time.monotonic() - t_kill < 60.0:
                    time.sleep(0.02)
                    first = load.first_after(t_kill)
                times.append((first - t_kill) if first else float("inf"))
                takeover = _last_takeover_s(standby)
                takeovers.append(takeover)
                print(f"failover {n + 1}: shard {shard} {owner.name} killed, first decision "
                      f"after {times[-1]:.3f} s (take-over {takeover:.3f} s of it; "
                      f"{len(load.seen)} decisions so far)", flush=True)  # fmt: skip
                owner.start()  # back as the standby
                _wait_any(owner)
            time.sleep(1.0)
            load.stop()
            result = verify(urls, load.seen)
        finally:
            for pair in procs.values():
                for p in pair:
                    p.stop()
    restores = [r for pair in procs.values() for p in pair for r in _restores(p)]
    result.update(
        restores=len(restores),
        restores_from_snapshot=sum(1 for r in restores if r["snapshot_seq"] > 0),
        restore_events_replayed_max=max(
            (r["stream_last"] - r["snapshot_seq"] for r in restores), default=0
        ),
        snapshot_interval_s=snapshot_interval_s,
        failovers=failovers, threads=threads, shards=shards, lease_ttl_s=lease_ttl_s,
        failover_s_median=statistics.median(times), failover_s_max=max(times),
        failover_s=[round(t, 3) for t in times], client_errors=len(load.errors),
        takeover_s=[round(t, 3) for t in takeovers],
    )  # fmt: skip
    return result


def _last_takeover_s(p: RiskgateProc, timeout_s: float = 10.0) -> float:
    """The ``takeover_s`` of the last ``cluster_owner`` line of ``p``'s log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = [
            x for x in p.log.read_text(errors="replace").splitlines() if '"cluster_owner"' in x
        ]
        if lines:
            return float(json.loads(lines[-1]).get("takeover_s", float("nan")))
        time.sleep(0.1)
    return float("nan")


def _restores(p: RiskgateProc) -> list[dict]:
    """The ``cluster_restore`` lines of ``p``'s log: each standby start, the snapshot it
    loaded (``snapshot_seq``, 0: none) and the stream's last event then."""
    lines = p.log.read_text(errors="replace").splitlines() if p.log.exists() else []
    return [json.loads(x) for x in lines if '"cluster_restore"' in x]


def _wait_any(p: RiskgateProc, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not p.role():
        if time.monotonic() > deadline or not p.alive:
            raise RuntimeError(f"{p.name} has no role: {p.tail()}")
        time.sleep(0.1)


def _load_market(urls: list[str]) -> None:
    from riskgate.server.app import demo_market_request

    req = demo_market_request()
    client = ClusterClient(urls, timeout_s=5.0, failover_wait_s=30.0)
    try:
        client._routed(0, lambda c: c.stub.UpdateMarket(req, timeout=30.0))
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--failovers", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--lease-ttl", type=float, default=1.5)
    ap.add_argument(
        "--snapshot-interval",
        type=float,
        default=2.0,
        help="cluster_snapshot_interval_s of the processes (0: no snapshots)",
    )
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--keep-logs", metavar="DIR", help="keep the processes' logs in DIR")
    args = ap.parse_args(argv)
    if args.keep_logs:
        Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
        result = run(
            args.failovers,
            args.threads,
            args.shards,
            args.lease_ttl,
            args.keep_logs,
            args.snapshot_interval,
        )
    else:
        with tempfile.TemporaryDirectory() as d:
            result = run(
                args.failovers, args.threads, args.shards, args.lease_ttl, d, args.snapshot_interval
            )
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["lost"] == 0 and result["changed_on_retry"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
