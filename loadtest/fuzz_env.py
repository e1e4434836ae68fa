"""The server :mod:`loadtest.fuzz` runs against, its callers, and the check that calls which
must change nothing leave every account byte-identical.

The server runs in this process (see :mod:`loadtest.fuzz` for why) on ``127.0.0.1:0``,
with the demo market and accounts, an auth file of :data:`PRINCIPALS` (fresh random tokens
each run) and a journal in a temporary data directory.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskgate.config import load_settings
from riskgate.server import convert
from riskgate.server.app import RiskGateServer
from riskgate.server.auth import token_sha256

__all__ = [
    "ALL",
    "CHANGES_STATE",
    "MAY_CALL",
    "PRINCIPALS",
    "Caller",
    "StateTracker",
    "Violation",
    "callers",
    "fuzz_server",
]

ALL: Any = "*all accounts*"  # a call about (or a change of) every account
MAX_BATCH = 500  # max_batch_orders of the fuzzed server: over-size batches stay cheap

# name -> (roles, account scope). Written out here, not read from the server.
PRINCIPALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "root": (("gateway", "account_admin", "market", "risk_officer", "viewer"), ("*",)),
    "gw-a": (("gateway",), ("demo-1", "demo-2", "fz-a-*")),
    "gw-b": (("gateway", "viewer"), ("demo-3", "fz-b-*")),
    "admin-a": (("account_admin",), ("demo-*", "fz-a-*")),
    "admin-b": (("account_admin",), ("fz-b-*",)),
    "feed": (("market",), ()),
    "ro-a": (("risk_officer",), ("demo-*", "fz-a-*")),
    "ro-all": (("risk_officer",), ("*",)),
    "viewer": (("viewer",), ("demo-*", "fz-*")),
    "desk": (("gateway", "account_admin", "viewer"), ("fz-a-1", "demo-4")),
}
# which role may call which RPC (the API's access rules)
MAY_CALL: dict[str, frozenset[str]] = {
    "CheckOrder": frozenset({"gateway"}),
    "CheckOrders": frozenset({"gateway"}),
    "WhatIf": frozenset({"gateway"}),
    "MaxQuantity": frozenset({"gateway"}),
    "ReportOrderEvent": frozenset({"gateway"}),
    "UpsertAccount": frozenset({"account_admin"}),
    "SetPositions": frozenset({"account_admin"}),
    "SetTradingState": frozenset({"risk_officer"}),
    "UpdateMarket": frozenset({"market"}),
    "GetAccount": frozenset({"gateway", "viewer"}),
    "ListInstruments": frozenset({"gateway", "viewer", "market", "account_admin", "risk_officer"}),
    "StreamMarginStatus": frozenset({"gateway", "viewer"}),
    # pre-trade controls: account groups
    "UpsertGroup": frozenset({"risk_officer"}),
    "SetAccountGroup": frozenset({"risk_officer"}),
    "GetGroup": frozenset({"risk_officer", "viewer"}),
}
CHANGES_STATE = frozenset(
    {"CheckOrder", "CheckOrders", "ReportOrderEvent", "UpsertAccount", "SetPositions",
     "SetTradingState", "UpdateMarket", "UpsertGroup", "SetAccountGroup"}
)  # fmt: skip
# the accounts the fuzzer names: the demo ones, ones it may create, and odd ids
ACCOUNTS = [f"demo-{k}" for k in range(1, 5)] + [
    *(f"fz-a-{k}" for k in range(6)), *(f"fz-b-{k}" for k in range(4)), "zz-0", "zz-1",
]  # fmt: skip
ODD_ACCOUNTS = [
    "", " ", "unknown", "demo-1 ", "DEMO-1", "demo-*", "*", "fz-a-", "é" * 32, "\x00",
    "x" * 128, "x" * 129, "y" * 100_000,
]  # fmt: skip


@dataclass(frozen=True)
class Caller:
    """Who a call claims to be: a principal's token, or credentials that must fail."""

    name: str
    metadata: tuple[tuple[str, str], ...]
    roles: frozenset[str] = frozenset()  # empty: not authenticated
    in_scope: tuple[str, ...] = ()  # of ACCOUNTS and ODD_ACCOUNTS

    def may(self, rpc: str) -> bool:
        return not self.roles.isdisjoint(MAY_CALL[rpc])


def callers(tokens: dict[str, str]) -> tuple[list[Caller], list[Caller]]:
    """(the principals, the callers that are not authenticated)."""
    auth = "authorization"
    known = [
        Caller(name, ((auth, f"Bearer {tokens[name]}"),), frozenset(roles), _covered(scope))
        for name, (roles, scope) in PRINCIPALS.items()
    ]
    unknown = [
        Caller("no-credentials", ()),
        Caller("unknown-token", ((auth, f"Bearer unknown-{secrets.token_hex(8)}"),)),
        Caller("wrong-scheme", ((auth, f"Basic {tokens['root']}"),)),
        Caller("empty-token", ((auth, "Bearer "),)),
    ]
    return known, unknown


def _covered(scope: tuple[str, ...]) -> tuple[str, ...]:
    """The accounts the fuzzer names that ``scope`` (ids, prefixes ending in *) covers."""
    ids = {s for s in scope if not s.endswith("*")}
    prefixes = tuple(s[:-1] for s in scope if s.endswith("*"))
    return tuple(a for a in ACCOUNTS + ODD_ACCOUNTS if a in ids or a.startswith(prefixes))


