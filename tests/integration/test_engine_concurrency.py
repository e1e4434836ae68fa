"""RiskEngine under concurrent callers (issue 3, "Consistency").

- Many threads fire identical orders at one account whose equity allows exactly ``k`` of
  them. With USD collateral and a single linear perpetual the initial margin is linear in
  the position (IM after n unit buys = n * c, with c from ``full_revaluation`` of one unit),
  so k = floor(equity / c) with the equity chosen as (k + 1/2) * c. Exactly k must be
  accepted whatever the interleaving, and each accepted decision must have seen the ones
  before it (its IM before is a distinct multiple of c).
- A market update in another thread while orders flow: no exception, no decision lost,
  every decision on the old or the new market (never back once on the new one), and the
  account's margin afterwards equal to ``full_revaluation`` at the new market.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest

from riskgate.domain.instruments import parse_symbol
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.types import (
    Cancelled,
    EngineError,
    MarginMethod,
    OrderRequest,
    PoolMode,
    Reason,
    Side,
)
from tests.reference.engine_market import MODEL_NAMES, MODELS, RULES, SNAP, VT

BIG_BUDGET_NS = 60 * 10**9  # threads wait on the account lock: never a latency reject here

PERP_LIN = "BTC_USDC-PERPETUAL"
ETH_PERP_LIN = "ETH_USDC-PERPETUAL"
CALL_INV = "BTC-25DEC26-70500-C"
MARK_PERP = SNAP.marks_usd[PERP_LIN]

N_THREADS = 8
PER_THREAD = 25


def make_engine(model: str = "deribit", **config) -> RiskEngine:
    config.setdefault("decision_budget_ns", BIG_BUDGET_NS)
    eng = RiskEngine(MODELS[model], RULES, EngineConfig(**config))
    eng.warm_up()
    eng.update_market(
        full_snapshot=True,
        valuation_time=VT,
        index_usd=SNAP.index_usd,
        marks_usd=SNAP.marks_usd,
        ivs=SNAP.ivs,
    )
    return eng


def add_account(eng, account_id, usd):
    eng.upsert_account(
        account_id,
        collateral={"USD": usd},
        pool_mode=PoolMode.CROSS,
        margin_method=MarginMethod.PORTFOLIO,
    )


def fr(model, holdings, collateral, snap=SNAP):
    pos = {parse_symbol(s): q for s, q in holdings.items() if q != 0.0}
    return full_revaluation(MODELS[model], snap, pos, collateral, False)["USD"]


def unit_im(model: str) -> float:
    c = fr(model, {PERP_LIN: 1.0}, {"USD": 0.0}).initial_margin
    # the premise of the test: IM is linear in the size of one linear perpetual
    assert fr(model, {PERP_LIN: 37.0}, {"USD": 0.0}).initial_margin == pytest.approx(37.0 * c)
    assert fr(model, {PERP_LIN: -37.0}, {"USD": 0.0}).initial_margin == pytest.approx(37.0 * c)
    return c


@contextmanager
def busy_switching(interval: float = 1e-5):
    """Switch threads far more often than the 5 ms default: more interleavings per run."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(n: int, target) -> list:
    """Start ``n`` threads on ``target(k, barrier)``; return what each returned; re-raise."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def wrap(k):
        try:
            results[k] = target(k, barrier)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(k,)) for k in range(n)]
    with busy_switching():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


# --------------------------------------------------------------------------- exactly k


@pytest.mark.parametrize("model", MODEL_NAMES)
@pytest.mark.parametrize("k", [7, 61, 150])
def test_exactly_k_orders_accepted_whatever_the_interleaving(model, k):
    c = unit_im(model)
    equity = (k + 0.5) * c
    # independent check of k: decided one by one on a fresh identical engine
    seq = make_engine(model)
    add_account(seq, "A", equity)
    n_seq = 0
    while seq.check_order(
        OrderRequest("A", f"s{n_seq}", PERP_LIN, Side.BUY, 1.0, 70_000.0)
    ).accepted:
        n_seq += 1
    assert n_seq == k

    eng = make_engine(model)
    add_account(eng, "A", equity)

    def fire(t, barrier):
        barrier.wait()
        return [
            eng.check_order(OrderRequest("A", f"t{t}-{i}", PERP_LIN, Side.BUY, 1.0, 70_000.0))
            for i in range(PER_THREAD)
        ]

    decisions = [d for ds in run_threads(N_THREADS, fire) for d in ds]
    assert len(decisions) == N_THREADS * PER_THREAD
    accepted = [d for d in decisions if d.accepted]
    assert len(accepted) == k
    assert {d.reason for d in decisions if not d.accepted} <= {Reason.INSUFFICIENT_MARGIN}
    # each accepted decision saw all the earlier ones: IM before = 0, c, 2c, ... (k-1)c
    befores = sorted(d.initial_margin_before for d in accepted)
    assert befores == pytest.approx([n * c for n in range(k)], rel=1e-9, abs=1e-6)
    for d in accepted:
        assert d.initial_margin_after == pytest.approx(d.initial_margin_before + c, rel=1e-9)
        assert d.initial_margin_after <= d.equity_before
    for d in decisions:
        if not d.accepted:
            assert d.initial_margin_before == pytest.approx(k * c, rel=1e-9)
            assert d.initial_margin_after > d.equity_before
    view = eng.account_view("A")
    assert len(view.working_orders) == k
    assert view.initial_margin_usd <= view.equity_usd
    assert view.initial_margin_usd == pytest.approx(
        fr(model, {PERP_LIN: float(k)}, {"USD": equity}).initial_margin, rel=1e-9
    )


def test_exactly_k_per_side_and_per_account_with_mixed_flow():
    model = "deribit"
    c = unit_im(model)
    ks = {"A": 13, "B": 29, "C": 4}
    eng = make_engine(model)
    for acc, k in ks.items():
        add_account(eng, acc, (k + 0.5) * c)

    def fire(t, barrier):
        barrier.wait()
        out = []
        for i in range(PER_THREAD * 3):
            acc = "ABC"[(t + i) % 3]
            side = Side.BUY if (t * 7 + i) % 2 else Side.SELL
            d = eng.check_order(OrderRequest(acc, f"t{t}-{i}", PERP_LIN, side, 1.0, 70_000.0))
            out.append((side, d))
        return out

    decisions = [x for xs in run_threads(N_THREADS, fire) for x in xs]
    assert len(decisions) == N_THREADS * PER_THREAD * 3
    sides: Counter = Counter()
    for side, d in decisions:
        assert d.accepted or d.reason == Reason.INSUFFICIENT_MARGIN
        sides[(d.account_id, side)] += d.accepted
    for acc, k in ks.items():
        # positions + buys and positions - sells are margined apart: k of each side fit
        assert sides[(acc, Side.BUY)] == k, acc
        assert sides[(acc, Side.SELL)] == k, acc
        view = eng.account_view(acc)
        assert view.initial_margin_usd == pytest.approx(k * c, rel=1e-9)
        assert view.initial_margin_usd <= view.equity_usd


def test_concurrent_retries_of_one_order_reserve_once():
    eng = make_engine()
    c = unit_im("deribit")
    add_account(eng, "A", 100 * c)
    req = OrderRequest("A", "same", PERP_LIN, Side.BUY, 3.0, 70_000.0)

    def fire(t, barrier):
        barrier.wait()
        return [eng.check_order(req) for _ in range(10)]

    decisions = [d for ds in run_threads(N_THREADS, fire) for d in ds]
    assert all(d.accepted for d in decisions)
    assert Counter(d.duplicate for d in decisions) == {False: 1, True: N_THREADS * 10 - 1}
    assert len({(d.initial_margin_before, d.initial_margin_after) for d in decisions}) == 1
    view = eng.account_view("A")
    assert len(view.working_orders) == 1
    assert view.initial_margin_usd == pytest.approx(3.0 * c, rel=1e-9)


# --------------------------------------------------------------------------- market update


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_market_update_while_orders_flow(model):
    eng = make_engine(model)
    usd0 = 5_000_000.0
    add_account(eng, "A", usd0)
    positions = {PERP_LIN: -1.0, CALL_INV: -2.0}
    eng.set_positions("A", [(s, q, None) for s, q in positions.items()])
    snap = SNAP
    usd = usd0
    mark = MARK_PERP
    total_qty = 0.0
    n_threads, per_thread, qty = 4, 50, 0.01
    for rnd, (index, new_mark, vol) in enumerate(
        [(71_000.0, 71_010.0, 0.61), (68_500.0, 68_490.0, 0.45), (70_200.0, 70_205.0, 0.5)]
    ):
        v_old = eng.market.version
        done = threading.Event()
        started = threading.Event()
        update_result = []

        def fire(t, barrier, rnd=rnd, done=done, started=started):
            barrier.wait()
            out = []
            for i in range(per_thread):
                after_update = done.is_set()
                d = eng.check_order(
                    OrderRequest("A", f"r{rnd}-t{t}-{i}", ETH_PERP_LIN, Side.BUY, qty, 3_500.0)
                )
                out.append((after_update, d))
                if i == per_thread // 4:
                    started.set()
            return out

        def update(
            index=index, new_mark=new_mark, vol=vol, done=done, started=started, out=update_result
        ):
            started.wait(timeout=30)
            out.append(
                eng.update_market(
                    full_snapshot=False,
                    valuation_time=None,
                    index_usd={"BTC": index},
                    marks_usd={PERP_LIN: new_mark},
                    ivs={CALL_INV: vol},
                )
            )
            done.set()

        updater = threading.Thread(target=update)
        updater.start()
        results = run_threads(n_threads, fire)
        updater.join(timeout=60)
        assert not updater.is_alive()
        assert len(update_result) == 1, "the market update raised"
        v_new = update_result[0].market_version
        assert v_new == v_old + 1
        for per in results:
            assert len(per) == per_thread  # no decision lost
            versions = [d.market_version for _, d in per]
            assert set(versions) <= {v_old, v_new}
            assert versions == sorted(versions)  # never back to the old market
            for after_update, d in per:
                assert d.accepted, (d.reason, d.detail)
                if after_update:
                    assert d.market_version == v_new
        total_qty += n_threads * per_thread * qty
        snap = snap.with_updates(
            index_usd={"BTC": index}, marks_usd={PERP_LIN: new_mark}, ivs={CALL_INV: vol}
        )
        usd += positions[PERP_LIN] * (new_mark - mark)  # short 1: - (m1 - m0)
        mark = new_mark
        view = eng.account_view("A")
        assert view.market_version == v_new
        assert view.collateral["USD"] == pytest.approx(usd, rel=1e-12)
        assert len(view.working_orders) == round(total_qty / qty)
        ref_b = fr(model, {**positions, ETH_PERP_LIN: total_qty}, {"USD": usd}, snap)
        ref_p = fr(model, positions, {"USD": usd}, snap)
        (pool,) = view.pools
        assert pool.initial_margin == pytest.approx(
            max(ref_b.initial_margin, ref_p.initial_margin), rel=1e-9
        )
        assert pool.positions_initial_margin == pytest.approx(ref_p.initial_margin, rel=1e-9)
        assert pool.equity == pytest.approx(ref_p.equity, rel=1e-9)
        # and the next decision is made on the new market with the same numbers
        d = eng.whatif(OrderRequest("A", "", ETH_PERP_LIN, Side.BUY, qty, 3_500.0))
        assert d.market_version == v_new
        assert d.initial_margin_before == pytest.approx(pool.initial_margin, rel=1e-12)


# --------------------------------------------------------------------------- races


def _preloaded_engine(n_orders: int = 5_000) -> RiskEngine:
    """An account with many unacknowledged working orders (big dicts to iterate)."""
    eng = make_engine()
    add_account(eng, "A", 1e12)
    for i in range(n_orders):
        side = Side.BUY if i % 2 else Side.SELL
        assert eng.check_order(OrderRequest("A", f"p{i}", PERP_LIN, side, 0.01, 70_000.0)).accepted
    return eng


def _race(eng: RiskEngine, sweep, seconds: float = 1.5) -> list[BaseException]:
    """Run ``sweep`` in a loop while another thread adds orders; the errors it raised."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def flow():
        i = 0
        while not stop.is_set():
            i += 1
            eng.check_order(OrderRequest("A", f"f{i}", PERP_LIN, Side.BUY, 0.01, 70_000.0))

    t = threading.Thread(target=flow)
    with busy_switching(1e-6):
        t.start()
        try:
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end and not errors:
                try:
                    sweep()
                except Exception as exc:
                    errors.append(exc)
        finally:
            stop.set()
            t.join(timeout=30)
    return errors


