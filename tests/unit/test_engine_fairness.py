"""A stale market blocks orders that raise margin; a long batch lets a single order in."""

from __future__ import annotations

import threading
import time

from riskgate.engine.types import OrderRequest, OrderType, Reason, Side
from tests.reference.engine_market import SNAP, make_engine

PERP = "BTC_USDC-PERPETUAL"


def test_a_stale_market_rejects_orders_that_raise_margin_but_not_reducing_ones() -> None:
    now = [10**18]
    eng = make_engine(clock=lambda: now[0], max_market_age_ns=60 * 10**9)  # market at now
    eng.upsert_account("A", collateral={"USD": 1_000_000.0})
    eng.set_positions("A", [(PERP, 2.0, None)])
    buy = OrderRequest("A", "b1", PERP, Side.BUY, 1.0, None, OrderType.MARKET)
    sell = OrderRequest("A", "s1", PERP, Side.SELL, 1.0, None, OrderType.MARKET)
    assert eng.whatif(buy).accepted
    now[0] += 61 * 10**9
    d = eng.check_order(buy)
    assert not d.accepted and d.reason == Reason.MARKET_DATA_STALE
    assert d.context_field == "market" and d.context_actual > 0.9  # seconds past the limit
    assert eng.check_order(sell).accepted  # lowers the requirement: passes
    eng.load_snapshot(SNAP)  # fresh data
    assert eng.check_order(buy._replace(client_order_id="b2")).accepted


def test_a_long_batch_lets_a_waiting_single_order_decide_before_it_ends() -> None:
    eng = make_engine(max_gate_hold_ns=200_000)
    eng.upsert_account("A", collateral={"USD": 10**9})
    eng.upsert_account("B", collateral={"USD": 10**6})
    batch = [OrderRequest("A", f"a{k}", PERP, Side.BUY, 0.001, 70_000.0) for k in range(6000)]
    done: dict[str, int] = {}
    started = threading.Event()

    def run_batch() -> None:
        started.set()
        eng.check_orders(batch)
        done["batch"] = time.perf_counter_ns()

    t = threading.Thread(target=run_batch)
    t.start()
    started.wait()
    while eng.counters["decisions"] < 200:  # the batch holds the gate
        time.sleep(0.0005)
    d = eng.check_order(OrderRequest("B", "b1", PERP, Side.BUY, 0.1, 70_000.0))
    done["single"] = time.perf_counter_ns()
    t.join()
    assert d.accepted
    assert done["single"] < done["batch"]  # it did not wait for the whole batch
    assert len(eng.accounts["A"].orders) == 6000  # the batch lost nothing by yielding
