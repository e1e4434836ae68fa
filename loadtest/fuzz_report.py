"""The report of :mod:`loadtest.fuzz`: calls by RPC, caller and status code, decisions, and
every kind of failure with its first examples."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import text_format

from riskgate.v1 import riskgate_pb2 as pb

__all__ = ["FAILURES", "Report"]

# every kind of failure; the run passes only if each count is zero
FAILURES = (
    "crashes", "hangs", "internal_unknown", "refused_state_changes", "other_state_changes",
    "access_errors", "long_messages", "unavailable", "bad_replies", "view_errors",
)  # fmt: skip
EXAMPLES = 40


def describe(payload: Any) -> str:
    """A short description of a request: its text form, or the start of its bytes."""
    if isinstance(payload, bytes):
        return f"raw {len(payload)} bytes: {payload[:48].hex()}"
    text = text_format.MessageToString(payload, as_one_line=True)
    return text if len(text) <= 300 else f"{text[:300]}… ({len(text)} characters)"


@dataclass
class Report:
    seed: int = 0
    requests: int = 0
    seconds: float = 0.0
    stopped_by: str = "requests"
    crashes: int = 0
    by_rpc: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    raw_by_rpc: Counter[str] = field(default_factory=Counter)
    by_code: Counter[str] = field(default_factory=Counter)
    by_caller: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    decisions: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def count(self, rpc: str, caller: str, raw: bool, code: str) -> None:
        self.by_rpc[rpc][code] += 1
        self.by_code[code] += 1
        self.by_caller[caller][code] += 1
        if raw:
            self.raw_by_rpc[rpc] += 1

    def decision(self, d: pb.Decision) -> None:
        self.decisions["ACCEPTED" if d.accepted else pb.RejectReason.Name(d.reason)] += 1

    def fail(self, kind: str, call: dict[str, Any], detail: str) -> None:
        self.failures[kind] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(
                {
                    "kind": kind, "call": call["n"], "rpc": call["rpc"],
                    "caller": call["caller"], "code": call.get("code"), "detail": detail[:300],
                    "request": describe(call["payload"]),
                }
            )  # fmt: skip

    def finish(self, requests: int, seconds: float, tracker: Any, server: Any) -> None:
        self.requests, self.seconds = requests, seconds
        for v in tracker.violations:
            kind = "refused_state_changes" if v.kind == "refused" else "other_state_changes"
            self.failures[kind] += 1
            if len(self.examples) < EXAMPLES:
                self.examples.append(
                    {
                        "kind": kind, "account": v.account, "calls": list(v.window),
                        "requests": [
                            f"#{c['n']} {c['rpc']} by {c['caller']} -> {c.get('code')}: "
                            f"{describe(c['payload'])}"
                            for c in v.calls
                        ],
                    }
                )  # fmt: skip
        self.failures["view_errors"] += tracker.view_errors
        self.failures["crashes"] = self.crashes
        market = server.engine.market
        self.state = {
            "accounts": len(server.engine.accounts),
            "views_compared": tracker.looks,
            "market_version": market.version if market else None,
        }

    @property
    def ok(self) -> bool:
        return all(self.failures[k] == 0 for k in FAILURES)

    def progress(self, n: int, elapsed: float) -> str:
        bad = sum(self.failures[k] for k in FAILURES)
        return f"fuzz: {n:,} calls in {elapsed:.0f} s ({n / elapsed:.0f}/s), {bad} failures"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seed": self.seed,
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "stopped_by": self.stopped_by,
            "failures": {k: self.failures[k] for k in FAILURES},
            "by_rpc": {rpc: dict(c) for rpc, c in sorted(self.by_rpc.items())},
            "raw_by_rpc": dict(sorted(self.raw_by_rpc.items())),
            "by_code": dict(self.by_code.most_common()),
            "by_caller": {who: dict(c) for who, c in sorted(self.by_caller.items())},
            "decisions": dict(self.decisions.most_common()),
            "state": self.state,
            "examples": self.examples,
        }

    def text(self) -> str:
        lines = [
            f"riskgate fuzz: {self.requests:,} calls in {self.seconds:.0f} s, seed {self.seed}"
            f" (stopped by {self.stopped_by})",
            "",
            f"{'rpc':<20}{'calls':>8}{'raw':>7}  status codes",
        ]
        for rpc, codes in sorted(self.by_rpc.items()):
            top = ", ".join(f"{c} {k}" for c, k in codes.most_common())
            lines.append(f"{rpc:<20}{sum(codes.values()):>8}{self.raw_by_rpc[rpc]:>7}  {top}")
        lines += ["", "by status: " + ", ".join(f"{c} {k}" for c, k in self.by_code.most_common())]
        lines.append(
            "decisions: " + ", ".join(f"{r} {k}" for r, k in self.decisions.most_common(8))
        )
        lines.append(
            f"state: {self.state.get('views_compared', 0):,} account views compared, "
            f"{self.state.get('accounts')} accounts, market version "
            f"{self.state.get('market_version')}"
        )
        lines += ["", "failures: " + ", ".join(f"{k} {self.failures[k]}" for k in FAILURES)]
        for ex in self.examples[:10]:
            lines.append(f"  {ex}")
        lines.append("PASS" if self.ok else "FAIL")
        return "\n".join(lines)