def test_market_update_races_with_order_flow():
    # regression: update_market iterated account.orders without the account lock and raised
    # RuntimeError('dictionary changed size during iteration') while orders flowed
    eng = _preloaded_engine()

    def sweep():
        eng.update_market(
            full_snapshot=False,
            valuation_time=None,
            index_usd={"BTC": 70_000.0},
            marks_usd={},
            ivs={},
        )

    errors = _race(eng, sweep)
    assert errors == []


def test_expire_reservations_races_with_order_flow():
    # regression: the expiry sweep iterated an account's orders without the account lock
    eng = _preloaded_engine()
    errors = _race(eng, eng.expire_reservations)
    assert errors == []


def test_market_update_dropping_an_instrument_while_it_is_being_ordered():
    x = "BTC_USDC-25DEC26-70500-C"
    ivs_without_x = {k: v for k, v in SNAP.ivs.items() if k != x}
    eng = make_engine()
    # accounts rebound before Z: the window between the check and Z's rebind
    for i in range(200):
        add_account(eng, f"F{i:03d}", 1e6)
        eng.set_positions(f"F{i:03d}", [(PERP_LIN, 1.0, None)])
    add_account(eng, "Z", 1e9)
    stop = threading.Event()

    def flow():
        i = 0
        while not stop.is_set():
            i += 1
            d = eng.check_order(OrderRequest("Z", f"x{i}", x, Side.BUY, 1.0, 5_000.0))
            if d.accepted:
                eng.order_event("Z", f"x{i}", Cancelled())

    t = threading.Thread(target=flow)
    errors: list[BaseException] = []
    t.start()
    try:
        t_end = time.monotonic() + 3.0
        while time.monotonic() < t_end and not errors:
            for ivs in (ivs_without_x, SNAP.ivs):
                try:
                    eng.update_market(
                        full_snapshot=True,
                        valuation_time=VT,
                        index_usd=SNAP.index_usd,
                        marks_usd=SNAP.marks_usd,
                        ivs=ivs,
                    )
                except EngineError as exc:
                    assert exc.code == "FAILED_PRECONDITION"  # refused: fine
                except Exception as exc:
                    errors.append(exc)
                    break
    finally:
        stop.set()
        t.join(timeout=30)
    assert errors == []
    # and the account is bound to the engine's market
    assert eng.account_view("Z").market_version == eng.market.version
