"""Replay determinism: random sequences of every command and market update against a live
engine; a fresh book rebuilt from the events (through their protobuf encoding), and one
restored from a mid-run snapshot plus the events after it, hold bit for bit the same state
(the state hash covers every scenario vector's bytes) and show the same account views."""

from __future__ import annotations

import contextlib
from collections import deque
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskgate.engine.book import Book
from riskgate.engine.controls.model import ControlLimits
from riskgate.engine.engine import RiskEngine
from riskgate.engine.journal import codec
from riskgate.engine.journal.recovery import replay
from riskgate.engine.types import (
    Acknowledged,
    Amended,
    Cancelled,
    EngineError,
    Expired,
    Filled,
    Limits,
    MarginMethod,
    OrderRequest,
    PoolMode,
    Side,
    TradingState,
    VenueRejected,
)
from tests.reference.engine_market import MODELS, RULES, SNAP, VT, MemorySink, make_engine

SYMBOLS = [
    "BTC_USDC-PERPETUAL", "BTC-PERPETUAL", "BTC-25DEC26-70500-C", "BTC_USDC-25DEC26-70500-C",
    "BTC_USDC-25DEC26-60500-P", "ETH_USDC-PERPETUAL", "ETH-25DEC26-2375-P", "BTC_USDC",
]  # fmt: skip
ACCOUNTS = ["A", "B", "C"]
GROUPS = ["F", "D1", "D2"]
# small limits, so that they bind in short scripts
CONTROLS = [
    ControlLimits(max_orders=3, max_notional_usd=150_000.0, notional_window_ns=2_000_000_000),
    ControlLimits(max_gross_usd=200_000.0, max_net_usd=120_000.0, credit_warning_fraction=0.5),
    ControlLimits(max_loss_usd=500.0, loss_action=TradingState.HALTED,
                  class_max_quantity={"option": 1.0}, class_price_band={"future": 0.05}),
    ControlLimits(max_orders=5, max_gross_usd=400_000.0, max_loss_usd=2_000.0),
]  # fmt: skip
TTL_NS = 5_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now


acct = st.sampled_from(ACCOUNTS)
coid = st.integers(0, 11).map(lambda k: f"o{k}")
qty = st.sampled_from([0.1, 0.5, 1.0, 2.0, 7.0, -1.0, float("nan")])
ops = st.one_of(
    st.tuples(st.just("upsert"), acct, st.sampled_from(list(PoolMode)),
              st.sampled_from([0.0, 5_000.0, 100_000.0]), st.sampled_from([0.0, 1.5]),
              st.sampled_from([None, MarginMethod.RULES_BASED, MarginMethod.PORTFOLIO]),
              st.booleans()),
    st.tuples(st.just("positions"), acct,
              st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from([-2.0, 0.0, 0.5, 3.0])),
                       max_size=3, unique_by=lambda t: t[0])),
    st.tuples(st.just("order"), acct, coid, st.sampled_from(SYMBOLS), st.sampled_from(list(Side)),
              qty, st.booleans()),
    st.tuples(st.just("batch"), acct, st.lists(coid, min_size=1, max_size=4),
              st.sampled_from(SYMBOLS)),
    st.tuples(st.just("event"), acct, coid,
              st.sampled_from(["ack", "fill", "fill_all", "cancel", "expire", "reject", "amend"]),
              st.sampled_from([0.1, 0.5, 1.0]), st.integers(0, 3)),
    st.tuples(st.just("state"), st.sampled_from([*ACCOUNTS, "*"]), st.sampled_from(list(TradingState))),
    st.tuples(st.just("market"), st.sampled_from([-0.05, 0.0, 0.03]), st.sampled_from([0.0, 0.02]),
              st.integers(0, 30), st.booleans()),
    st.tuples(st.just("market_skipped")),
    st.tuples(st.just("clock"), st.sampled_from([1_000_000_000, TTL_NS])),
    st.tuples(st.just("snapshot")),
    # pre-trade controls: account limits, groups, membership, the trading day
    st.tuples(st.just("controls"), acct, st.integers(0, len(CONTROLS) - 1)),
    st.tuples(st.just("group"), st.sampled_from(GROUPS), st.sampled_from([None, "", "F"]),
              st.integers(-1, len(CONTROLS) - 1)),
    st.tuples(st.just("join"), acct, st.sampled_from(["", *GROUPS])),
    st.tuples(st.just("day"), st.booleans()),
)  # fmt: skip


