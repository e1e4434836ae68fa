"""A snapshot copies accounts after its cut while writers go on (copy on write): whatever
they commit meanwhile, the snapshot is the book as of its seq — checked against a fresh
book replayed from the journal up to that seq (the reference)."""

from __future__ import annotations

import threading

import pytest

from riskgate.engine import events as ev
from riskgate.engine.capture import event_accounts
from riskgate.engine.journal import codec
from riskgate.engine.journal.recovery import replay
from riskgate.engine.types import (
    Acknowledged,
    Filled,
    OrderRequest,
    OrderType,
    Side,
    TradingState,
)
from riskgate.v1 import events_pb2 as epb
from tests.reference.engine_market import MemorySink, make_engine

ACCOUNTS = [f"a{k}" for k in range(6)]


def _order(aid: str, coid: str, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(aid, coid, "BTC-PERPETUAL", side, 0.1, None, OrderType.MARKET)


def _engine():
    sink = MemorySink()
    eng = make_engine(sink=sink)
    for aid in ACCOUNTS:
        eng.upsert_account(aid, collateral={"USD": 1e6})
        assert eng.check_order(_order(aid, "first")).accepted
    return eng, sink


def _replayed_hash(eng, sink: MemorySink, seq: int) -> str:
    book = eng.new_book()
    replay(book, [codec.decode_event(codec.encode_event(s)) for s in sink.events if s.seq <= seq])
    return codec.state_hash(book)


def _check(eng, sink, seq: int, payload: bytes) -> None:
    msg = epb.BookSnapshot.FromString(payload)
    assert msg.seq == seq
    assert msg.state_hash == _replayed_hash(eng, sink, seq)
    book = eng.new_book()
    assert codec.decode_snapshot(payload, book) == seq  # its own hash checks too
    assert [a.account_id for a in msg.accounts] == ACCOUNTS


def _during_capture(eng, monkeypatch, action) -> None:
    """Run ``action`` once, after the snapshot has copied its first account."""
    real = eng._capture_one
    calls = []

    def capture_one(capture, acc):
        real(capture, acc)
        calls.append(acc.account_id)
        if len(calls) == 1:
            action()

    monkeypatch.setattr(eng, "_capture_one", capture_one)


def test_commits_during_the_copy_are_not_in_the_snapshot(monkeypatch) -> None:
    eng, sink = _engine()

    def writers() -> None:
        # accounts copied already, not yet, the last one; a new account; lifecycle steps
        for aid in (ACCOUNTS[0], ACCOUNTS[2], ACCOUNTS[-1]):
            assert eng.check_order(_order(aid, "during", Side.SELL)).accepted
        eng.order_event(ACCOUNTS[3], "first", Acknowledged("v1"))
        eng.order_event(ACCOUNTS[3], "first", Filled(0.1, 70_000.0, "f1"))
        eng.upsert_account("late", collateral={"USD": 5.0})
        eng.set_positions(ACCOUNTS[4], [("BTC-PERPETUAL", 2.0, 69_000.0)])

    _during_capture(eng, monkeypatch, writers)
    seq_before = eng.seq
    seq, payload = eng.snapshot()
    assert seq == seq_before and eng.seq > seq
    _check(eng, sink, seq, payload)
    assert codec.state_hash(eng.book) != epb.BookSnapshot.FromString(payload).state_hash


def test_an_event_of_every_account_copies_all_that_are_left(monkeypatch) -> None:
    eng, sink = _engine()
    _during_capture(
        eng, monkeypatch, lambda: eng.set_trading_state("", True, TradingState.HALTED, "drill")
    )
    seq, payload = eng.snapshot()
    _check(eng, sink, seq, payload)
    assert not epb.BookSnapshot.FromString(payload).halt_all
    assert eng.halt_all[0]


def test_a_snapshot_beside_a_writing_thread() -> None:
    eng, sink = _engine()
    stop = threading.Event()

    def trade() -> None:
        k = 0
        while not stop.is_set():
            aid = ACCOUNTS[k % len(ACCOUNTS)]
            eng.check_order(_order(aid, f"t{k}", Side.BUY if k % 2 else Side.SELL))
            k += 1

    t = threading.Thread(target=trade)
    t.start()
    try:
        taken = [eng.snapshot() for _ in range(5)]
    finally:
        stop.set()
        t.join()
    for seq, payload in taken:
        _check(eng, sink, seq, payload)


@pytest.mark.parametrize(
    ("event", "accounts"),
    [
        (ev.Audited("p", "SetLimits", ("a",), "denied", ""), ()),
        (ev.TradingStateSet("", True, TradingState.HALTED, "x"), None),
        (ev.TradingStateSet("a", False, TradingState.HALTED, "x"), ("a",)),
        (ev.OrderStep("a", "o", Acknowledged("v")), ("a",)),
        (ev.ReservationsExpired("b", ("o",)), ("b",)),
        (ev.DecisionRemembered(_order("c", "o"), None, 0), ("c",)),  # type: ignore[arg-type]
    ],
)
def test_event_accounts(event, accounts) -> None:
    assert event_accounts(event) == accounts


def test_book_level_state_is_in_the_copy_on_write_snapshot() -> None:
    """Fields of the snapshot outside the accounts (account groups with their usage, the
    cluster's market position) survive the piecewise assembly: the payload's hash is the
    live book's and a book decoded from it hashes the same."""
    from riskgate.engine.controls.model import ControlLimits

    eng, _sink = _engine()
    eng.upsert_group("desk", None, ControlLimits(max_gross_usd=1e9, max_orders=100))
    for aid in ACCOUNTS[:3]:
        eng.set_account_group(aid, "desk")
    assert eng.check_order(_order(ACCOUNTS[0], "grouped")).accepted
    eng.book.market_seq = 7
    live = codec.state_hash(eng.book)
    seq, payload = eng.snapshot()
    msg = epb.BookSnapshot.FromString(payload)
    assert [g.group_id for g in msg.groups] == ["desk"]
    assert msg.market_seq == 7
    assert msg.state_hash == live
    book = eng.new_book()
    assert codec.decode_snapshot(payload, book) == seq
    assert codec.state_hash(book) == live
    assert list(book.controls.groups["desk"].members) == ACCOUNTS[:3]
