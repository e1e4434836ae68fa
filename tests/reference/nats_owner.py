"""A shard owner in its own process, for the failover tests (``kill -9`` needs a process):
takes the lease, journals to the shard's stream, then makes decisions and prints
``acked <seq>`` after each reply (each one acknowledged by JetStream) until ``--seconds``
have passed or it is killed; refused by the stream (another owner took over), it prints
``fenced <why>`` and exits with status 3.

``python -m tests.reference.nats_owner --shard K --owner ID URL [URL ...]``
"""

from __future__ import annotations

import argparse
import sys
import time

from riskgate.cluster.lease import Lease
from riskgate.engine.journal.nats_journal import ClusterJournalError, JetStreamJournal
from riskgate.engine.types import OrderRequest, Side
from tests.reference.engine_market import make_engine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("urls", nargs="+")
    ap.add_argument("--shard", type=int, required=True)
    ap.add_argument("--owner", required=True)
    ap.add_argument("--ttl", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    lease = Lease(args.urls, args.shard, args.owner, ttl_s=args.ttl)
    if not lease.acquire():
        sys.exit(f"lease held by {lease.owner()}")
    lease.keep()
    sink = JetStreamJournal(args.urls, args.shard, writer_id=args.owner)
    eng = make_engine(sink=sink)
    for a in ("A", "B"):
        eng.upsert_account(a, collateral={"USD": 1_000_000.0})
    mark = eng.market.quotes["BTC-PERPETUAL"].mark
    print(f"ready {eng.seq}", flush=True)
    end, i = time.monotonic() + args.seconds, 0
    while time.monotonic() < end:
        i += 1
        side = Side.BUY if i % 2 else Side.SELL
        try:
            eng.check_order(OrderRequest("AB"[i % 2], f"o{i}", "BTC-PERPETUAL", side, 0.1, mark))
        except ClusterJournalError as exc:  # fenced: step down, serve nothing more
            print(f"fenced {exc}", flush=True)
            sys.exit(3)
        print(f"acked {eng.seq}", flush=True)
    lease.release()
    sink.close()


if __name__ == "__main__":
    main()
