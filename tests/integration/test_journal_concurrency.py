"""A reply waits for the journal write of every event committed before it, even one another
thread is still writing.

A decision's reply waits for ``engine.seq`` as it stands after the decision gate is released.
Another thread may have taken that sequence number and be in the middle of its journal write
(which releases the GIL: ``os.write``); the reply must then wait for that write, not ask the
journal for an event it does not hold yet. Found under load (``python -m loadtest
--compare-journal batch``): a rejected order's reply raised ``JournalError: wait for seq N:
the last seq written is N-1`` and the gateway got INTERNAL_ERROR.
"""

from __future__ import annotations

import sys
import threading

from riskgate.engine.journal.store import DataStore
from riskgate.engine.types import OrderRequest, OrderType, Reason, Side, TradingState
from tests.reference.engine_market import MemorySink, make_engine


class _HeldWrite(MemorySink):
    """Writes like the journal, except that once ``hold`` is set the next write stops half
    way (sequence number taken, nothing written yet) until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = threading.Event()
        self.inside = threading.Event()
        self.release = threading.Event()

    def write(self, events) -> None:
        if self.hold.is_set():
            self.hold.clear()
            self.inside.set()
            assert self.release.wait(10.0)
        super().write(events)


def _start(target) -> tuple[threading.Thread, list]:
    out: list = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_reply_waits_for_a_write_in_flight() -> None:
    sink = _HeldWrite()
    eng = make_engine(sink=sink)
    eng.upsert_account("a", collateral={"USD": 1e6})
    sink.hold.set()
    writer, _ = _start(lambda: eng.set_trading_state("a", False, TradingState.REDUCING, "test"))
    assert sink.inside.wait(10.0)
    # the writer holds seq = eng.seq, unwritten; a decision that commits nothing replies now
    order = OrderRequest("nobody", "c-1", "BTC-PERPETUAL", Side.BUY, 1.0)
    decider, decided = _start(lambda: eng.check_order(order))
    decider.join(0.2)
    assert decider.is_alive()  # waiting for the write in flight, not failing
    sink.release.set()
    writer.join(10.0)
    decider.join(10.0)
    (d,) = decided
    assert not isinstance(d, BaseException), d
    assert (d.accepted, d.reason) == (False, Reason.UNKNOWN_ACCOUNT)


def test_journal_under_concurrent_writers(tmp_path) -> None:
    """The same through a real DataStore: decisions on one account while another thread
    changes another account; every reply's wait is for an event the journal holds."""
    store = DataStore(tmp_path, fsync="batch")
    eng = make_engine(sink=store)
    try:
        for aid in ("a", "b"):
            eng.upsert_account(aid, collateral={"USD": 1e7})
        stop = threading.Event()

        def churn() -> int:
            n = 0
            while not stop.is_set():
                eng.upsert_account("b", collateral={"USD": 1e7 + n})
                n += 1
            return n

        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # many more interleavings per run
        try:
            churner, churned = _start(churn)
            rejects = [
                d.reason for k in range(400) if not (d := eng.check_order(_order(k))).accepted
            ]
            stop.set()
            churner.join(10.0)
        finally:
            sys.setswitchinterval(old)
        assert not isinstance(churned[0], BaseException), churned[0]
        assert rejects == []
        assert store.journal.last_seq == eng.seq
    finally:
        store.close()


def _order(k: int) -> OrderRequest:
    return OrderRequest("a", f"c{k}", "BTC-PERPETUAL", Side.BUY, 0.01, None, OrderType.MARKET)
