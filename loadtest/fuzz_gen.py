"""Random requests for :mod:`loadtest.fuzz`: typed messages generated from the descriptors,
and raw bytes.

:meth:`Generator.message` fills any protobuf message from its descriptor: every field
type, optional presence, oneofs (none or one member set), maps and repeated fields (empty,
a few entries, or huge). Values are edge cases (empty and 100 kB strings, NaN, ±inf,
negative, subnormal and huge doubles, unknown enum numbers, out-of-range timestamps) or,
more often, plausible ones chosen by field name (:mod:`loadtest.fuzz_hints`): ids of accounts and orders
that exist, symbols the market prices, prices near the mark, index moves within the
market-data guards, so that many calls get past validation into the engine.
:meth:`Generator.raw` makes request bytes: random, crafted (overlong varints, lengths past
the end, invalid UTF-8, deep groups) or a mutated serialised message.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from loadtest.fuzz_hints import ALWAYS, HINTS, MESSAGE_HINTS, presence

__all__ = ["Generator", "Pools"]

F = FieldDescriptor
HUGE = 100_000  # characters of a huge string
NAN, INF = math.nan, math.inf
EDGE_DOUBLES = (
    0.0, -0.0, 1.0, -1.0, NAN, INF, -INF, 5e-324, 2.2250738585072014e-308, 1e-300, 1e-9, 0.5,
    1e9, -1e9, 2.0**53, 1e300, 1.7976931348623157e308, -1.7976931348623157e308, -789426.8,
)  # fmt: skip
EDGE_STRINGS = (
    "", " ", "\t", "x" * 64, "x" * 65, "x" * 128, "x" * 129, "é" * 40, "\x00", "a\x00b", "💥" * 20,
    "*", "-", "../../etc/passwd", "%s%n%x", "null", "'; DROP TABLE accounts; --", "BTC",
    "btc-perpetual", "BTC-PERPETUAL ", "BTC-31FEB26", "BTC-27DEC26-70000-X", "ETH_USDC-1-C",
)  # fmt: skip
_I32, _I64 = (0, 1, -1, 2**31 - 1, -(2**31)), (0, 1, -1, 2**63 - 1, -(2**63))
_U32, _U64 = (0, 1, 2, 2**31, 2**32 - 1), (0, 1, 2, 2**63, 2**64 - 1)
EDGE_INTS = {
    **dict.fromkeys((F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32), _I32),
    **dict.fromkeys((F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64), _I64),
    **dict.fromkeys((F.TYPE_UINT32, F.TYPE_FIXED32), _U32),
    **dict.fromkeys((F.TYPE_UINT64, F.TYPE_FIXED64), _U64),
}
TS_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z, the largest valid Timestamp
CRAFTED = (
    b"", b"\x00", b"\x0a\xff\xff\xff\x0f", b"\xff" * 16, b"\x08" + b"\xff" * 10 + b"\x01",
    b"\x0a\x02\xff\xfe", b"\x0a\x03a\xc3(", b"\x0b" * 2000, b"\x0a\x00" * 2000,
    b"\x12\x80\x80\x80\x80\x10", b"\x0f", b"\x0c", b"\x0d\x00\x00", b"\xfa\xff\xff\xff\x0f\x01",
    b"\x0a\x05\x0a\x03\x0a\x01", b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
)  # fmt: skip


@dataclass
class Pools:
    """What plausible values are made of; :mod:`loadtest.fuzz` refreshes the market part
    after accepted market updates and records accepted orders."""

    accounts: list[str]
    odd_accounts: list[str]
    symbols: list[str]
    options: list[str]
    linear: list[str]  # spot, perpetuals and futures (marks_usd keys)
    coins: list[str]
    currencies: list[str]
    marks: dict[str, float] = field(default_factory=dict)  # symbol -> mark, quote currency
    index: dict[str, float] = field(default_factory=dict)
    ivs: dict[str, float] = field(default_factory=dict)
    all_marks_usd: dict[str, float] = field(default_factory=dict)  # of the whole market
    valuation_s: int = 0
    orders: dict[str, deque[tuple[str, str]]] = field(default_factory=dict)  # acct -> (coid, sym)
    fill_ids: deque[str] = field(default_factory=lambda: deque(maxlen=256))
    scope: tuple[str, ...] = ()  # the accounts the current caller may touch

    def remember_order(self, account: str, coid: str, symbol: str) -> None:
        self.orders.setdefault(account, deque(maxlen=128)).append((coid, symbol))


class Generator:
    def __init__(self, rng: random.Random, pools: Pools, max_batch: int) -> None:
        self.rng = rng
        self.pools = pools
        self.max_batch = max_batch
        self._seq = 0

    # ---- edge and plain values ------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def fresh(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    def huge_string(self) -> str:
        r = self.rng
        return r.choice(("x", "é", "Z9", "💥")) * r.randint(HUGE // 4, HUGE // r.choice((1, 2, 4)))

    def edge_string(self) -> str:
        if self.chance(0.08):
            return self.huge_string()
        if self.chance(0.2):
            alphabet = "abcXYZ019-_*. é\x00\n"
            return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 24)))
        return self.rng.choice(EDGE_STRINGS)

    def edge_double(self) -> float:
        if self.chance(0.25):
            return self.rng.uniform(-1e6, 1e6)
        return self.rng.choice(EDGE_DOUBLES)

    def scalar(self, f: FieldDescriptor) -> Any:
        t, r = f.type, self.rng
        if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return self.edge_double() if t == F.TYPE_DOUBLE else r.choice((0.0, 1.0, -1.0, NAN))
        if t == F.TYPE_BOOL:
            return self.chance(0.5)
        if t == F.TYPE_STRING:
            return self.edge_string()
        if t == F.TYPE_BYTES:
            return r.randbytes(r.choice((0, 1, 16, 1000)))
        if t == F.TYPE_ENUM:
            numbers = [v.number for v in f.enum_type.values]
            if self.chance(0.15):
                return r.choice((max(numbers) + 1, 99, -1, 2**31 - 1, -(2**31)))
            return r.choice(numbers)
        if t in EDGE_INTS:
            return r.choice(EDGE_INTS[t]) if self.chance(0.5) else r.randint(0, 1000)
        raise TypeError(f"{f.full_name}: no generator for field type {t}")

    # ---- messages from descriptors --------------------------------------------------------

    def message(self, cls: type[Message], ctx: dict[str, Any] | None = None) -> Message:
        msg = cls()
        self.fill(msg, {} if ctx is None else ctx, depth=0)
        return msg

    def fill(self, msg: Message, ctx: dict[str, Any], depth: int) -> None:
        d: Descriptor = msg.DESCRIPTOR
        if d.full_name == "google.protobuf.Timestamp":
            seconds, nanos = self.timestamp(ctx)
            msg.seconds, msg.nanos = seconds, nanos  # type: ignore[attr-defined]
            return
        whole = MESSAGE_HINTS.get(d.full_name)
        if whole is not None and whole(self, msg, ctx):
            return
        chosen = {}
        for oneof in d.oneofs:
            if len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name:
                continue  # proto3 optional: presence is decided per field below
            chosen[oneof.name] = None if self.chance(0.08) else self.rng.choice(oneof.fields).name
        for f in d.fields:
            oneof = f.containing_oneof
            if oneof is not None and oneof.name in chosen:
                if chosen[oneof.name] != f.name:
                    continue
            elif f.has_presence and not self.chance(presence(d.name, f.name)):
                continue
            self.set_field(msg, f, ctx, depth)

    def set_field(self, msg: Message, f: FieldDescriptor, ctx: dict[str, Any], depth: int) -> None:
        name = f.name
        target = getattr(msg, name)
        if f.type == F.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
            key_f = f.message_type.fields_by_name["key"]
            val_f = f.message_type.fields_by_name["value"]
            for _ in range(self.count(name)):
                key = self.hinted(f"{name}.key", key_f, ctx)
                if val_f.type == F.TYPE_MESSAGE:
                    self.fill(target[key], dict(ctx, key=key), depth + 1)
                else:
                    target[key] = self.hinted(f"{name}.value", val_f, dict(ctx, key=key))
            return
        if f.is_repeated:
            n = self.count(name)
            if f.type == F.TYPE_MESSAGE:
                for _ in range(n if depth < 6 else 0):
                    self.fill(target.add(), dict(ctx), depth + 1)
            else:
                target.extend(self.hinted(name, f, ctx) for _ in range(n))
            return
        if f.type == F.TYPE_MESSAGE:
            sub = getattr(msg, name)
            sub.SetInParent()
            if depth < 6:
                self.fill(sub, ctx, depth + 1)
            return
        value = self.hinted(name, f, ctx)
        ctx[name] = value
        setattr(msg, name, value)

    def hinted(self, name: str, f: FieldDescriptor, ctx: dict[str, Any]) -> Any:
        hint = HINTS.get(f"{f.containing_type.name}.{name}") or HINTS.get(name)
        if hint is not None and (name in ALWAYS or not self.chance(0.04)):
            return hint(self, ctx)
        return self.scalar(f)

    def count(self, name: str) -> int:
        r = self.rng.random()
        if name == "orders":  # CheckOrders: mostly small batches, some over the maximum
            if r < 0.04:
                return 0
            if r < 0.06:
                return self.rng.randint(self.max_batch + 1, self.max_batch * 2)
            return self.rng.randint(1, 6) if r < 0.9 else self.rng.randint(7, 120)
        if r < 0.3:
            return 0
        if r < 0.985:
            return self.rng.randint(1, 4)
        return self.rng.randint(500, 5000)

    # ---- field hints ----------------------------------------------------------------------

    def account(self) -> str:
        r, p = self.rng.random(), self.pools
        if r < 0.65 and p.scope:
            return self.rng.choice(p.scope)
        return self.rng.choice(p.accounts if r < 0.92 else p.odd_accounts)

    def symbol(self, among: list[str] | None = None) -> str:
        if self.chance(0.94):
            return self.rng.choice(among or self.pools.symbols)
        return self.edge_string()

    def near(self, value: float, spread: float) -> float:
        return value * math.exp(self.rng.gauss(0.0, spread))

    def timestamp(self, ctx: dict[str, Any]) -> tuple[int, int]:
        r, now = self.rng, self.pools.valuation_s
        if self.chance(0.75):
            return now + r.choice((0, 0, 1, 60, 3600, r.randint(0, 86_400))), r.randint(0, 999)
        return r.choice(
            (
                (now - 86_400, 0), (0, 0), (-1, 0), (-62_135_596_801, 0), (TS_MAX, 999_999_999),
                (TS_MAX + 1, 0), (now, -1), (now, 1_000_000_000), (2**62, 0),
                (now + 10 * 365 * 86_400, 0), (now + 40 * 86_400, 0),
            )
        )  # fmt: skip

    def client_order_id(self, ctx: dict[str, Any]) -> str:
        known = self.pools.orders.get(ctx.get("account_id", ""))
        if known and self.chance(0.6 if ctx.get("event") else 0.12):
            coid, sym = self.rng.choice(known)
            ctx["order_symbol"] = sym
            return coid
        return self.fresh("o") if self.chance(0.9) else self.edge_string()

    def price(self, ctx: dict[str, Any]) -> float:
        sym = ctx.get("order_symbol") or ctx.get("symbol") or ""
        mark = self.pools.marks.get(sym)
        if mark is None:
            return self.rng.uniform(0.001, 100_000.0)
        return self.near(mark, self.rng.choice((0.001, 0.01, 0.3)))

    def index_value(self, ctx: dict[str, Any]) -> float:
        current = self.pools.index.get(ctx.get("key", ""), 50_000.0)
        return self.near(current, self.rng.choice((0.001, 0.02, 0.02, 0.4)))

    def full_market(self, msg: Message, ctx: dict[str, Any]) -> bool:
        """UpdateMarketRequest: now and then a complete, plausible full snapshot."""
        if not self.chance(0.06):
            return False
        p, move = self.pools, math.exp(self.rng.gauss(0.0, 0.005))
        msg.full_snapshot = True  # type: ignore[attr-defined]
        msg.valuation_time.seconds = p.valuation_s + self.rng.randint(0, 600)  # type: ignore[attr-defined]
        msg.index_usd.update({c: v * move for c, v in p.index.items()})  # type: ignore[attr-defined]
        msg.marks_usd.update({s: v * move for s, v in p.all_marks_usd.items()})  # type: ignore[attr-defined]
        msg.ivs.update({s: self.near(v, 0.01) for s, v in p.ivs.items()})  # type: ignore[attr-defined]
        if self.chance(0.5):
            msg.rate = self.rng.uniform(-0.01, 0.08)  # type: ignore[attr-defined]
        return True

    # ---- raw bytes ------------------------------------------------------------------------

    def raw(self, cls: type[Message]) -> bytes:
        r = self.rng.random()
        if r < 0.2:
            return self.rng.randbytes(self.rng.randint(0, 48))
        if r < 0.25:
            return self.rng.randbytes(self.rng.randint(1_000, HUGE))
        if r < 0.4:
            return self.rng.choice(CRAFTED)
        data = bytearray(self.message(cls).SerializeToString())
        for _ in range(self.rng.randint(1, 4)):
            self.mutate(data)
        return bytes(data)

    def mutate(self, data: bytearray) -> None:
        r, n = self.rng, len(data)
        op = r.randrange(6)
        at = r.randint(0, n)
        if op == 0 and n:
            data[min(at, n - 1)] ^= 1 << r.randrange(8)
        elif op == 1 and n:
            data[min(at, n - 1)] = r.choice((0x00, 0x7F, 0x80, 0xFF))
        elif op == 2:
            del data[at : at + r.randint(1, 8)]
        elif op == 3:
            data[at:at] = r.randbytes(r.randint(1, 8))
        elif op == 4 and n:
            data[at:at] = data[r.randint(0, n - 1) : r.randint(0, n)]
        else:
            del data[at:]