def _run(eng: RiskEngine, clock: Clock, op: tuple, snaps: list) -> None:
    kind = op[0]
    if kind == "upsert":
        _, a, mode, usd, btc, method, limits = op
        eng.upsert_account(
            a, collateral={"USD": usd, "BTC": btc}, pool_mode=mode, margin_method=method,
            limits=Limits(max_open_orders=6, position_limits={"BTC-PERPETUAL": 5.0}) if limits else None,
        )  # fmt: skip
    elif kind == "positions":
        eng.set_positions(op[1], [(s, q, 70_000.0 if q > 0 else None) for s, q in op[2]])
    elif kind == "order":
        _, a, c, sym, side, q, market = op
        price = None if market else eng.market.quotes[sym].mark if sym in eng.market.quotes else 1.0
        eng.check_order(OrderRequest(a, c, sym, side, q, price, 2 if market else 1))
    elif kind == "batch":
        _, a, cs, sym = op
        eng.check_orders([OrderRequest(a, c, sym, Side.SELL, 0.5, None, 2) for c in cs])
    elif kind == "event":
        _, a, c, what, q, k = op
        acc = eng.accounts.get(a)
        order = acc.orders.get(c) if acc else None
        mark = eng.market.quotes[order.symbol].mark if order else 1.0
        body = {
            "ack": Acknowledged(f"V{k}"),
            "fill": Filled(q, mark * (1 + 0.01 * k), f"f{k}"),
            "fill_all": Filled(order.working if order else 1.0, mark, ""),
            "cancel": Cancelled(),
            "expire": Expired(),
            "reject": VenueRejected("venue says no"),
            "amend": Amended(q + (order.filled if order else 0.0), mark if k else None),
        }[what]
        eng.order_event(a, c, body)
    elif kind == "state":
        _, a, state = op
        eng.set_trading_state("" if a == "*" else a, a == "*", state, f"set {state.name}")
    elif kind == "market":
        _, move, iv_move, minutes, sourced = op
        t = max(eng.market.valuation_time, VT + timedelta(minutes=minutes))
        # cluster mode: the update came from the market stream (its seq is journaled too)
        eng.update_market(
            market_seq=eng.book.market_seq + 1 if sourced else 0,
            full_snapshot=False, valuation_time=t,
            index_usd={"BTC": SNAP.index_usd["BTC"] * (1 + move)},
            marks_usd={s: SNAP.marks_usd[s] * (1 + move) for s in ("BTC-PERPETUAL", "BTC_USDC-PERPETUAL")},
            ivs={s: v * (1 + iv_move) for s, v in list(SNAP.ivs.items())[:5]},
        )  # fmt: skip
    elif kind == "market_skipped":
        eng.skip_market(eng.book.market_seq + 1, "refused by this shard")
    elif kind == "clock":
        clock.now += op[1]
        eng.expire_reservations()
    elif kind == "snapshot":
        snaps.append(codec.encode_snapshot(eng.book, eng.seq))
    elif kind == "controls":
        eng.upsert_account(op[1], limits=Limits(max_open_orders=8, controls=CONTROLS[op[2]]))
    elif kind == "group":
        _, g, parent, k = op
        eng.upsert_group(g, None if parent == g else parent, CONTROLS[k] if k >= 0 else None)
    elif kind == "join":
        eng.set_account_group(op[1], op[2])
    elif kind == "day":
        clock.now += 86_400 * 10**9 if op[1] else 0
        eng.roll_trading_day()


def _fresh_book(model: str) -> Book:
    return Book(MODELS[model], RULES, make_config(), status_changes=deque())


def make_config():
    from riskgate.engine.types import EngineConfig

    return EngineConfig(decision_budget_ns=10**10, reservation_ttl_ns=TTL_NS,
                        idempotency_window=20)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("model", ["deribit", "span", "tims+stress"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(ops, min_size=5, max_size=40))
def test_replay_and_snapshot_rebuild_the_live_state(model: str, script: list) -> None:
    clock, sink = Clock(), MemorySink()
    eng = make_engine(
        model, clock=clock, sink=sink, reservation_ttl_ns=TTL_NS, idempotency_window=20
    )
    eng.upsert_account("A", collateral={"USD": 50_000.0})
    snaps: list[bytes] = []
    for op in script:
        # a refused command must change nothing (the replay below would differ)
        with contextlib.suppress(EngineError):
            _run(eng, clock, op, snaps)
    live = codec.state_hash(eng.book)
    assert [s.seq for s in sink.events] == list(range(1, eng.seq + 1))
    decoded = [codec.decode_event(codec.encode_event(s)) for s in sink.events]

    book = _fresh_book(model)
    assert replay(book, decoded).seq == eng.seq
    assert codec.state_hash(book) == live
    twin = RiskEngine(MODELS[model], RULES, make_config(), clock_ns=clock, wall_ns=clock)
    twin.restore(book, eng.seq)
    for a in eng.accounts:
        assert twin.account_view(a) == eng.account_view(a)
    for g in eng.book.controls.groups:
        assert twin.group_view(g) == eng.group_view(g)

    for snap in snaps[-2:]:
        restored = _fresh_book(model)
        after = codec.decode_snapshot(snap, restored)
        replay(restored, decoded, after_seq=after)
        assert codec.state_hash(restored) == live
