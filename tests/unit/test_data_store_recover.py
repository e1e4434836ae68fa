"""DataStore.recover pauses the cyclic garbage collector while it rebuilds the book, and
leaves it as it found it, whether recovery succeeds or fails."""

from __future__ import annotations

import dataclasses
import gc

import pytest

from riskgate.engine.journal import codec
from riskgate.engine.journal import store as store_module
from riskgate.engine.journal.recovery import RecoveryError
from riskgate.engine.journal.store import DataStore
from riskgate.engine.types import OrderRequest, OrderType, Side
from tests.reference.engine_market import make_engine


@pytest.fixture
def data_dir(tmp_path):
    store = DataStore(tmp_path, fsync="none")
    eng = make_engine(sink=store)
    eng.upsert_account("a", collateral={"USD": 1e6})
    eng.check_order(OrderRequest("a", "c1", "BTC-PERPETUAL", Side.BUY, 0.1, None, OrderType.MARKET))
    expected = codec.state_hash(eng.book)
    store.close()
    return tmp_path, expected


@pytest.mark.parametrize("enabled", [True, False])
def test_recover_restores_the_collector(data_dir, enabled: bool) -> None:
    path, expected = data_dir
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        store = DataStore(path, fsync="none")
        try:
            rec = store.recover(make_engine().new_book())
        finally:
            store.close()
        assert gc.isenabled() is enabled
        assert (
            rec.state_hash == expected and rec.events_replayed == rec.last_seq == 3
        )  # market, account, accept
    finally:
        (gc.enable if was else gc.disable)()


def test_recover_restores_the_collector_on_failure(data_dir, monkeypatch) -> None:
    path, _ = data_dir

    def refuse(*args, **kwargs):
        assert not gc.isenabled()  # paused while the book is rebuilt
        raise RecoveryError("journal: event 2 does not apply")

    monkeypatch.setattr(store_module, "replay", refuse)
    store = DataStore(path, fsync="none")
    try:
        with pytest.raises(RecoveryError):
            store.recover(make_engine().new_book())
    finally:
        store.close()
    assert gc.isenabled()


@pytest.mark.parametrize("tail", [0, 2])
def test_recover_from_a_snapshot_reports_the_state_hash(tmp_path, tail: int) -> None:
    """With nothing after the snapshot (a clean shutdown) the hash is the snapshot's own,
    checked while decoding it; with a tail it is computed on the book replayed."""
    store = DataStore(tmp_path, fsync="none")
    eng = make_engine(sink=store)
    eng.upsert_account("a", collateral={"USD": 1e6})
    store.save_snapshot(*eng.snapshot())
    for k in range(tail):
        eng.check_order(
            OrderRequest("a", f"c{k}", "BTC-PERPETUAL", Side.BUY, 0.1, None, OrderType.MARKET)
        )
    expected = codec.state_hash(eng.book)
    store.close()
    store = DataStore(tmp_path, fsync="none")
    try:
        rec = store.recover(make_engine().new_book())
    finally:
        store.close()
    assert (rec.snapshot_seq, rec.events_replayed, rec.last_seq) == (2, tail, 2 + tail)
    assert rec.state_hash == expected


def test_payload_hash_is_the_hash_of_the_message_as_read(tmp_path) -> None:
    """The snapshot check hashes the file's bytes without the seq and hash fields; that is
    the hash of the parsed message serialised again (the reference), and a byte changed
    anywhere in the state changes it."""
    from riskgate.v1 import events_pb2 as epb

    eng = make_engine()
    for k in range(3):
        eng.upsert_account(f"a{k}", collateral={"USD": 1e6 + k})
        eng.check_order(
            OrderRequest(f"a{k}", "c1", "BTC-PERPETUAL", Side.BUY, 0.1, None, OrderType.MARKET)
        )
    seq, payload = eng.snapshot()
    msg = epb.BookSnapshot.FromString(payload)
    assert codec.payload_hash(payload) == codec._hash(msg) == msg.state_hash
    assert msg.state_hash == codec.state_hash(eng.book)
    # the same fields in another order (the market after the accounts) decode to the same
    # message: the bytes' hash differs, the check falls back to the message's
    rest = epb.BookSnapshot()
    rest.CopyFrom(msg)
    rest.ClearField("market")
    market = epb.BookSnapshot()
    market.market.CopyFrom(msg.market)
    odd = rest.SerializeToString() + market.SerializeToString()
    assert codec.payload_hash(odd) != msg.state_hash
    assert codec.decode_snapshot_hashed(odd, make_engine().new_book()) == (seq, msg.state_hash)
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0x01
    assert codec.payload_hash(bytes(flipped)) != msg.state_hash


