"""Events and book snapshots <-> their ``riskgate.v1`` protobuf messages (events.proto).

Decoding gives back exactly what was encoded (floats are doubles both ways, ordered maps
are repeated entries), so a replayed or restored book is bit-identical to the live one. The
state hash is the sha256 of the book's snapshot message (deterministic serialisation, the
sequence number left out): one canonical encoding for both checks.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

import numpy as np

from riskgate.domain.market import MarketSnapshot
from riskgate.engine import events as ev
from riskgate.engine import types as et
from riskgate.engine.apply import bind_all
from riskgate.engine.attribution import LegPnl
from riskgate.engine.book import Account, AccountPool, Book, RulesTotals, WorkingOrder
from riskgate.engine.controls import codec as control_codec
from riskgate.engine.market import build_market_state
from riskgate.engine.state import PoolState
from riskgate.kernels import margin as mk
from riskgate.server import convert
from riskgate.v1 import events_pb2 as epb
from riskgate.v1 import riskgate_pb2 as pb

# BookSnapshot.state_format: 2 = inverse futures held as USD notional, futures settling
# against a per-position basis (a snapshot of another layout would restore wrong units)
STATE_FORMAT = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NO_LIMITS = et.Limits()


class CodecError(ValueError):
    """A record that does not decode into an event or a snapshot."""


# ------------------------------------------------------------------ small pieces


def _kv(target: epb.Amounts, items: Mapping[str, float] | Iterable[tuple[str, float]]) -> None:
    if isinstance(items, Mapping):
        target.keys.extend(items.keys())
        target.values.extend(items.values())
    else:
        for k, v in items:
            target.keys.append(k)
            target.values.append(v)


def _pairs(a: epb.Amounts) -> zip:
    return zip(a.keys, a.values, strict=True)


def time_to_ns(t: datetime) -> int:
    return (t - _EPOCH) // _US * 1000


def ns_to_time(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _order_to_proto(msg: pb.Order, r: et.OrderRequest) -> None:
    msg.account_id = r.account_id
    msg.client_order_id = r.client_order_id
    msg.symbol = r.symbol
    msg.side = int(r.side)
    msg.quantity = r.quantity
    if r.price is not None:
        msg.price = r.price
    msg.order_type = int(r.order_type)
    msg.reduce_only = r.reduce_only
    msg.time_in_force = int(r.time_in_force)


def _decision_from_proto(m: pb.Decision) -> et.Decision:
    s = m.worst_scenario if m.HasField("worst_scenario") else None
    c = m.context
    return et.Decision(
        m.account_id, m.client_order_id, m.accepted, et.Reason(m.reason), m.detail,
        c.field, c.limit_value if c.HasField("limit_value") else None,
        c.actual_value if c.HasField("actual_value") else None, c.unit,
        m.initial_margin_before, m.initial_margin_after, m.maintenance_margin_before,
        m.maintenance_margin_after, m.equity_before, m.equity_after,
        None if s is None else et.ScenarioInfo(
            s.index, s.price_move_fraction, s.vol_move, s.pool_currency, s.underlying, s.loss,
            tuple(sorted(s.price_moves.items())), s.name,
        ),
        m.pool_currency, m.risk_reducing, m.duplicate, et.MarginMethod(m.margin_method),
        m.compute_ns, m.market_version,
        tuple(LegPnl(a.symbol, a.quantity, a.pnl) for a in m.attribution),
    )  # fmt: skip


def _market_to_proto(
    msg: epb.MarketApplied, version: int, snap: MarketSnapshot, received_ns: int
) -> None:
    msg.version = version
    msg.received_ns = received_ns
    msg.valuation_time_ns = time_to_ns(snap.valuation_time)
    _kv(msg.index_usd, snap.index_usd)
    _kv(msg.marks_usd, snap.marks_usd)
    _kv(msg.ivs, snap.ivs)
    msg.rate = snap.rate


def _market_from_proto(m: epb.MarketApplied) -> ev.MarketApplied:
    snap = MarketSnapshot(
        ns_to_time(m.valuation_time_ns), dict(_pairs(m.index_usd)), dict(_pairs(m.marks_usd)),
        dict(_pairs(m.ivs)), m.rate,
    )  # fmt: skip
    return ev.MarketApplied(m.version, snap, m.received_ns)


def _opt_enum(enum: type, value: int):
    return enum(value) if value else None


# ------------------------------------------------------------------ events


def event_to_proto(stamped: ev.Stamped) -> epb.Event:
    msg = epb.Event(seq=stamped.seq, time_ns=stamped.time_ns, principal=stamped.principal)
    e = stamped.event
    if isinstance(e, ev.OrderAccepted):
        m = msg.order_accepted
        _order_to_proto(m.order, e.request)
        convert.fill_decision(m.decision, e.decision)
        convert.share_decision(e.decision, m.decision)  # the reply sends it as it is
        m.symbol, m.pool = e.symbol, e.pool
        m.accepted_ns, m.reserve_until_ns = e.accepted_ns, e.reserve_until_ns
    elif isinstance(e, ev.DecisionRemembered):
        m = msg.decision_remembered
        _order_to_proto(m.order, e.request)
        convert.fill_decision(m.decision, e.decision)
        m.decided_ns = e.decided_ns
    elif isinstance(e, ev.OrderStep):
        m = msg.order_step
        m.account_id, m.client_order_id = e.account_id, e.client_order_id
        _step_to_proto(m, e.body)
    elif isinstance(e, ev.ReservationsExpired):
        m = msg.reservations_expired
        m.account_id = e.account_id
        m.client_order_ids.extend(e.client_order_ids)
    elif isinstance(e, ev.AccountUpserted):
        m = msg.account_upserted
        m.account_id = e.account_id
        m.pool_mode = 0 if e.pool_mode is None else int(e.pool_mode)
        m.margin_method = 0 if e.margin_method is None else int(e.margin_method)
        if e.limits is not None:
            m.limits.CopyFrom(convert.limits_to_proto(e.limits))
        _kv(m.collateral, e.collateral)
    elif isinstance(e, ev.PositionsSet):
        m = msg.positions_set
        m.account_id = e.account_id
        for sym, qty, avg in e.positions:
            p = m.positions.add(symbol=sym, quantity=qty)
            if avg is not None:
                p.avg_price = avg
    elif isinstance(e, ev.TradingStateSet):
        m = msg.trading_state_set
        m.account_id, m.all_accounts = e.account_id, e.all_accounts
        m.state, m.reason = int(e.state), e.reason
    elif isinstance(e, ev.MarketApplied):
        _market_to_proto(msg.market_applied, e.version, e.snapshot, e.received_ns)
    elif isinstance(e, ev.MarketSourced):
        msg.market_sourced.market_seq, msg.market_sourced.refused = e.market_seq, e.refused
    elif isinstance(e, ev.Audited):
        m = msg.audited
        m.principal, m.method, m.outcome, m.detail = e.principal, e.method, e.outcome, e.detail
        m.accounts.extend(e.accounts)
    elif not control_codec.event_to_proto(msg, e):  # pragma: no cover - all are listed
        raise CodecError(f"cannot encode {type(e).__name__}")
    return msg


def _step_to_proto(m: pb.OrderEvent, body: et.OrderEventBody) -> None:
    if isinstance(body, et.Acknowledged):
        m.acknowledged.venue_order_id = body.venue_order_id
    elif isinstance(body, et.VenueRejected):
        m.venue_rejected.reason = body.reason
    elif isinstance(body, et.Cancelled):
        m.cancelled.SetInParent()
    elif isinstance(body, et.Expired):
        m.expired.SetInParent()
    elif isinstance(body, et.Amended):
        m.amended.SetInParent()
        if body.new_quantity is not None:
            m.amended.new_quantity = body.new_quantity
        if body.new_price is not None:
            m.amended.new_price = body.new_price
    elif isinstance(body, et.Filled):
        f = m.filled
        f.fill_quantity, f.fill_price, f.fill_id = body.fill_quantity, body.fill_price, body.fill_id


def encode_event(stamped: ev.Stamped) -> bytes:
    return event_to_proto(stamped).SerializeToString()


def event_from_proto(msg: epb.Event) -> ev.Stamped:
    which = msg.WhichOneof("body")
    if which == "order_accepted":
        m = msg.order_accepted
        e: ev.Event = ev.OrderAccepted(
            convert.order_from_proto(m.order), _decision_from_proto(m.decision), m.symbol,
            m.pool, m.accepted_ns, m.reserve_until_ns,
        )  # fmt: skip
    elif which == "decision_remembered":
        m = msg.decision_remembered
        e = ev.DecisionRemembered(
            convert.order_from_proto(m.order), _decision_from_proto(m.decision), m.decided_ns
        )
    elif which == "order_step":
        m = msg.order_step
        e = ev.OrderStep(m.account_id, m.client_order_id, convert.order_event_from_proto(m))
    elif which == "reservations_expired":
        m = msg.reservations_expired
        e = ev.ReservationsExpired(m.account_id, tuple(m.client_order_ids))
    elif which == "account_upserted":
        m = msg.account_upserted
        e = ev.AccountUpserted(
            m.account_id, _opt_enum(et.PoolMode, m.pool_mode),
            _opt_enum(et.MarginMethod, m.margin_method),
            convert.limits_from_proto(m.limits, _NO_LIMITS) if m.HasField("limits") else None,
            tuple(_pairs(m.collateral)),
        )  # fmt: skip
    elif which == "positions_set":
        m = msg.positions_set
        e = ev.PositionsSet(m.account_id, tuple(convert.positions_from_proto(m.positions)))
    elif which == "trading_state_set":
        m = msg.trading_state_set
        e = ev.TradingStateSet(m.account_id, m.all_accounts, et.TradingState(m.state), m.reason)
    elif which == "market_applied":
        e = _market_from_proto(msg.market_applied)
    elif which == "market_sourced":
        e = ev.MarketSourced(msg.market_sourced.market_seq, msg.market_sourced.refused)
    elif which == "audited":
        m = msg.audited
        e = ev.Audited(m.principal, m.method, tuple(m.accounts), m.outcome, m.detail)
    else:
        e = control_codec.event_from_proto(msg, which)  # type: ignore[assignment]
        if e is None:
            raise CodecError(f"event {msg.seq}: no body")
    return ev.Stamped(msg.seq, msg.time_ns, e, msg.principal)


def decode_event(payload: bytes) -> ev.Stamped:
    msg = epb.Event()
    try:
        msg.ParseFromString(payload)
    except Exception as exc:  # protobuf's DecodeError, across implementations
        raise CodecError(f"undecodable event record: {exc}") from None
    try:
        return event_from_proto(msg)
    except (ValueError, et.EngineError) as exc:
        raise CodecError(f"event {msg.seq}: {exc}") from None


def decode_event_checked(seq: int, payload: bytes) -> ev.Stamped:
    """:func:`decode_event` of the journal record ``seq``: the two must agree."""
    stamped = decode_event(payload)
    if stamped.seq != seq:
        raise CodecError(f"journal record {seq} holds event {stamped.seq}")
    return stamped


# ------------------------------------------------------------------ snapshots


def book_to_proto(book: Book, seq: int) -> epb.BookSnapshot:
    """The whole book, every account bound to ``book.market`` first (a live engine leaves
    accounts a market update does not change to bind when next touched)."""
    bind_all(book)
    msg = book_head_to_proto(book, seq)
    for acc in book.accounts.values():
        _account_to_proto(msg.accounts.add(), acc)
    return msg


def book_head_to_proto(book: Book, seq: int, *, controls: bool = True) -> epb.BookSnapshot:
    """The book's snapshot message without its accounts (the market, the halt, and with
    ``controls`` the account groups and the trading day)."""
    # the model's identity: its name, and its stress scenarios' digest if it has any
    msg = epb.BookSnapshot(seq=seq, model=book.model.identity, state_format=STATE_FORMAT)
    if book.market is not None:
        m = book.market
        _market_to_proto(msg.market, m.version, m.snapshot, m.received_ns)
    msg.halt_all, msg.halt_all_reason = book.halt_all
    msg.market_seq = book.market_seq
    if controls:
        control_codec.book_to_proto(msg, book)
    return msg


def controls_head_to_proto(book: Book) -> epb.BookSnapshot:
    """Only the book-level controls state (groups, trading day), as a partial snapshot."""
    msg = epb.BookSnapshot()
    control_codec.book_to_proto(msg, book)
    return msg


def account_state_bytes(acc: Account) -> bytes:
    """One account's part of the snapshot, serialised (bound to the book's market)."""
    m = epb.AccountState()
    _account_to_proto(m, acc)
    return m.SerializeToString(deterministic=True)


def snapshot_payload(head: epb.BookSnapshot, accounts: Iterable[bytes]) -> bytes:
    """:func:`snapshot_bytes` of ``head`` (no accounts) with the serialised accounts added,
    assembled from pieces: the bytes are those of the whole message serialised at once
    (fields in number order), but no single step holds the GIL for the whole book."""
    parts, digest = _assemble(head, accounts)
    parts.insert(0, epb.BookSnapshot(seq=head.seq).SerializeToString())
    parts.append(epb.BookSnapshot(state_hash=digest).SerializeToString())
    return b"".join(parts)


def _assemble(head: epb.BookSnapshot, accounts: Iterable[bytes]) -> tuple[list[bytes], str]:
    """The snapshot's pieces but ``seq`` and the hash, and the state hash over them."""
    # every field of the head but seq and the hash, split around the accounts' field number
    # (deterministic serialisation writes fields in number order): a field added to
    # BookSnapshot later is covered without touching this
    before, after = epb.BookSnapshot(), epb.BookSnapshot()
    before.CopyFrom(head)
    after.CopyFrom(head)
    for name in ("seq", "state_hash", "accounts"):
        before.ClearField(name)
        after.ClearField(name)
    for fd, _ in head.ListFields():
        if fd.name not in ("seq", "state_hash", "accounts"):
            (after if fd.number < _ACCOUNTS_FIELD else before).ClearField(fd.name)
    parts = [before.SerializeToString(deterministic=True)]
    for b in accounts:
        n = len(b)
        parts.append(_ACCOUNT_TAG + (bytes((n,)) if n < 0x80 else _varint_bytes(n)))
        parts.append(b)
    parts.append(after.SerializeToString(deterministic=True))
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return parts, h.hexdigest()


