"""What the engine keeps per account is bounded: remembered decisions by count and age,
client order ids and account ids by length."""

from __future__ import annotations

import pytest

from riskgate.engine.types import EngineError, OrderRequest, Reason, Side
from tests.reference.engine_market import make_engine

PERP = "BTC_USDC-PERPETUAL"


class Clock:
    def __init__(self) -> None:
        self.now = 10**18

    def __call__(self) -> int:
        return self.now


def _order(coid: str, account: str = "A") -> OrderRequest:
    return OrderRequest(account, coid, PERP, Side.BUY, 0.01, 70_000.0)


def _engine(**config):
    clock = Clock()
    eng = make_engine(clock=clock, **config)
    eng.upsert_account("A", collateral={"USD": 1_000_000.0})
    return eng, clock


def test_remembered_decisions_are_bounded_by_count() -> None:
    eng, _ = _engine(idempotency_window=3)
    first = [eng.check_order(_order(f"r{k}")) for k in range(5)]
    assert list(eng.accounts["A"].decisions) == ["r2", "r3", "r4"]
    assert eng.check_order(_order("r4")).duplicate
    # r0's decision is gone, its order is not: the id cannot be decided again
    again = eng.check_order(_order("r0"))
    assert not again.accepted and again.reason == Reason.DUPLICATE_ORDER_ID_MISMATCH
    assert first[0].accepted


def test_remembered_decisions_are_bounded_by_age() -> None:
    ttl = 60 * 10**9
    eng, clock = _engine(idempotency_ttl_ns=ttl, reservation_ttl_ns=10 * ttl)
    eng.check_order(_order("old"))
    clock.now += ttl // 2
    eng.check_order(_order("mid"))
    clock.now += ttl // 2 + 1
    eng.check_order(_order("new"))  # remembering it lets "old" go: older than the TTL
    assert list(eng.accounts["A"].decisions) == ["mid", "new"]


def test_client_order_ids_and_account_ids_are_bounded_in_length() -> None:
    eng, _ = _engine()
    d = eng.check_order(_order("x" * 65))
    assert not d.accepted and d.reason == Reason.INVALID_ORDER
    assert d.context_field == "client_order_id" and "64 bytes" in d.detail
    assert eng.check_order(_order("é" * 32)).accepted  # 64 bytes of UTF-8 is fine
    assert eng.check_order(_order("é" * 33)).reason == Reason.INVALID_ORDER
    assert "x" * 65 not in eng.accounts["A"].decisions  # not remembered
    with pytest.raises(EngineError) as err:
        eng.upsert_account("a" * 129, collateral={"USD": 1.0})
    assert err.value.code == "INVALID_ARGUMENT" and "128 bytes" in err.value.message
    eng.upsert_account("a" * 128, collateral={"USD": 1.0})


def test_balances_and_positions_beyond_bounds_are_refused_and_infinity_fails_closed() -> None:
    eng, _ = _engine()
    for bad in (1e16, -1e16, 1.7e308):
        with pytest.raises(EngineError) as err:
            eng.upsert_account("A", collateral={"USD": bad})
        assert err.value.code == "INVALID_ARGUMENT" and "collateral.USD" in err.value.message
        with pytest.raises(EngineError) as err:
            eng.set_positions("A", [(PERP, bad, None)])
        assert "positions[0].quantity" in err.value.message
    # an equity that overflowed anyway never lets an order through
    pool = eng.accounts["A"].pools["USD"]
    pool.equity = float("inf")
    pool.im_B = pool.im_S = float("inf")
    d = eng.whatif(_order(""))
    assert not d.accepted and d.reason == Reason.INSUFFICIENT_MARGIN