def test_a_snapshot_assembled_from_pieces_is_the_message_serialised_at_once() -> None:
    """The engine's snapshot (accounts serialised one by one) is byte for byte the whole
    book's message with its hash, as the reference encoder writes it in one piece, except
    that the hash field comes last."""
    from riskgate.v1 import events_pb2 as epb

    eng = make_engine()
    for k in range(4):
        eng.upsert_account(f"a{k}" * (20 * k + 1), collateral={"USD": 1e6 + k})  # long ids
        eng.check_order(
            OrderRequest(f"a{k}" * (20 * k + 1), "c1", "BTC-PERPETUAL", Side.BUY, 0.1, None,
                         OrderType.MARKET)
        )  # fmt: skip
    seq, payload = eng.snapshot()
    whole = codec.book_to_proto(eng.book, seq)
    reference = whole.SerializeToString(deterministic=True)  # no hash field yet
    digest = codec._hash(whole)
    assert payload == reference + epb.BookSnapshot(state_hash=digest).SerializeToString()
    assert codec.encode_snapshot(eng.book, seq) == payload


@pytest.mark.parametrize("tail", ["orders", "new account and halt", "market update"])
def test_the_hash_after_a_tail_reuses_untouched_accounts_and_is_the_books(tmp_path, tail) -> None:
    """After a tail the reported hash reuses the snapshot's bytes of the accounts the tail
    did not change; it must be the hash of the whole book encoded afresh (the reference),
    whatever the tail changed."""
    from tests.reference.engine_market import SNAP

    store = DataStore(tmp_path, fsync="none")
    eng = make_engine(sink=store)
    for k in range(5):
        eng.upsert_account(f"a{k}", collateral={"USD": 1e6})
        eng.check_order(
            OrderRequest(f"a{k}", "c0", "BTC-PERPETUAL", Side.BUY, 0.1, None, OrderType.MARKET)
        )
    store.save_snapshot(*eng.snapshot())
    eng.check_order(
        OrderRequest("a1", "c1", "BTC-PERPETUAL", Side.SELL, 0.3, None, OrderType.MARKET)
    )
    if tail == "new account and halt":
        eng.upsert_account("late", collateral={"USD": 7.0})
        from riskgate.engine.types import TradingState

        eng.set_trading_state("", True, TradingState.HALTED, "drill")
    elif tail == "market update":
        marks = {s: m * 1.01 for s, m in SNAP.marks_usd.items()}
        eng.update_market(
            full_snapshot=False, valuation_time=None, index_usd={}, marks_usd=marks, ivs={}
        )
    expected = codec.state_hash(eng.book)
    store.close()
    store = DataStore(tmp_path, fsync="none")
    try:
        rec = store.recover(make_engine().new_book())
    finally:
        store.close()
    assert rec.events_replayed > 0
    assert rec.state_hash == expected


def test_remembered_decisions_restored_from_a_snapshot_read_as_the_live_ones() -> None:
    """Restored remembered decisions are decoded when first read: a retry gets the original
    decision, the records equal the live tuples, and the book hashes the same whether they
    were read or not (the live book is the reference)."""
    eng = make_engine()
    eng.upsert_account("a", collateral={"USD": 1e6})
    orders = [
        OrderRequest("a", f"c{k}", "BTC-PERPETUAL", Side.BUY, 0.1 + k, None, OrderType.MARKET)
        for k in range(3)
    ]
    originals = [eng.check_order(o) for o in orders]
    seq, payload = eng.snapshot()
    book = make_engine().new_book()
    codec.decode_snapshot(payload, book)
    restored = book.accounts["a"].decisions
    assert all(type(r) is codec.RememberedRecord for r in restored.values())
    assert codec.state_hash(book) == codec.state_hash(eng.book)  # none read yet
    assert restored["c1"][2] == eng.accounts["a"].decisions["c1"][2]
    assert restored["c1"].encoded is not None  # its time alone does not decode it
    assert list(restored.values()) == list(eng.accounts["a"].decisions.values())
    assert codec.state_hash(book) == codec.state_hash(eng.book)  # all read now
    again = make_engine()
    again.restore(book, seq)
    retry = again.check_order(orders[2])
    assert retry.duplicate and retry.initial_margin_after == originals[2].initial_margin_after
    from riskgate.server import convert

    assert convert.decision_to_proto(retry) == convert.decision_to_proto(
        dataclasses.replace(originals[2], duplicate=True)
    )
