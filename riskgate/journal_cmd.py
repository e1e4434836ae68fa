"""``riskgate journal inspect|verify DIR``: read a data directory's journal and snapshots.

Both read without taking the journal's lock, so they work beside a running server (which
may be appending: its last, incomplete record is not shown). ``verify`` checks every
record's CRCs, every snapshot, and replays: newest valid snapshot + the events after it,
and, when the journal still holds every event since the first, all of them from nothing;
both must reach the same state hash.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from riskgate.config import MODEL_NAMES

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(sub: Any) -> None:
    journal = sub.add_parser(
        "journal",
        help="inspect or verify a data directory's event journal",
        description="Read the event journal and snapshots of a data directory "
        "(`riskgate serve --data-dir DIR`), also while the server runs.",
    )
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    inspect = jsub.add_parser(
        "inspect", help="events as JSON lines", description="Print events as JSON lines."
    )
    inspect.add_argument("dir", help="the data directory")
    inspect.add_argument("--account", help="only events of this account (and all-account ones)")
    inspect.add_argument("--from", dest="from_seq", type=int, default=1, metavar="SEQ")
    inspect.add_argument("--to", dest="to_seq", type=int, default=None, metavar="SEQ")
    inspect.add_argument(
        "--type",
        dest="types",
        action="append",
        metavar="TYPE",
        help="only events of this type, e.g. order_accepted (repeatable)",
    )
    verify = jsub.add_parser(
        "verify",
        help="check CRCs, snapshots and replay; print a summary",
        description="Check every record's CRCs and every snapshot, replay the journal and "
        "print the state hash and summary counts. Exit 1 if anything is wrong.",
    )
    verify.add_argument("dir", help="the data directory")
    verify.add_argument("--model", choices=MODEL_NAMES, help="default: the one the snapshot names")
    verify.add_argument("--params", metavar="TOML", help="model parameters the server used")
    verify.add_argument(
        "--stress", metavar="FILE", help="stress scenarios the server used (its stress_file)"
    )
    verify.add_argument("--rules-params", metavar="TOML", help="rules parameters the server used")
    verify.add_argument("--json", action="store_true", help="the summary as JSON")
    journal.set_defaults(func=main)


def _journal_dir(data_dir: str) -> Path:
    from riskgate.engine.journal.store import JOURNAL_DIR

    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{data_dir}: no such directory")
    j = d / JOURNAL_DIR
    if not j.is_dir():
        raise FileNotFoundError(f"{data_dir}: not a riskgate data directory (no {JOURNAL_DIR}/)")
    return j


def main(args: argparse.Namespace) -> int:
    from riskgate.engine.journal.codec import CodecError
    from riskgate.engine.journal.file import JournalError
    from riskgate.engine.journal.recovery import RecoveryError

    try:
        if args.journal_command == "inspect":
            return _inspect(args)
        return _verify(args)
    except FileNotFoundError as exc:
        print(f"riskgate journal: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (JournalError, CodecError, RecoveryError) as exc:
        print(f"riskgate journal: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # e.g. piped into head
        return EXIT_OK


def _event_json(msg: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    from riskgate.engine.journal.codec import ns_to_time

    kind = msg.WhichOneof("body")
    body = getattr(msg, kind)
    account = _account_of(kind, body)
    out: dict[str, Any] = {
        "seq": msg.seq,
        "time": ns_to_time(msg.time_ns).isoformat(),
        "type": kind,
        "account": account,
        "principal": msg.principal,
    }
    out.update(json_format.MessageToDict(body, preserving_proto_field_name=True))
    return out


def _account_of(kind: str, body: Any) -> str:
    if kind in ("order_accepted", "decision_remembered"):
        return body.order.account_id
    if kind == "market_applied":
        return ""
    if kind == "audited":
        return body.accounts[0] if len(body.accounts) == 1 else ",".join(body.accounts)
    if kind == "trading_state_set" and body.all_accounts:
        return "*"
    # pre-trade controls: a group's change or trip, and the day's start, touch many accounts
    if kind in ("group_upserted", "trading_day_started"):
        return "*"
    if kind == "loss_limit_tripped":
        return "*" if body.group else body.scope_id
    return body.account_id


def _inspect(args: argparse.Namespace) -> int:
    from riskgate.engine.journal.codec import CodecError
    from riskgate.engine.journal.file import read_journal
    from riskgate.v1 import events_pb2 as epb

    types = set(args.types or ())
    out = sys.stdout
    for seq, payload in read_journal(_journal_dir(args.dir), args.from_seq, args.to_seq):
        msg = epb.Event()
        try:
            msg.ParseFromString(payload)
        except Exception as exc:
            raise CodecError(f"journal record {seq}: undecodable: {exc}") from None
        kind = msg.WhichOneof("body")
        if types and kind not in types:
            continue
        if args.account is not None:
            account = _account_of(kind, getattr(msg, kind))
            if account not in (args.account, "*"):
                continue
        out.write(json.dumps(_event_json(msg)) + "\n")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from riskgate.engine.book import Book
    from riskgate.engine.journal import codec
    from riskgate.engine.journal.file import read_journal, scan_journal
    from riskgate.engine.journal.recovery import RecoveryError, replay
    from riskgate.engine.journal.snapshots import latest_snapshot, list_snapshots
    from riskgate.engine.journal.store import SNAPSHOT_DIR
    from riskgate.engine.types import EngineConfig
    from riskgate.models import load_model
    from riskgate.models.rules import load_rules_params
    from riskgate.v1 import events_pb2 as epb

    jdir = _journal_dir(args.dir)
    sdir = Path(args.dir) / SNAPSHOT_DIR
    scan = scan_journal(jdir)
    snaps = list_snapshots(sdir) if sdir.is_dir() else []
    newest = latest_snapshot(sdir) if sdir.is_dir() else None
    model_name = args.model
    if model_name is None and newest is not None:
        head = epb.BookSnapshot()
        head.ParseFromString(newest[1])
        # a model with stress scenarios is recorded as <name>+stress:<digest>
        model_name = head.model.partition("+")[0] or None
        if "+stress:" in head.model and args.stress is None:
            raise RecoveryError(
                f"the snapshot was made with model {head.model!r}, with stress scenarios: "
                "give the server's stress file with --stress FILE"
            )
    model = load_model(model_name or "deribit", args.params, args.stress)
    rules = load_rules_params(args.rules_params)

    def book() -> Book:
        from collections import deque

        return Book(model, rules, EngineConfig(), status_changes=deque())

    def events(after: int):
        return (codec.decode_event_checked(s, p) for s, p in read_journal(jdir, after + 1))

    counts: Counter[str] = Counter()
    for _, payload in read_journal(jdir):
        msg = epb.Event()
        msg.ParseFromString(payload)
        counts[msg.WhichOneof("body") or "?"] += 1

    results: dict[str, Any] = {}
    problems: list[str] = [f"{s.path.name}: {s.error}" for s in snaps if not s.valid]
    snap_seq = 0
    if newest is not None:
        b = book()
        snap_seq = codec.decode_snapshot(newest[1], b)  # checks the snapshot's own hash
        if scan.first_seq and scan.first_seq > snap_seq + 1:
            raise RecoveryError(
                f"journal starts at event {scan.first_seq}; the snapshot covers up to {snap_seq}"
            )
        r = replay(b, events(snap_seq), after_seq=snap_seq)
        results["snapshot_and_tail"] = (r.seq, codec.state_hash(b), b)
    if scan.first_seq in (0, 1):
        b = book()
        r = replay(b, events(0))
        results["full_replay"] = (r.seq, codec.state_hash(b), b)
    hashes = {name: (seq, h) for name, (seq, h, _) in results.items()}
    if len({h for _, h in hashes.values()}) > 1:
        problems.append(f"state hashes differ: {hashes}")
    final = next(iter(results.values()), None)
    summary: dict[str, Any] = {
        "journal": {
            "segments": len(scan.segments),
            "records": scan.n_records,
            "first_seq": scan.first_seq,
            "last_seq": scan.last_seq,
            "bytes": sum(s.bytes for s in scan.segments),
            "torn_tail_bytes": scan.torn_tail_bytes,
        },
        "events": dict(sorted(counts.items())),
        "snapshots": [
            {"seq": s.seq, "file": s.path.name, "valid": s.valid, "error": s.error} for s in snaps
        ],
        "replays": {n: {"last_seq": seq, "state_hash": h} for n, (seq, h) in hashes.items()},
        "model": model.identity,
        "problems": problems,
    }
    if final is not None:
        b = final[2]
        summary["state"] = {
            "accounts": len(b.accounts),
            "working_orders": sum(
                1 for a in b.accounts.values() for o in a.orders.values() if o.status.is_working
            ),
            "positions": sum(len(a.positions) for a in b.accounts.values()),
            "market_version": b.market.version if b.market else 0,
            "halt_all": b.halt_all[0],
        }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return EXIT_FAILED if problems else EXIT_OK


def _print_summary(s: dict[str, Any]) -> None:
    j = s["journal"]
    print(
        f"journal: {j['records']:,} events {j['first_seq']}..{j['last_seq']} in "
        f"{j['segments']} segment(s), {j['bytes']:,} bytes"
        + (
            f"; torn tail {j['torn_tail_bytes']} bytes (cut at next start)"
            if j["torn_tail_bytes"]
            else ""
        )
    )
    print("events:  " + ", ".join(f"{k} {v:,}" for k, v in s["events"].items()))
    for snap in s["snapshots"]:
        print(
            f"snapshot {snap['file']}: "
            + ("valid" if snap["valid"] else f"INVALID ({snap['error']})")
        )
    for name, r in s["replays"].items():
        print(f"{name.replace('_', ' ')}: to event {r['last_seq']}, state hash {r['state_hash']}")
    if "state" in s:
        st = s["state"]
        print(
            f"state:   {st['accounts']} accounts, {st['working_orders']} working orders, "
            f"{st['positions']} positions, market v{st['market_version']}"
            + (", kill switch on" if st["halt_all"] else "")
        )
    for p in s["problems"]:
        print(f"PROBLEM: {p}")
    print("ok" if not s["problems"] else "FAILED")