def _auth_file(path: Path, tokens: dict[str, str]) -> None:
    lines = []
    for name, (roles, accounts) in PRINCIPALS.items():
        lines += [
            "[[principal]]",
            f'name = "{name}"',
            f'token_sha256 = "{token_sha256(tokens[name])}"',
            "roles = [" + ", ".join(f'"{r}"' for r in roles) + "]",
            "accounts = [" + ", ".join(f'"{a}"' for a in accounts) + "]",
            "",
        ]
    path.write_text("\n".join(lines))


@contextmanager
def fuzz_server(workdir: Path) -> Iterator[tuple[RiskGateServer, dict[str, str]]]:
    """A started server (and the principals' tokens), stopped when the block ends.

    Reservations of unacknowledged orders expire after ten days, not 30 s: an expiry is a
    change of state no call makes, and would look like one to :class:`StateTracker`."""
    tokens = {name: f"fz-{name}-{secrets.token_hex(16)}" for name in PRINCIPALS}
    auth = workdir / "auth.toml"
    _auth_file(auth, tokens)
    settings = load_settings(
        env={},
        listen_address="127.0.0.1:0",
        auth_file=str(auth),
        demo=True,
        demo_accounts=4,
        data_dir=str(workdir / "data"),
        journal_fsync="none",
        reservation_ttl_s=10 * 86_400.0,
        max_batch_orders=MAX_BATCH,
        default_max_open_orders=256,
        log_format="json",
        log_level="error",
        shutdown_grace_s=1.0,
    )
    server = RiskGateServer(settings)
    server.start()
    try:
        yield server, tokens
    finally:
        server.stop(grace=0)


@dataclass
class Violation:
    """An account whose view changed where nothing may have changed it."""

    account: str
    kind: str  # "refused": across refused calls only; "other": see StateTracker
    calls: list[dict[str, Any]]  # the calls of the window (at most 10 listed)
    window: tuple[int, int]  # numbers of the first and last call that could have done it


@dataclass
class StateTracker:
    """Which calls changed which account, exactly, at a bounded cost.

    An account's view (``GetAccount``'s reply, serialised deterministically; computed by
    the same engine call and conversion, without a round trip per account) may change only
    across an accepted call that names the account, or an accepted call about every account
    (a market update, the kill switch). So the tracker looks at an account's view before
    and after each call that might make such a change (a state-changing RPC from a caller
    with its role: the accounts it names, or every account), and at every account every
    ``full_every`` calls. Any difference not explained by the one accepted call in between
    is a violation, with the window of calls since the previous look: for a refused call
    looked at around, exactly that call.
    """

    server: RiskGateServer
    full_every: int = 100
    last: dict[str, bytes | None] = field(default_factory=dict)
    seen_at: dict[str, int] = field(default_factory=dict)  # call number of the last look
    system_at: dict[str, int] = field(default_factory=dict)  # system events at that look
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=512))
    violations: list[Violation] = field(default_factory=list)
    looks: int = 0
    view_errors: int = 0

    def view(self, account: str) -> bytes | None:
        engine = self.server.engine
        if account not in engine.accounts:
            return None
        self.looks += 1
        try:
            v = convert.account_view_to_proto(engine.account_view(account))
            # a velocity window's usage moves with time alone (orders leave the window):
            # not a change of state
            keep = [u for u in v.controls.usage if "/" not in u.unit]
            del v.controls.usage[:]
            v.controls.usage.extend(keep)
            return v.SerializeToString(deterministic=True)
        except Exception as exc:  # the same failure GetAccount would report as INTERNAL
            self.view_errors += 1
            return f"view failed: {type(exc).__name__}: {exc}".encode()

    def accounts(self) -> set[str]:
        return set(self.server.engine.accounts) | {a for a, v in self.last.items() if v}

    def look(self, at: int, accounts: Iterable[str] | Any, changed: Any = ()) -> None:
        """Look at ``accounts`` (or ALL) after call ``at``; those in ``changed`` (or ALL)
        may differ because call ``at`` was accepted and named them."""
        ids = self.accounts() if accounts is ALL else set(accounts)
        # what the service did by itself (a loss limit tripping a whole group, the trading
        # day starting) may change any account: counted by the engine
        system = self.server.engine.counters.get("system_events", 0)
        for account in ids:
            if self.seen_at.get(account) == at and account in self.last:
                continue  # looked at after this very call already
            now = self.view(account)
            before = self.last.get(account)
            by_system = self.system_at.get(account, system) != system
            self.system_at[account] = system
            if now != before and not (changed is ALL or account in changed or by_system):
                self._violation(account, self.seen_at.get(account, -1) + 1, at)
            self.last[account], self.seen_at[account] = now, at

    def _violation(self, account: str, first: int, last: int) -> None:
        calls = [c for c in self.recent if first <= c["n"] <= last]
        refused = bool(calls) and all(c["refused"] for c in calls)
        self.violations.append(
            Violation(account[:64], "refused" if refused else "other", calls[-10:], (first, last))
        )

    def record(self, call: dict[str, Any]) -> None:
        self.recent.append(call)
