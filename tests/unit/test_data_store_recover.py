"""DataStore.recover pauses the cyclic garbage collector while it rebuilds the book, and
leaves it as it found it, whether recovery succeeds or fails."""

from __future__ import annotations

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