def state_hash_reusing(book: Book, known: Mapping[str, bytes]) -> str:
    """:func:`state_hash` of ``book``, taking each account in ``known`` as already encoded
    (its bytes from a snapshot, for an account nothing has changed since)."""
    return _assemble(
        book_head_to_proto(book, 0),
        (known.get(aid) or account_state_bytes(acc) for aid, acc in book.accounts.items()),
    )[1]


def snapshot_accounts(payload: bytes) -> list[bytes]:
    """The serialised accounts of a snapshot payload, in order (read from its bytes)."""
    out = []
    for field, value, end in _fields(payload):
        if field == _ACCOUNTS_FIELD:
            out.append(payload[value:end])
    return out


_ACCOUNT_TAG = bytes(((epb.BookSnapshot.ACCOUNTS_FIELD_NUMBER << 3) | 2,))


def _varint_bytes(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _account_to_proto(m: epb.AccountState, a: Account) -> None:
    m.account_id = a.account_id
    m.pool_mode, m.margin_method = int(a.pool_mode), int(a.margin_method)
    m.limits.CopyFrom(convert.limits_to_proto(a.limits))
    m.trading_state, m.trading_state_reason = int(a.trading_state), a.trading_state_reason
    _kv(m.collateral, a.collateral)
    _kv(m.avg_price, a.avg_price)
    _kv(m.working_buy, a.working_buy)
    _kv(m.working_sell, a.working_sell)
    for o in a.orders.values():
        om = m.orders.add()
        _order_to_proto(om.order, o.request)
        om.symbol, om.side, om.pool, om.quantity = o.symbol, int(o.side), o.pool, o.quantity
        if o.price is not None:
            om.price = o.price
        om.accepted_ns, om.reserve_until_ns = o.accepted_ns, o.reserve_until_ns
        om.filled, om.status, om.venue_order_id = o.filled, int(o.status), o.venue_order_id
        if o.fill_ids is not None:
            om.has_fill_ids = True
            om.fill_ids.extend(sorted(o.fill_ids))
        om.unit = o.unit
    for rec in a.decisions.values():
        if type(rec) is RememberedRecord and rec.encoded is not None:
            m.decisions.add().MergeFromString(rec.encoded)  # as restored, never read since
            continue
        req, d, t = rec
        dm = m.decisions.add(decided_ns=t)
        _order_to_proto(dm.order, req)
        convert.fill_decision(dm.decision, d)
    m.open_orders = a.open_orders
    for coid, t in a.pending.items():
        m.pending.add(client_order_id=coid, reserve_until_ns=t)
    m.ended.extend(a.ended)
    m.status, m.method_in_use = int(a.status), int(a.method_in_use)
    for ccy, pool in a.pools.items():
        pm = m.pools.add(currency=ccy, track_rules=pool.track_rules)
        for state in (pool.P, pool.B, pool.S):
            sm = pm.states.add(cash=state.cash, pnl=state.pnl.tobytes(), aux=state.aux.tobytes())
            _kv(sm.quantities, state.qty)
            _kv(sm.cash_balances, state.cash_balances)
        for name in ("P", "B", "S"):
            pm.rules.extend((pool.rules[name].im, pool.rules[name].mm))
        pm.figures.extend(
            (pool.im_B, pool.mm_B, pool.im_S, pool.mm_S, pool.im, pool.mm, pool.equity)
        )
        pm.scenario_keys.extend((*pool.scen_B, *pool.scen_S))
    _kv(m.futures_basis, a.basis.items())
    control_codec.account_to_proto(m, a)


def encode_snapshot(book: Book, seq: int) -> bytes:
    return snapshot_bytes(book_to_proto(book, seq))


def snapshot_bytes(msg: epb.BookSnapshot) -> bytes:
    """The snapshot file's payload: the message with its state hash filled in.

    Serialised once: the message without a hash, whose bytes but ``seq`` are what the hash
    covers (:func:`payload_hash`), then the hash field after them (a reader takes fields in
    any order; the message parsed is the one with its hash set)."""
    msg.ClearField("state_hash")
    body = msg.SerializeToString(deterministic=True)
    msg.state_hash = digest = payload_hash(body)
    return body + epb.BookSnapshot(state_hash=digest).SerializeToString()


def _hash(msg: epb.BookSnapshot) -> str:
    body = epb.BookSnapshot()
    body.CopyFrom(msg)
    body.seq = 0
    body.state_hash = ""
    return hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()


def state_hash(book: Book) -> str:
    """sha256 of everything the book holds (every account bound to its market)."""
    return _hash(book_to_proto(book, 0))


def payload_hash(payload: bytes) -> str:
    """The state hash of a snapshot file's payload read from its bytes: sha256 of every
    top-level field but ``seq`` and ``state_hash``. For a payload written by
    :func:`snapshot_bytes` (deterministic serialisation, fields in number order) that is
    the hash of the message as read, without parsing and serialising it again."""
    h = hashlib.sha256()
    view = memoryview(payload)
    kept = 0
    try:
        for field, start, end in _fields(payload, starts=True):
            if field in (_SEQ_FIELD, _HASH_FIELD):
                if kept < start:
                    h.update(view[kept:start])
                kept = end
    except ValueError:
        return ""
    h.update(view[kept:])
    return h.hexdigest()


def _fields(payload: bytes, starts: bool = False) -> Iterator[tuple[int, int, int]]:
    """Top-level fields of a message: (number, offset, end), the offset of the field's
    tag with ``starts``, else of its value (a length-delimited field's bytes). Raises
    ValueError if the bytes are not a message."""
    pos, end = 0, len(payload)
    try:
        while pos < end:
            start = pos
            tag, pos = _read_varint(payload, pos)
            wire = tag & 7
            value = pos
            if wire == 0:
                _, pos = _read_varint(payload, pos)
            elif wire == 2:
                n, value = _read_varint(payload, pos)
                pos = value + n
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise ValueError(f"wire type {wire}")
            if pos > end:
                raise ValueError("field past the end")
            yield tag >> 3, start if starts else value, pos
    except IndexError:
        raise ValueError("truncated") from None


_SEQ_FIELD = epb.BookSnapshot.SEQ_FIELD_NUMBER
_HASH_FIELD = epb.BookSnapshot.STATE_HASH_FIELD_NUMBER
_ACCOUNTS_FIELD = epb.BookSnapshot.ACCOUNTS_FIELD_NUMBER


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    v, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = data[pos]
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos + 1
        shift += 7


def decode_snapshot(payload: bytes, book: Book) -> int:
    """Fill the empty ``book`` from a snapshot; returns the sequence number it covers.
    Raises :class:`CodecError` if it does not decode or its state hash (of the message as
    read) does not match. That decoding is faithful, that ``state_hash(book)`` then gives
    the hash back, is what the replay property test checks."""
    return decode_snapshot_hashed(payload, book)[0]


def decode_snapshot_hashed(payload: bytes, book: Book) -> tuple[int, str]:
    """:func:`decode_snapshot`, also returning the state hash it checked: the book's
    (``state_hash(book)``) until the book changes."""
    msg = epb.BookSnapshot()
    try:
        msg.ParseFromString(payload)
    except Exception as exc:
        raise CodecError(f"undecodable snapshot: {exc}") from None
    if msg.model and msg.model != book.model.identity:
        raise CodecError(
            f"snapshot: made with model {msg.model!r}, not {book.model.identity!r} (a model "
            "with stress scenarios is named <model>+stress:<digest of the scenarios>: start "
            "with the same model and stress file)"
        )
    if msg.state_format != STATE_FORMAT:
        raise CodecError(
            f"snapshot: state format {msg.state_format}, not {STATE_FORMAT} (written by another "
            "version: recover from the journal instead)"
        )
    if msg.HasField("market"):
        m = _market_from_proto(msg.market)
        book.market = build_market_state(m.version, m.snapshot, book.model, book.rules_params)
        book.market.received_ns = m.received_ns
    book.halt_all = (msg.halt_all, msg.halt_all_reason)
    book.market_seq = msg.market_seq
    try:
        control_codec.groups_from_proto(msg, book)
    except (KeyError, ValueError) as exc:
        raise CodecError(f"snapshot: bad group state: {exc}") from None
    for am in msg.accounts:
        acc = _account_from_proto(am, book)
        control_codec.account_from_proto(am, acc, book)
        book.accounts[acc.account_id] = acc
        if acc.pending:
            book.pending_accounts.add(acc)
    got = payload_hash(payload)
    if got != msg.state_hash:  # written otherwise than snapshot_bytes does: the message's
        got = _hash(msg)
    if got != msg.state_hash:
        raise CodecError(f"snapshot {msg.seq}: state hash {got} does not match {msg.state_hash}")
    return msg.seq, got


def _account_from_proto(m: epb.AccountState, book: Book) -> Account:
    market = book.market
    assert market is not None, "a snapshot with accounts has a market"
    a = Account(
        m.account_id, et.PoolMode(m.pool_mode), et.MarginMethod(m.margin_method),
        _limits(m.limits), et.TradingState(m.trading_state),
        m.trading_state_reason, market=market, arrays=book.arrays,
    )  # fmt: skip
    a.collateral = dict(_pairs(m.collateral))
    a.basis = dict(_pairs(m.futures_basis))
    a.avg_price = dict(_pairs(m.avg_price))
    a.working_buy = dict(_pairs(m.working_buy))
    a.working_sell = dict(_pairs(m.working_sell))
    for om in m.orders:
        req = convert.order_from_proto(om.order)
        a.orders[req.client_order_id] = WorkingOrder(
            req, om.symbol, et.Side(om.side), om.pool, om.quantity,
            om.price if om.HasField("price") else None, om.accepted_ns, om.reserve_until_ns,
            om.filled, et.OrderStatus(om.status), om.venue_order_id,
            set(om.fill_ids) if om.has_fill_ids else None, om.unit,
        )  # fmt: skip
    # a restart restores every remembered decision, few are ever asked for again: each is
    # decoded when first read (a retry), not here
    a.decisions = OrderedDict(
        (dm.order.client_order_id, RememberedRecord(dm.SerializeToString(), dm.decided_ns))
        for dm in m.decisions
    )
    a.open_orders = m.open_orders
    a.pending = {p.client_order_id: p.reserve_until_ns for p in m.pending}
    a.ended = deque(m.ended)
    a.status, a.method_in_use = et.MarginStatus(m.status), et.MarginMethod(m.method_in_use)
    for pm in m.pools:
        table = market.tables[pm.currency]
        pool = AccountPool(table, pm.track_rules, book.arrays)
        for state, sm in zip((pool.P, pool.B, pool.S), pm.states, strict=True):
            _state_from_proto(state, sm)
        for k, name in enumerate(("P", "B", "S")):
            r = pool.rules[name] = RulesTotals()
            r.im, r.mm = pm.rules[2 * k], pm.rules[2 * k + 1]
        (pool.im_B, pool.mm_B, pool.im_S, pool.mm_S, pool.im, pool.mm, pool.equity) = pm.figures
        k = pm.scenario_keys
        pool.scen_B = (int(k[0]), int(k[1]), k[2])
        pool.scen_S = (int(k[3]), int(k[4]), k[5])
        a.pools[pm.currency] = pool
    a.mirror()
    return a


def _limits(m: pb.Limits) -> et.Limits:
    """Limits are immutable and most accounts share a few: decoded once per distinct one."""
    key = m.SerializeToString(deterministic=True)
    got = _LIMITS.get(key)
    if got is None:
        if len(_LIMITS) > 1024:
            _LIMITS.clear()
        got = _LIMITS[key] = convert.limits_from_proto(m, _NO_LIMITS)
    return got


_LIMITS: dict[bytes, et.Limits] = {}


class RememberedRecord:
    """An account's remembered decision restored from a snapshot: reads as the tuple
    ``(request, decision, decided_ns)`` live decisions are kept as, decoded from its
    ``RememberedDecision`` bytes when first read (its time without decoding)."""

    __slots__ = ("_value", "decided_ns", "encoded")

    def __init__(self, encoded: bytes, decided_ns: int) -> None:
        self.encoded: bytes | None = encoded  # None once decoded
        self.decided_ns = decided_ns
        self._value: tuple[et.OrderRequest, et.Decision, int] | None = None

    def _decoded(self) -> tuple[et.OrderRequest, et.Decision, int]:
        if self._value is None:
            dm = epb.RememberedDecision.FromString(self.encoded)  # type: ignore[arg-type]
            self._value = (
                convert.order_from_proto(dm.order), _decision_from_proto(dm.decision),
                self.decided_ns,
            )  # fmt: skip
            self.encoded = None
        return self._value

    def __getitem__(self, i: int):
        if i == 2 or i == -1:
            return self.decided_ns
        return self._decoded()[i]

    def __iter__(self):
        return iter(self._decoded())

    def __len__(self) -> int:
        return 3

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RememberedRecord | tuple):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RememberedRecord{tuple(self)!r}"


def _state_from_proto(state: PoolState, m: epb.ScenarioState) -> None:
    shape = state.pnl.shape
    state.pnl = np.frombuffer(m.pnl, dtype=np.float64).reshape(shape).copy()
    state.aux = np.frombuffer(m.aux, dtype=np.float64).reshape(shape[0], mk.N_AUX).copy()
    state.qty = dict(_pairs(m.quantities))
    state.cash_balances = dict(_pairs(m.cash_balances))
    state.cash = m.cash


def market_snapshot_data(snap: MarketSnapshot) -> Mapping[str, object]:
    """A market snapshot as plain data (for ``riskgate journal inspect``)."""
    return {
        "valuation_time": snap.valuation_time.isoformat(),
        "index_usd": dict(snap.index_usd),
        "marks_usd": len(snap.marks_usd),
        "ivs": len(snap.ivs),
        "rate": snap.rate,
    }
