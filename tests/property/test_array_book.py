"""The array book against its references: random command sequences (those of the replay
property test) on a live engine, then

- every pool state's holdings row of the array book is its ``qty``, in the same order;
- the whole-book kernel's rows equal, bit for bit, each state rebuilt on its own from its
  holdings (a standalone state: the per-account path) and its margin;
- an engine that never adopts the kernel's rows (every account rebuilt on its own at each
  market update) ends in the same state hash as one that does;
- each account's positions state equals a full revaluation of its holdings to 1e-9.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskgate.engine import engine as engine_module
from riskgate.engine.apply import bind_all
from riskgate.engine.book import AccountPool
from riskgate.engine.journal import codec
from riskgate.engine.state import PoolState
from riskgate.engine.types import EngineError
from riskgate.kernels import margin as mk
from tests.property.test_replay_properties import TTL_NS, Clock, _run, ops
from tests.reference.engine_market import make_engine


def _play(
    model: str, script: list, adopt: bool = True, lazy: bool = True, trail=None, pm: float = 0.0
):
    """Run ``script``; ``adopt=False``: never take the kernel's rows; ``lazy=False``: a
    market update binds every account at once; ``trail``: gets every account's margin
    status (as it stands, unbound accounts included) after each command."""
    clock = Clock()
    with pytest.MonkeyPatch.context() as m:
        if not adopt:
            m.setattr(AccountPool, "adopt", lambda self, market, table: None)
        if not lazy:
            m.setattr(engine_module, "accounts_to_bind", lambda book: list(book.accounts.values()))
        eng = make_engine(
            model, clock=clock, reservation_ttl_ns=TTL_NS, idempotency_window=20,
            pm_equity_minimum_usd=pm,
        )  # fmt: skip
        eng.upsert_account("A", collateral={"USD": 50_000.0})
        for op in script:
            with contextlib.suppress(EngineError):
                _run(eng, clock, op, [])
            if trail is not None:
                trail.append({a: acc.status for a, acc in eng.accounts.items()})
    return eng


def _states(eng):
    for acc in eng.accounts.values():
        for pool in acc.pools.values():
            yield acc, pool, (pool.P, pool.B, pool.S)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deribit", "span"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(ops, min_size=5, max_size=40))
def test_array_book_matches_per_account_rebuilds(model: str, script: list) -> None:
    eng = _play(model, script)
    book, market = eng.book, eng.market
    ids = {i: s for s, i in book.arrays.ids.items()}
    checked = 0
    for _, pool, states in _states(eng):
        chunk = pool._chunk
        assert chunk is not None
        for k, state in enumerate(states):
            r = 3 * pool._p + k
            n = int(chunk.n_pos[r])
            held = [
                (ids[int(i)], float(q))
                for i, q in zip(chunk.pos_id[r, :n], chunk.pos_q[r, :n], strict=True)
            ]
            assert held == list(state.qty.items())
    # the kernel on the current tables, against each state rebuilt on its own
    book.arrays.remargin(market, eng.config.pm_equity_minimum_usd)
    for _, pool, states in _states(eng):
        chunk, p = pool._chunk, pool._p
        j = market.version & 1
        table = market.tables[pool.currency]
        for k, state in enumerate(states):
            r = 3 * p + k
            alone = PoolState(table)
            alone.qty = dict(state.qty)
            alone.rebind(table)
            assert not chunk.failed[j][r]
            assert np.array_equal(chunk.result_pnl[j][r], alone.pnl)
            assert np.array_equal(chunk.result_aux[j][r], alone.aux)
            assert np.array_equal(chunk.result_out[j][r], alone.margin_out())
            checked += 1
    # the incremental positions state against a full rebuild (what any sequence may drift),
    # once every account is bound to the current market
    bind_all(book)
    for _, pool, _ in _states(eng):
        table = market.tables[pool.currency]
        alone = PoolState(table)
        alone.qty = dict(pool.P.qty)
        alone.rebind(table)
        live, ref = pool.P.margin_out(), alone.margin_out()
        total = live.shape[0] - 1
        for col in (mk.O_IM, mk.O_MM):
            assert live[total, col] == pytest.approx(ref[total, col], rel=1e-9, abs=1e-9)
    assert checked >= 3  # account A has its USD pool at least


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deribit"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(ops, min_size=5, max_size=40))
def test_adopting_the_kernel_rows_changes_no_bit(model: str, script: list) -> None:
    adopted = _play(model, script)
    rebuilt = _play(model, script, adopt=False)
    assert codec.state_hash(adopted.book) == codec.state_hash(rebuilt.book)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(ops, min_size=5, max_size=40), pm_minimum=st.sampled_from([0.0, 60_000.0]))
def test_lazy_binding_misses_no_status_change(script: list, pm_minimum: float) -> None:
    """An account a market update leaves to bind later has, unbound, the margin status it
    would have bound (the verdict is exact), and binds to the same state."""
    lazy_trail: list = []
    eager_trail: list = []
    lazy = _play("deribit", script, trail=lazy_trail, pm=pm_minimum)
    eager = _play("deribit", script, lazy=False, trail=eager_trail, pm=pm_minimum)
    assert lazy_trail == eager_trail
    assert codec.state_hash(lazy.book) == codec.state_hash(eager.book)


def test_market_update_adopts_kernel_rows_for_untouched_accounts() -> None:
    """Option accounts keep their status: the update leaves them to bind when next read,
    and they then take the kernel's rows; one whose collateral the update settles (an
    inverse perpetual in a cross pool) binds at once and is rebuilt on its own."""
    eng = make_engine("deribit")
    for a in ("opt1", "opt2"):
        eng.upsert_account(a, collateral={"USD": 100_000.0})
        eng.set_positions(a, [("BTC-25DEC26-70500-C", -2.0, None), ("BTC_USDC", 1.0, None)])
    eng.upsert_account("fut", collateral={"USD": 100_000.0, "BTC": 1.0})
    eng.set_positions("fut", [("BTC-PERPETUAL", 10_000.0, None)])
    took: list[str] = []
    original = AccountPool.adopt

    def spy(self, market, table):
        out = original(self, market, table)
        if out is not None:
            took.append(next(a for a, acc in eng.accounts.items() if self in acc.pools.values()))
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(AccountPool, "adopt", spy)
        snap = eng.market.snapshot
        before = {a: eng.account_view(a) for a in eng.accounts}
        eng.update_market(
            full_snapshot=False, valuation_time=None,
            index_usd={"BTC": snap.index_usd["BTC"] * 1.01},
            marks_usd={"BTC-PERPETUAL": snap.marks_usd["BTC-PERPETUAL"] * 1.01},
            ivs={},
        )  # fmt: skip
        assert eng.accounts["fut"].market is eng.market
        assert eng.accounts["opt1"].market is not eng.market
        assert took == []
        after = {a: eng.account_view(a) for a in eng.accounts}
    assert sorted(took) == ["opt1", "opt2"]
    for a, acc in eng.accounts.items():
        assert acc.market is eng.market
        assert after[a].market_version == before[a].market_version + 1
        assert after[a].initial_margin_usd != before[a].initial_margin_usd
