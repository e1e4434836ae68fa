"""The order lifecycle over gRPC, through the generated stub, against a real server.

The server starts empty (``demo=False``); each test loads what it needs through the admin
RPCs (UpdateMarket, UpsertAccount, SetPositions). Margin figures are checked against
:func:`~riskgate.engine.revaluation.full_revaluation` fed with the test's own copy of the
market and its own bookkeeping of positions, working orders and cash: initial margin with
open orders is the worse of (positions + all working buys) and (positions - all working
sells), docs/architecture.md §6.

Covered: check -> ack -> partial fill -> fill; check -> cancel / venue reject / venue
expiry; a never-acknowledged order's reservation expiring; the kill switch; REDUCING;
idempotent retries; MaxQuantity boundaries; the margin-status stream on market moves; bad
input to every RPC (the documented status code or reject reason, and no change of state).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
import pytest

from riskgate.domain.instruments import parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.engine.revaluation import full_revaluation
from riskgate.engine.state import PoolMargin
from riskgate.models import load_model
from riskgate.server.app import RiskGateServer
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import create_account, server_settings, serving

# ---- the reference market ------------------------------------------------------------------

VT = datetime(2030, 6, 3, tzinfo=UTC)  # fixed: the tests never depend on the wall clock
EXP = "28JUN30"
PERP = "BTC_USDC-PERPETUAL"  # linear perpetual: USD P&L, mark moves settle into USD cash
INV_PERP = "BTC-PERPETUAL"
ETH_PERP = "ETH-PERPETUAL"
FUT = f"BTC-{EXP}"
CALL = f"BTC-{EXP}-70000-C"  # inverse option
PUT = f"BTC-{EXP}-60000-P"
LIN_CALL = f"BTC_USDC-{EXP}-75000-C"  # linear option
EXPIRED = "BTC-1JAN30"  # expired at VT
INDEX = {"BTC": 70_000.0, "ETH": 3_500.0}
MARKS = {PERP: 70_005.0, INV_PERP: 70_010.0, ETH_PERP: 3_500.5, FUT: 70_300.0}
IVS = {CALL: 0.50, PUT: 0.60, LIN_CALL: 0.52}

MODEL = load_model("deribit")  # the server's default model, with its packaged parameters
MAX_BATCH = 50
T = 10.0  # deadline of every unary call

BUY, SELL = pb.SIDE_BUY, pb.SIDE_SELL
OK, MCALL, LIQ = pb.MARGIN_STATUS_OK, pb.MARGIN_STATUS_MARGIN_CALL, pb.MARGIN_STATUS_LIQUIDATION


@dataclass
class RefMarket:
    """The market as the tests sent it: the independent input of full_revaluation."""

    index: dict[str, float] = field(default_factory=lambda: dict(INDEX))
    marks: dict[str, float] = field(default_factory=lambda: dict(MARKS))
    ivs: dict[str, float] = field(default_factory=lambda: dict(IVS))

    def snapshot(self) -> MarketSnapshot:
        return MarketSnapshot(VT, dict(self.index), dict(self.marks), dict(self.ivs), 0.0)

    def send(
        self,
        stub: riskgate_pb2_grpc.RiskGateStub,
        *,
        full: bool = False,
        index: Mapping[str, float] | None = None,
        marks: Mapping[str, float] | None = None,
    ) -> pb.UpdateMarketResponse:
        req = pb.UpdateMarketRequest(
            full_snapshot=full,
            index_usd=dict(self.index if full else index or {}),
            marks_usd=dict(self.marks if full else marks or {}),
            ivs=dict(self.ivs if full else {}),
        )
        if full:
            req.valuation_time.FromDatetime(VT)
        resp = stub.UpdateMarket(req, timeout=T)
        self.index.update(index or {})
        self.marks.update(marks or {})
        return resp


def ref_pool(ref: RefMarket, holdings: Mapping[str, float], usd: float) -> PoolMargin:
    """The USD pool of a cross-margined account holding ``holdings`` and ``usd`` cash."""
    pools = full_revaluation(
        MODEL,
        ref.snapshot(),
        {parse_symbol(s): q for s, q in holdings.items() if q != 0.0},
        {"USD": usd},
        False,
    )
    assert list(pools) == ["USD"]
    return pools["USD"]


def at_limit(qty: float, limit: float, symbol: str) -> float:
    """The coin at the current mark that a working order on an inverse perpetual reserves:
    its USD notional at its limit price, qty x limit, over the mark (full revaluation, the
    reference, counts an inverse perpetual's coin at the mark)."""
    return qty * limit / MARKS[symbol]


def _plus(a: Mapping[str, float], b: Mapping[str, float], sign: float) -> dict[str, float]:
    out = dict(a)
    for s, q in b.items():
        out[s] = out.get(s, 0.0) + sign * q
    return out


def ref_margin(
    ref: RefMarket,
    positions: Mapping[str, float],
    usd: float,
    buys: Mapping[str, float] | None = None,
    sells: Mapping[str, float] | None = None,
) -> tuple[float, float, float]:
    """(IM, MM, equity) with open orders: the worse of positions + buys and positions - sells."""
    up = ref_pool(ref, _plus(positions, buys or {}, 1.0), usd)
    down = ref_pool(ref, _plus(positions, sells or {}, -1.0), usd)
    equity = ref_pool(ref, positions, usd).equity
    return (
        max(up.initial_margin, down.initial_margin),
        max(up.maintenance_margin, down.maintenance_margin),
        equity,
    )


def status_of(equity: float, im: float, mm: float) -> int:
    return LIQ if equity < mm else MCALL if equity < im else OK


# ---- servers, stubs and small helpers ------------------------------------------------------


@dataclass
class Env:
    server: RiskGateServer
    stub: riskgate_pb2_grpc.RiskGateStub
    ref: RefMarket


@contextmanager
def running_server(**overrides: object) -> Iterator[Env]:
    settings = server_settings(
        demo=False,
        log_level="warning",
        decision_budget_us=2_000_000.0,  # no latency-budget rejects on a loaded CI machine
        max_batch_orders=MAX_BATCH,
        **overrides,
    )
    with serving(settings) as srv, grpc.insecure_channel(srv.address) as channel:
        stub = riskgate_pb2_grpc.RiskGateStub(channel)
        ref = RefMarket()
        assert ref.send(stub, full=True).market_version == 1
        yield Env(srv, stub, ref)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with running_server() as e:
        yield e


def order(
    account: str,
    coid: str,
    symbol: str,
    side: int,
    qty: float,
    price: float | None = None,
    **extra: object,
) -> pb.Order:
    """A LIMIT order with ``price``, a MARKET order without."""
    o = pb.Order(
        account_id=account,
        client_order_id=coid,
        symbol=symbol,
        side=side,
        order_type=pb.ORDER_TYPE_MARKET if price is None else pb.ORDER_TYPE_LIMIT,
        quantity=qty,
        **extra,
    )
    if price is not None:
        o.price = price
    return o


def check(stub: riskgate_pb2_grpc.RiskGateStub, o: pb.Order) -> pb.Decision:
    return stub.CheckOrder(pb.CheckOrderRequest(order=o), timeout=T)


def whatif(stub: riskgate_pb2_grpc.RiskGateStub, o: pb.Order) -> pb.Decision:
    return stub.WhatIf(pb.CheckOrderRequest(order=o), timeout=T)


def get(stub: riskgate_pb2_grpc.RiskGateStub, account: str) -> pb.AccountView:
    return stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T)


def event(
    stub: riskgate_pb2_grpc.RiskGateStub, account: str, coid: str, **body: object
) -> pb.OrderEventAck:
    return stub.ReportOrderEvent(
        pb.OrderEvent(account_id=account, client_order_id=coid, **body), timeout=T
    )


def fill(qty: float, price: float, fill_id: str = "") -> dict[str, pb.Filled]:
    return {"filled": pb.Filled(fill_quantity=qty, fill_price=price, fill_id=fill_id)}


ACK = {"acknowledged": pb.VenueAcknowledged(venue_order_id="venue-1")}
CANCEL = {"cancelled": pb.Cancelled()}


def new_account(
    stub: riskgate_pb2_grpc.RiskGateStub,
    account: str,
    usd: float,
    positions: Mapping[str, float] | None = None,
) -> pb.AccountView:
    create_account(stub, account, usd, positions, T)
    return get(stub, account)


def pool(view: pb.AccountView) -> pb.PoolView:
    assert [p.currency for p in view.pools] == ["USD"]
    return view.pools[0]


def working(view: pb.AccountView) -> dict[str, pb.WorkingOrder]:
    return {o.client_order_id: o for o in view.working_orders}


def positions_of(view: pb.AccountView) -> dict[str, float]:
    return {p.symbol: p.quantity for p in view.positions}


def approx(x: float, rel: float = 1e-9) -> object:
    return pytest.approx(x, rel=rel, abs=1e-9)


def assert_figures(
    view: pb.AccountView,
    ref: RefMarket,
    positions: Mapping[str, float],
    usd: float,
    buys: Mapping[str, float] | None = None,
    sells: Mapping[str, float] | None = None,
) -> float:
    """The account's positions, cash, equity, IM and MM against the reference; returns IM."""
    im, mm, equity = ref_margin(ref, positions, usd, buys, sells)
    assert positions_of(view) == approx_dict({s: q for s, q in positions.items() if q})
    assert dict(view.collateral) == approx_dict({"USD": usd})
    p = pool(view)
    assert p.equity == approx(equity)
    assert p.initial_margin == approx(im)
    assert p.maintenance_margin == approx(mm)
    assert view.equity_usd == approx(equity)
    assert view.initial_margin_usd == approx(im)
    return im


def approx_dict(d: Mapping[str, float]) -> object:
    return pytest.approx(dict(d), rel=1e-12, abs=1e-9)


# ---- the order lifecycle -------------------------------------------------------------------


def test_check_ack_partial_fill_fill(env: Env) -> None:
    stub, ref, acc = env.stub, env.ref, "lc-fill"
    usd = 200_000.0
    positions = {CALL: -1.0, PERP: 0.5}
    view = new_account(stub, acc, usd, positions)
    assert_figures(view, ref, positions, usd)

    # a resting sell on another underlying, so both sides of the reservation are populated
    d = check(stub, order(acc, "lc-s", ETH_PERP, SELL, 5.0, 3_500.0))
    assert d.accepted, d.detail
    assert event(stub, acc, "lc-s", **ACK).order_status == pb.ORDER_STATUS_OPEN
    # 5 at 3,500 reserves 17,500 USD of notional: 17,500 / 3,500.5 coin at the mark
    sells = {ETH_PERP: at_limit(5.0, 3_500.0, ETH_PERP)}
    im_before = assert_figures(get(stub, acc), ref, positions, usd, sells=sells)
    assert im_before > ref_pool(ref, positions, usd).initial_margin  # the sell side binds

    # check: accepted, reserved, figures = full revaluation (positions + buys vs - sells)
    d = check(stub, order(acc, "lc-b", PERP, BUY, 2.0, 70_005.0))
    assert d.accepted and d.reason == pb.REJECT_REASON_UNSPECIFIED and not d.duplicate
    buys = {PERP: 2.0}
    im, mm, equity = ref_margin(ref, positions, usd, buys, sells)
    assert d.initial_margin_before == approx(im_before)
    assert d.initial_margin_after == approx(im)
    assert d.maintenance_margin_after == approx(mm)
    assert d.equity_before == approx(equity) and d.equity_after == approx(equity)
    assert d.pool_currency == "USD" and d.margin_method == pb.MARGIN_METHOD_PORTFOLIO
    view = get(stub, acc)
    assert d.market_version == view.market_version and d.compute_ns > 0
    assert_figures(view, ref, positions, usd, buys, sells)
    w = working(view)
    assert set(w) == {"lc-s", "lc-b"}
    assert (w["lc-b"].status, w["lc-b"].side, w["lc-b"].symbol) == (
        pb.ORDER_STATUS_PENDING_ACK,
        BUY,
        PERP,
    )
    assert (w["lc-b"].quantity, w["lc-b"].working_quantity) == (2.0, 2.0)
    assert w["lc-b"].price == 70_005.0 and w["lc-b"].accepted_time.seconds > 0

    # ack: the order rests at the venue; nothing about margin changes
    a = event(stub, acc, "lc-b", **ACK)
    assert (a.order_status, a.filled_quantity, a.working_quantity) == (
        pb.ORDER_STATUS_OPEN,
        0.0,
        2.0,
    )
    assert not a.duplicate
    view = get(stub, acc)
    assert working(view)["lc-b"].status == pb.ORDER_STATUS_OPEN
    assert working(view)["lc-b"].venue_order_id == "venue-1"
    assert_figures(view, ref, positions, usd, buys, sells)
    assert event(stub, acc, "lc-b", **ACK).order_status == pb.ORDER_STATUS_OPEN  # repeated ack

    # partial fill below the mark: working -> position, the difference to the mark -> cash
    a = event(stub, acc, "lc-b", **fill(0.5, 70_000.0, "t-1"))
    assert (a.order_status, a.filled_quantity, a.working_quantity) == (
        pb.ORDER_STATUS_PARTIALLY_FILLED,
        0.5,
        1.5,
    )
    positions[PERP] += 0.5
    buys[PERP] -= 0.5
    usd += 0.5 * (ref.marks[PERP] - 70_000.0)
    view = get(stub, acc)
    assert_figures(view, ref, positions, usd, buys, sells)
    wb = working(view)["lc-b"]
    assert (wb.status, wb.filled_quantity, wb.working_quantity, wb.quantity) == (
        pb.ORDER_STATUS_PARTIALLY_FILLED,
        0.5,
        1.5,
        2.0,
    )

    # the same fill reported again (same fill id) changes nothing
    again = event(stub, acc, "lc-b", **fill(0.5, 70_000.0, "t-1"))
    assert again.duplicate and again.working_quantity == 1.5
    assert get(stub, acc) == view

    # the rest fills above the mark: the order ends and leaves the working orders
    a = event(stub, acc, "lc-b", **fill(1.5, 70_010.0, "t-2"))
    assert (a.order_status, a.filled_quantity, a.working_quantity) == (
        pb.ORDER_STATUS_FILLED,
        2.0,
        0.0,
    )
    positions[PERP] += 1.5
    del buys[PERP]
    usd += 1.5 * (ref.marks[PERP] - 70_010.0)
    view = get(stub, acc)
    assert set(working(view)) == {"lc-s"}
    assert_figures(view, ref, positions, usd, buys, sells)
    assert positions_of(view)[PERP] == approx(2.5)


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        (CANCEL, pb.ORDER_STATUS_CANCELLED),
        ({"venue_rejected": pb.VenueRejected(reason="post-only")}, pb.ORDER_STATUS_VENUE_REJECTED),
        ({"expired": pb.Expired()}, pb.ORDER_STATUS_EXPIRED),
    ],
    ids=["cancelled", "venue_rejected", "expired"],
)
def test_check_then_end_releases_the_reservation(
    env: Env, ending: dict[str, object], status: int
) -> None:
    stub, ref = env.stub, env.ref
    acc = f"lc-end-{next(iter(ending))}"
    usd, positions = 100_000.0, {PERP: 1.0, PUT: -2.0}
    before = new_account(stub, acc, usd, positions)
    im0 = assert_figures(before, ref, positions, usd)

    d = check(stub, order(acc, "o-1", PERP, BUY, 3.0, 70_000.0))
    assert d.accepted, d.detail
    assert d.initial_margin_before == approx(im0)
    im1 = assert_figures(get(stub, acc), ref, positions, usd, buys={PERP: 3.0})
    assert d.initial_margin_after == approx(im1) and im1 != approx(im0)

    a = event(stub, acc, "o-1", **ending)
    assert (a.order_status, a.working_quantity) == (status, 0.0)
    after = get(stub, acc)
    assert not after.working_orders
    assert pool(after).initial_margin == approx(im0)
    assert_figures(after, ref, positions, usd)
    # the same terminal event again is a duplicate; anything else on an ended order is refused
    assert event(stub, acc, "o-1", **ending).duplicate
    with pytest.raises(grpc.RpcError) as err:
        event(stub, acc, "o-1", **fill(1.0, 70_000.0, "late"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert get(stub, acc) == after


def test_never_acknowledged_order_expires() -> None:
    with running_server(reservation_ttl_s=0.3) as e:
        stub, ref, acc = e.stub, e.ref, "ttl-1"
        usd = 100_000.0
        new_account(stub, acc, usd)
        # acknowledged, and filled-without-ack orders are at the venue: they never expire
        assert check(stub, order(acc, "acked", PERP, BUY, 2.0, 70_000.0)).accepted
        assert event(stub, acc, "acked", **ACK).order_status == pb.ORDER_STATUS_OPEN
        assert check(stub, order(acc, "part-filled", ETH_PERP, SELL, 4.0, 3_500.0)).accepted
        event(stub, acc, "part-filled", **fill(1.0, 3_500.5, "f-1"))
        # (an inverse perpetual filled at its mark moves no cash)
        rest = {
            "positions": {ETH_PERP: -1.0},
            "buys": {PERP: 2.0},
            "sells": {ETH_PERP: at_limit(3.0, 3_500.0, ETH_PERP)},
        }
        im0 = assert_figures(get(stub, acc), ref, usd=usd, **rest)

        t_accept = time.monotonic()
        d = check(stub, order(acc, "never-acked", PERP, BUY, 1.0, 70_000.0))
        assert d.accepted and d.initial_margin_after > im0
        view = get(stub, acc)
        if time.monotonic() - t_accept < 0.25:  # not expired yet (a slow machine may miss it)
            assert working(view)["never-acked"].status == pb.ORDER_STATUS_PENDING_ACK
            assert pool(view).initial_margin == approx(d.initial_margin_after)

        deadline = time.monotonic() + 5.0
        while "never-acked" in working(get(stub, acc)) and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - t_accept
        assert elapsed >= 0.3
        time.sleep(max(0.0, 1.0 - elapsed))  # ~1 s in all: the other orders outlive it
        view = get(stub, acc)
        assert set(working(view)) == {"acked", "part-filled"}
        assert working(view)["part-filled"].working_quantity == 3.0
        assert pool(view).initial_margin == approx(im0)  # the reservation is released
        assert_figures(view, ref, usd=usd, **rest)
        # a late acknowledgement cannot revive it
        with pytest.raises(grpc.RpcError) as err:
            event(stub, acc, "never-acked", **ACK)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "RESERVATION_EXPIRED" in err.value.details()
        assert get(stub, acc) == view


# ---- trading states ------------------------------------------------------------------------


def _set_state(
    stub: riskgate_pb2_grpc.RiskGateStub,
    state: int,
    account: str = "",
    all_accounts: bool = False,
    reason: str = "",
) -> pb.SetTradingStateResponse:
    return stub.SetTradingState(
        pb.SetTradingStateRequest(
            account_id=account, all_accounts=all_accounts, state=state, reason=reason
        ),
        timeout=T,
    )


def test_kill_switch_halts_every_account_then_resumes(env: Env) -> None:
    stub = env.stub
    for acc in ("ks-1", "ks-2"):
        new_account(stub, acc, 100_000.0, {PERP: 1.0})
    assert check(stub, order("ks-1", "ks-w", PERP, BUY, 0.5, 70_000.0)).accepted
    event(stub, "ks-1", "ks-w", **ACK)
    why = "risk desk: kill switch drill"
    try:
        resp = _set_state(stub, pb.TRADING_STATE_HALTED, all_accounts=True, reason=why)
        assert resp.accounts_affected >= 2
        new_account(stub, "ks-3", 100_000.0)  # created while halted: starts halted
        for acc in ("ks-1", "ks-2", "ks-3"):
            view = get(stub, acc)
            assert view.trading_state == pb.TRADING_STATE_HALTED
            assert view.trading_state_reason == why
            for side in (BUY, SELL):  # reducing or not, nothing trades
                o = order(acc, f"{acc}-halted-{side}", PERP, side, 0.1, 70_000.0)
                for d in (check(stub, o), whatif(stub, o)):
                    assert not d.accepted and d.reason == pb.REJECT_REASON_ACCOUNT_HALTED
                    assert d.context.field == "trading_state" and why in d.detail
            mq = stub.MaxQuantity(pb.MaxQuantityRequest(account_id=acc, symbol=PERP), timeout=T)
            assert (mq.max_buy_quantity, mq.max_sell_quantity) == (0.0, 0.0)
            assert mq.buy_limited_by == mq.sell_limited_by == pb.REJECT_REASON_ACCOUNT_HALTED
            assert len(get(stub, acc).working_orders) == len(view.working_orders)
        # cancels still go through (they only reduce risk)
        assert event(stub, "ks-1", "ks-w", **CANCEL).order_status == pb.ORDER_STATUS_CANCELLED
    finally:
        resp = _set_state(stub, pb.TRADING_STATE_ACTIVE, all_accounts=True, reason="resumed")
    assert resp.accounts_affected >= 3
    for acc in ("ks-1", "ks-2", "ks-3"):
        assert get(stub, acc).trading_state == pb.TRADING_STATE_ACTIVE
        assert check(stub, order(acc, f"{acc}-after", PERP, BUY, 0.1, 70_000.0)).accepted
    new_account(stub, "ks-4", 100_000.0)
    assert get(stub, "ks-4").trading_state == pb.TRADING_STATE_ACTIVE

    # one account only
    assert _set_state(stub, pb.TRADING_STATE_HALTED, account="ks-2").accounts_affected == 1
    try:
        assert not check(stub, order("ks-2", "ks-2-one", PERP, BUY, 0.1, 70_000.0)).accepted
        assert check(stub, order("ks-1", "ks-1-one", PERP, BUY, 0.1, 70_000.0)).accepted
    finally:
        _set_state(stub, pb.TRADING_STATE_ACTIVE, account="ks-2")


def test_reducing_accepts_only_position_reducing_orders(env: Env) -> None:
    stub, acc = env.stub, "red-1"
    new_account(stub, acc, 100_000.0, {PERP: 1.0, ETH_PERP: -2.0})
    _set_state(stub, pb.TRADING_STATE_REDUCING, account=acc, reason="margin call")
    try:

        def decide(coid: str, symbol: str, side: int, qty: float) -> pb.Decision:
            return check(stub, order(acc, coid, symbol, side, qty, MARKS[symbol]))

        rejected = [
            decide("r-buy", PERP, BUY, 0.1),  # adds to the long
            decide("r-flip", PERP, SELL, 1.5),  # more than the position: flips it
            decide("r-new", FUT, SELL, 0.1),  # opens a position
            decide("r-eth-sell", ETH_PERP, SELL, 0.1),  # adds to the short
        ]
        for d in rejected:
            assert not d.accepted and d.reason == pb.REJECT_REASON_ACCOUNT_REDUCING_ONLY, d
            assert d.context.field == "trading_state"
        assert decide("r-1", PERP, SELL, 0.6).accepted
        # working sells count: 0.6 + 0.5 would take the long past flat
        d = decide("r-2", PERP, SELL, 0.5)
        assert not d.accepted and d.reason == pb.REJECT_REASON_ACCOUNT_REDUCING_ONLY
        assert decide("r-3", PERP, SELL, 0.4).accepted  # exactly to flat
        assert decide("r-eth-buy", ETH_PERP, BUY, 2.0).accepted
        assert set(working(get(stub, acc))) == {"r-1", "r-3", "r-eth-buy"}
        assert get(stub, acc).trading_state == pb.TRADING_STATE_REDUCING
    finally:
        _set_state(stub, pb.TRADING_STATE_ACTIVE, account=acc)
    assert check(stub, order(acc, "r-active", PERP, BUY, 0.1, 70_000.0)).accepted


# ---- idempotent retries --------------------------------------------------------------------


def test_idempotent_retries(env: Env) -> None:
    stub, ref, acc = env.stub, env.ref, "idem-1"
    usd = 100_000.0
    new_account(stub, acc, usd)
    o = order(acc, "i-1", PERP, BUY, 1.0, 70_000.0)
    first = check(stub, o)
    assert first.accepted and not first.duplicate
    view = get(stub, acc)
    assert_figures(view, ref, {}, usd, buys={PERP: 1.0})  # reserved once

    # same id, same content: the original decision, nothing reserved again
    for retry in (
        check(stub, o),
        stub.CheckOrders(pb.CheckOrdersRequest(orders=[o, o]), timeout=T),
    ):
        for d in getattr(retry, "decisions", [retry]):
            assert d.duplicate and d.accepted
            assert d.initial_margin_after == first.initial_margin_after
            assert d.initial_margin_before == first.initial_margin_before
            assert (d.account_id, d.client_order_id) == (acc, "i-1")
    assert get(stub, acc) == view

    # same id, different content: a reject naming the field, nothing changed
    variants = {
        "quantity": order(acc, "i-1", PERP, BUY, 2.0, 70_000.0),
        "price": order(acc, "i-1", PERP, BUY, 1.0, 70_001.0),
        "side": order(acc, "i-1", PERP, SELL, 1.0, 70_000.0),
        "symbol": order(acc, "i-1", FUT, BUY, 1.0, 70_000.0),
        "order_type": order(acc, "i-1", PERP, BUY, 1.0),
        "reduce_only": order(acc, "i-1", PERP, BUY, 1.0, 70_000.0, reduce_only=True),
    }
    for what, variant in variants.items():
        d = check(stub, variant)
        assert not d.accepted, what
        assert d.reason == pb.REJECT_REASON_DUPLICATE_ORDER_ID_MISMATCH, what
        assert d.context.field == "client_order_id" and not d.duplicate
    assert get(stub, acc) == view
    assert check(stub, o).duplicate  # the original is still the one remembered

    # a rejected order retried: its original reject, still nothing reserved
    big = order(acc, "i-big", PERP, BUY, 1_000.0, 70_000.0)
    r1 = check(stub, big)
    assert not r1.accepted and r1.reason == pb.REJECT_REASON_INSUFFICIENT_MARGIN
    r2 = check(stub, big)
    assert r2.duplicate and not r2.accepted and r2.reason == r1.reason
    assert get(stub, acc) == view

    # once cancelled, a retry of the same order still reserves nothing
    event(stub, acc, "i-1", **CANCEL)
    d = check(stub, o)
    assert d.duplicate and d.accepted
    view = get(stub, acc)
    assert not view.working_orders
    assert_figures(view, ref, {}, usd)


# ---- max quantity --------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", [PERP, LIN_CALL, CALL])
@pytest.mark.parametrize("side", [BUY, SELL], ids=["buy", "sell"])
def test_max_quantity_is_the_exact_boundary(env: Env, symbol: str, side: int) -> None:
    stub, ref = env.stub, env.ref
    acc = f"mq-{symbol}-{side}"
    usd = 50_000.0
    new_account(stub, acc, usd)  # fresh: no positions, no orders
    mq = stub.MaxQuantity(pb.MaxQuantityRequest(account_id=acc, symbol=symbol), timeout=T)
    assert (mq.account_id, mq.symbol) == (acc, symbol)
    assert mq.market_version == get(stub, acc).market_version
    q = mq.max_buy_quantity if side == BUY else mq.max_sell_quantity
    other_q = mq.max_sell_quantity if side == BUY else mq.max_buy_quantity
    limited = mq.buy_limited_by if side == BUY else mq.sell_limited_by
    assert limited == pb.REJECT_REASON_INSUFFICIENT_MARGIN and q > 0.0
    sign = 1.0 if side == BUY else -1.0
    # independently: at q the initial margin is the equity (the cash), just above it is more
    assert ref_pool(ref, {symbol: sign * q}, usd).initial_margin == approx(usd, rel=1e-9)
    assert ref_pool(ref, {symbol: sign * q * 1.000001}, usd).initial_margin > usd

    view = get(stub, acc)
    big = check(stub, order(acc, "too-big", symbol, side, q * 1.000001))
    assert not big.accepted and big.reason == pb.REJECT_REASON_INSUFFICIENT_MARGIN
    assert big.context.field == "initial_margin" and big.context.unit == "USD"
    assert big.context.limit_value == approx(usd)
    assert big.context.actual_value > usd
    assert get(stub, acc) == view  # a reject reserves nothing

    assert whatif(stub, order(acc, "", symbol, side, q)).accepted
    d = check(stub, order(acc, "exact", symbol, side, q))
    assert d.accepted, d.detail
    assert d.initial_margin_after <= d.equity_before
    assert d.initial_margin_after == approx(usd, rel=1e-9)
    view = get(stub, acc)
    assert working(view)["exact"].working_quantity == q
    assert pool(view).initial_margin == approx(usd, rel=1e-9)

    # that side is now used up; the other side reserves separately and is untouched
    mq2 = stub.MaxQuantity(pb.MaxQuantityRequest(account_id=acc, symbol=symbol), timeout=T)
    left = mq2.max_buy_quantity if side == BUY else mq2.max_sell_quantity
    assert left <= q * 1e-6
    assert (mq2.max_sell_quantity if side == BUY else mq2.max_buy_quantity) == approx(other_q)
    event(stub, acc, "exact", **CANCEL)


# ---- the margin status stream --------------------------------------------------------------


def test_margin_status_stream_on_market_moves(env: Env) -> None:
    stub, ref, acc = env.stub, env.ref, "stream-1"
    usd, positions = 13_000.0, {PERP: 1.0}
    new_account(stub, acc, usd, positions)
    im, mm, equity = ref_margin(ref, positions, usd)
    assert status_of(equity, im, mm) == OK  # the set-up, checked independently
    base_index, base_marks = dict(ref.index), dict(ref.marks)
    btc_marks = [s for s in base_marks if s.startswith("BTC")]
    stream = stub.StreamMarginStatus(
        pb.StreamMarginStatusRequest(account_ids=[acc], include_current=True), timeout=30
    )
    try:
        current = next(stream)
        assert (current.account_id, current.previous_status, current.status) == (
            acc,
            pb.MARGIN_STATUS_UNSPECIFIED,
            OK,
        )
        assert current.pool_currency == "USD"
        assert (current.equity, current.initial_margin, current.maintenance_margin) == (
            approx(equity),
            approx(im),
            approx(mm),
        )

        previous = OK
        for factor, expected in ((0.98, MCALL), (0.90, LIQ), (1.0, OK)):
            m0 = ref.marks[PERP]
            resp = ref.send(
                stub,
                index={"BTC": base_index["BTC"] * factor},
                marks={s: base_marks[s] * factor for s in btc_marks},
            )
            usd += positions[PERP] * (ref.marks[PERP] - m0)  # the mark move settles in cash
            im, mm, equity = ref_margin(ref, positions, usd)
            assert status_of(equity, im, mm) == expected  # the set-up, independently
            ev = next(stream)
            assert (ev.account_id, ev.previous_status, ev.status) == (acc, previous, expected)
            assert ev.market_version == resp.market_version
            assert ev.pool_currency == "USD"
            assert ev.equity == approx(equity)
            assert ev.initial_margin == approx(im)
            assert ev.maintenance_margin == approx(mm)
            assert ev.time.seconds > 0
            view = get(stub, acc)
            assert view.margin_status == expected and pool(view).margin_status == expected
            assert dict(view.collateral) == approx_dict({"USD": usd})
            previous = expected
        assert usd == approx(13_000.0)

        # a change not caused by the market: a reconciliation that takes the account under
        version = resp.market_version
        stub.SetPositions(
            pb.SetPositionsRequest(
                account_id=acc, positions=[pb.Position(symbol=PERP, quantity=3)]
            ),
            timeout=T,
        )
        im, mm, equity = ref_margin(ref, {PERP: 3.0}, usd)
        ev = next(stream)
        assert (ev.previous_status, ev.status) == (OK, status_of(equity, im, mm))
        assert ev.status == LIQ and ev.market_version == version
        assert (ev.equity, ev.initial_margin) == (approx(equity), approx(im))
        stub.SetPositions(pb.SetPositionsRequest(account_id=acc), timeout=T)
        ev = next(stream)
        assert (ev.previous_status, ev.status) == (LIQ, OK)
    finally:
        stream.cancel()
        if ref.marks != base_marks:
            ref.send(stub, index=base_index, marks=base_marks)


# ---- figures that must name the binding scenario -------------------------------------------


def test_pool_worst_scenario_is_the_one_setting_its_initial_margin(env: Env) -> None:
    stub, ref, acc = env.stub, env.ref, "scen-pool"
    new_account(stub, acc, 50_000.0)
    assert check(stub, order(acc, "s-1", PERP, SELL, 1.0, 70_005.0)).accepted
    short = ref_pool(ref, {PERP: -1.0}, 50_000.0)  # the binding side: positions - sells
    p = pool(get(stub, acc))
    assert p.initial_margin == approx(short.initial_margin)
    assert p.worst_scenario.loss == approx(short.worst_case)
    assert p.worst_scenario.index == short.worst_scenario["cell"]
    assert p.worst_scenario.price_move_fraction > 0.0  # a short loses when the price rises


def test_decision_worst_scenario_is_the_one_setting_initial_margin_after(env: Env) -> None:
    stub, ref, acc = env.stub, env.ref, "scen-dec"
    new_account(stub, acc, 50_000.0)
    assert check(stub, order(acc, "s-1", PERP, SELL, 1.0, 70_005.0)).accepted
    d = check(stub, order(acc, "b-1", PERP, BUY, 0.5, 70_005.0))
    short = ref_pool(ref, {PERP: -1.0}, 50_000.0)  # still the worse side after the buy
    assert d.accepted
    assert d.initial_margin_after == approx(short.initial_margin)
    assert d.worst_scenario.loss == approx(short.worst_case)
    assert d.worst_scenario.index == short.worst_scenario["cell"]


# ---- bad input: a status code or a reject, and no change of state ---------------------------

BAD = "bad-1"
NEW = "bad-new"  # must never come into existence


@pytest.fixture(scope="module")
def bad_account(env: Env) -> str:
    """An account with positions, a partly filled working order and an ended order."""
    stub = env.stub
    new_account(stub, BAD, 100_000.0, {PERP: 1.0, CALL: -1.0})
    assert check(stub, order(BAD, "bad-w", PERP, BUY, 1.0, 70_005.0)).accepted
    event(stub, BAD, "bad-w", **ACK)
    event(stub, BAD, "bad-w", **fill(0.25, 70_005.0, "bad-f1"))
    assert check(stub, order(BAD, "bad-done", ETH_PERP, SELL, 1.0, 3_500.0)).accepted
    assert (
        event(stub, BAD, "bad-done", **fill(1.0, 3_500.0, "bad-f2")).order_status
        == pb.ORDER_STATUS_FILLED
    )
    return BAD


@contextmanager
def state_unchanged(stub: riskgate_pb2_grpc.RiskGateStub) -> Iterator[None]:
    before = get(stub, BAD)
    yield
    assert get(stub, BAD) == before
    with pytest.raises(grpc.RpcError) as err:
        get(stub, NEW)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def _ev(coid: str = "bad-w", account: str = BAD, **body: object) -> pb.OrderEvent:
    return pb.OrderEvent(account_id=account, client_order_id=coid, **body)


def _amend(**fields: float) -> dict[str, pb.Amended]:
    return {"amended": pb.Amended(**fields)}


def _upsert(account: str = BAD, **fields: object) -> pb.UpsertAccountRequest:
    return pb.UpsertAccountRequest(account_id=account, **fields)


def _positions(*pairs: tuple[str, float], account: str = BAD) -> pb.SetPositionsRequest:
    # a valid first entry: a partly applied request would show in GetAccount
    entries = [pb.Position(symbol=PERP, quantity=5.0)]
    entries += [pb.Position(symbol=s, quantity=q) for s, q in pairs]
    return pb.SetPositionsRequest(account_id=account, positions=entries)


def _market(full: bool = False, when: datetime | None = None, **maps: object):
    req = pb.UpdateMarketRequest(full_snapshot=full, **maps)
    if when is not None:
        req.valuation_time.FromDatetime(when)
    return req


def _mq(account: str = BAD, symbol: str = PERP, price: float | None = None):
    req = pb.MaxQuantityRequest(account_id=account, symbol=symbol)
    if price is not None:
        req.price = price
    return req


NAN, INF = math.nan, math.inf
C = grpc.StatusCode
FULL_MARKET = dict(index_usd=INDEX, marks_usd=MARKS, ivs=IVS)


def _oversize() -> pb.CheckOrdersRequest:
    orders = [order(BAD, f"over-{k}", PERP, BUY, 0.001) for k in range(MAX_BATCH + 1)]
    return pb.CheckOrdersRequest(orders=orders)


def case(name: str, rpc: str, request: Callable[[], object], code: C, names: str) -> object:
    """One bad request: the status code it must get and a word its message must contain."""
    return pytest.param(rpc, request, code, names, id=name)


# fmt: off
ERRORS = [
    # order path: problems with the request as a whole
    case("check-missing-order", "CheckOrder", pb.CheckOrderRequest, C.INVALID_ARGUMENT, "order"),
    case("whatif-missing-order", "WhatIf", pb.CheckOrderRequest, C.INVALID_ARGUMENT, "order"),
    case("batch-empty", "CheckOrders", pb.CheckOrdersRequest, C.INVALID_ARGUMENT, "orders"),
    case("batch-oversize", "CheckOrders", _oversize, C.INVALID_ARGUMENT, "orders"),
    # max quantity
    case("mq-unknown-account", "MaxQuantity", lambda: _mq("nobody"), C.NOT_FOUND, "account_id"),
    case("mq-no-account", "MaxQuantity", lambda: _mq(""), C.INVALID_ARGUMENT, "account_id"),
    case("mq-no-symbol", "MaxQuantity", lambda: _mq(symbol=""), C.INVALID_ARGUMENT, "symbol"),
    case("mq-unknown-symbol", "MaxQuantity", lambda: _mq(symbol="SOL-PERPETUAL"),
         C.NOT_FOUND, "symbol"),
    case("mq-malformed-symbol", "MaxQuantity", lambda: _mq(symbol="BTC!"),
         C.INVALID_ARGUMENT, "symbol"),
    case("mq-expired", "MaxQuantity", lambda: _mq(symbol=EXPIRED), C.FAILED_PRECONDITION, "symbol"),
    case("mq-nan-price", "MaxQuantity", lambda: _mq(price=NAN), C.INVALID_ARGUMENT, "price"),
    case("mq-negative-price", "MaxQuantity", lambda: _mq(price=-1.0), C.INVALID_ARGUMENT, "price"),
    # order events
    case("event-missing", "ReportOrderEvent", lambda: _ev(), C.INVALID_ARGUMENT, "event"),
    case("event-unknown-order", "ReportOrderEvent", lambda: _ev("nope", **ACK), C.NOT_FOUND, "nope"),
    case("event-unknown-account", "ReportOrderEvent", lambda: _ev(account="nobody", **CANCEL),
         C.NOT_FOUND, "account_id"),
    case("event-no-client-order-id", "ReportOrderEvent", lambda: _ev("", **CANCEL),
         C.INVALID_ARGUMENT, "client_order_id"),
    case("fill-above-working", "ReportOrderEvent", lambda: _ev(**fill(0.8, 70_000.0, "too-much")),
         C.FAILED_PRECONDITION, "fill_quantity"),
    case("fill-nan-price", "ReportOrderEvent", lambda: _ev(**fill(0.1, NAN, "nan")),
         C.INVALID_ARGUMENT, "fill_price"),
    case("fill-zero", "ReportOrderEvent", lambda: _ev(**fill(0.0, 70_000.0)),
         C.INVALID_ARGUMENT, "fill_quantity"),
    case("fill-ended-order", "ReportOrderEvent", lambda: _ev("bad-done", **fill(0.1, 3_500.0, "x")),
         C.FAILED_PRECONDITION, "FILLED"),
    case("cancel-ended-order", "ReportOrderEvent", lambda: _ev("bad-done", **CANCEL),
         C.FAILED_PRECONDITION, "FILLED"),
    case("amend-nothing", "ReportOrderEvent", lambda: _ev(**_amend()), C.INVALID_ARGUMENT, "amended"),
    case("amend-below-filled", "ReportOrderEvent", lambda: _ev(**_amend(new_quantity=0.1)),
         C.FAILED_PRECONDITION, "new_quantity"),
    case("amend-nan-price", "ReportOrderEvent",
         lambda: _ev(**_amend(new_quantity=2.0, new_price=NAN)), C.INVALID_ARGUMENT, "new_price"),
    # accounts
    case("upsert-nan-collateral", "UpsertAccount",
         lambda: _upsert(collateral={"USD": NAN}, limits=pb.Limits(max_order_quantity=1.0)),
         C.INVALID_ARGUMENT, "collateral"),
    case("upsert-new-nan-collateral", "UpsertAccount",
         lambda: _upsert(NEW, collateral={"USD": 1.0, "BTC": NAN}), C.INVALID_ARGUMENT, "collateral"),
    case("upsert-inf-collateral", "UpsertAccount", lambda: _upsert(collateral={"USD": INF}),
         C.INVALID_ARGUMENT, "collateral"),
    case("upsert-unknown-currency", "UpsertAccount",
         lambda: _upsert(collateral={"USD": 5.0, "XYZ": 1.0}), C.INVALID_ARGUMENT, "XYZ"),
    case("upsert-no-account", "UpsertAccount", lambda: _upsert(""), C.INVALID_ARGUMENT, "account_id"),
    case("upsert-negative-limit", "UpsertAccount",
         lambda: _upsert(NEW, limits=pb.Limits(max_order_quantity=-1.0)),
         C.INVALID_ARGUMENT, "max_order_quantity"),
    case("upsert-nan-position-limit", "UpsertAccount",
         lambda: _upsert(limits=pb.Limits(position_limits={PERP: NAN})),
         C.INVALID_ARGUMENT, "position_limits"),
    case("upsert-zero-open-orders", "UpsertAccount",
         lambda: _upsert(limits=pb.Limits(max_open_orders=0)), C.INVALID_ARGUMENT, "max_open_orders"),
    case("upsert-unknown-pool-mode", "UpsertAccount", lambda: _upsert(pool_mode=99),
         C.INVALID_ARGUMENT, "pool_mode"),
    case("upsert-unknown-method", "UpsertAccount", lambda: _upsert(NEW, margin_method=99),
         C.INVALID_ARGUMENT, "margin_method"),
    case("upsert-pool-mode-with-positions", "UpsertAccount",
         lambda: _upsert(collateral={"USD": 1.0}, margin_method=pb.MARGIN_METHOD_RULES_BASED,
                         pool_mode=pb.MARGIN_POOL_MODE_SEGREGATED),
         C.FAILED_PRECONDITION, "pool_mode"),
    # positions (each request starts with a valid entry: a partly applied one would show)
    case("positions-unknown-account", "SetPositions", lambda: _positions(account="nobody"),
         C.NOT_FOUND, "account_id"),
    case("positions-unknown-coin", "SetPositions", lambda: _positions(("SOL-PERPETUAL", 1.0)),
         C.NOT_FOUND, "SOL"),
    case("positions-unlisted", "SetPositions", lambda: _positions(("ETH-28JUN30", 1.0)),
         C.NOT_FOUND, "symbol"),
    case("positions-expired", "SetPositions", lambda: _positions((EXPIRED, 1.0)),
         C.NOT_FOUND, "symbol"),
    case("positions-malformed", "SetPositions", lambda: _positions(("???", 1.0)),
         C.INVALID_ARGUMENT, "symbol"),
    case("positions-empty-symbol", "SetPositions", lambda: _positions(("", 1.0)),
         C.INVALID_ARGUMENT, "symbol"),
    case("positions-nan", "SetPositions", lambda: _positions((FUT, NAN)),
         C.INVALID_ARGUMENT, "quantity"),
    case("positions-inf", "SetPositions", lambda: _positions((FUT, -INF)),
         C.INVALID_ARGUMENT, "quantity"),
    case("positions-twice", "SetPositions", lambda: _positions((PERP, 1.0)),
         C.INVALID_ARGUMENT, "twice"),
    case("positions-negative-avg-price", "SetPositions",
         lambda: pb.SetPositionsRequest(account_id=BAD, positions=[
             pb.Position(symbol=FUT, quantity=1.0, avg_price=-5.0)]),
         C.INVALID_ARGUMENT, "avg_price"),
    # trading state
    case("state-missing", "SetTradingState", lambda: _state(BAD, 0), C.INVALID_ARGUMENT, "state"),
    case("state-unknown", "SetTradingState", lambda: _state(BAD, 99), C.INVALID_ARGUMENT, "state"),
    case("state-both-targets", "SetTradingState", lambda: _state(BAD, all_accounts=True),
         C.INVALID_ARGUMENT, "account_id"),
    case("state-no-target", "SetTradingState", lambda: _state(""), C.INVALID_ARGUMENT, "account_id"),
    case("state-unknown-account", "SetTradingState", lambda: _state("nobody"),
         C.NOT_FOUND, "nobody"),
    # market data
    case("market-negative-index", "UpdateMarket", lambda: _market(index_usd={"BTC": -7e4}),
         C.INVALID_ARGUMENT, "index"),
    case("market-nan-mark", "UpdateMarket", lambda: _market(marks_usd={PERP: NAN}),
         C.INVALID_ARGUMENT, "marks"),
    case("market-zero-iv", "UpdateMarket", lambda: _market(ivs={CALL: 0.0}),
         C.INVALID_ARGUMENT, "ivs"),
    case("market-iv-for-a-future", "UpdateMarket", lambda: _market(ivs={FUT: 0.5}),
         C.INVALID_ARGUMENT, "ivs"),
    case("market-mark-without-index", "UpdateMarket",
         lambda: _market(marks_usd={"SOL-PERPETUAL": 150.0}), C.INVALID_ARGUMENT, "SOL"),
    case("market-malformed-symbol", "UpdateMarket", lambda: _market(marks_usd={"NOT A SYMBOL": 1.0}),
         C.INVALID_ARGUMENT, "marks"),
    case("market-nan-rate", "UpdateMarket", lambda: _market(rate=NAN), C.INVALID_ARGUMENT, "rate"),
    case("market-full-without-time", "UpdateMarket", lambda: _market(True, **FULL_MARKET),
         C.INVALID_ARGUMENT, "valuation_time"),
    case("market-older-time", "UpdateMarket",
         lambda: _market(True, datetime(2030, 6, 2, tzinfo=UTC), **FULL_MARKET),
         C.FAILED_PRECONDITION, "valuation_time"),
    case("market-drops-held-instruments", "UpdateMarket",
         lambda: _market(True, VT, index_usd=INDEX, marks_usd={FUT: 70_300.0}),
         C.FAILED_PRECONDITION, "reconcile"),
    # queries
    case("get-unknown-account", "GetAccount", lambda: pb.GetAccountRequest(account_id="nobody"),
         C.NOT_FOUND, "nobody"),
    case("get-no-account", "GetAccount", pb.GetAccountRequest, C.INVALID_ARGUMENT, "account_id"),
    case("stream-unknown-account", "StreamMarginStatus",
         lambda: pb.StreamMarginStatusRequest(account_ids=[BAD, "nobody"]), C.NOT_FOUND, "nobody"),
    case("stream-empty-account", "StreamMarginStatus",
         lambda: pb.StreamMarginStatusRequest(account_ids=[""]), C.INVALID_ARGUMENT, "account_ids"),
]
# fmt: on


def _state(
    account: str, state: int = pb.TRADING_STATE_HALTED, all_accounts: bool = False
) -> pb.SetTradingStateRequest:
    return pb.SetTradingStateRequest(account_id=account, all_accounts=all_accounts, state=state)


@pytest.mark.parametrize(("rpc", "make_request", "code", "names"), ERRORS)
def test_bad_input_is_a_status_code_and_changes_nothing(
    env: Env,
    bad_account: str,
    rpc: str,
    make_request: Callable[[], object],
    code: grpc.StatusCode,
    names: str,
) -> None:
    stub = env.stub
    request = make_request()
    version = get(stub, bad_account).market_version
    with state_unchanged(stub):
        with pytest.raises(grpc.RpcError) as err:
            call = getattr(stub, rpc)(request, timeout=T)
            if rpc == "StreamMarginStatus":
                next(call)
        assert err.value.code() == code, err.value.details()
        assert names in err.value.details()
    assert get(stub, bad_account).market_version == version
    if isinstance(request, pb.CheckOrdersRequest) and request.orders:
        # nothing of the refused batch was decided or remembered: its first order is new
        d = check(stub, request.orders[0])
        assert d.accepted and not d.duplicate
        event(stub, BAD, d.client_order_id, **CANCEL)
    if rpc == "SetTradingState":  # and the kill switch did not fire
        assert get(stub, bad_account).trading_state == pb.TRADING_STATE_ACTIVE
        probe = check(stub, order(BAD, f"probe-{time.monotonic_ns()}", PERP, SELL, 0.001))
        assert probe.accepted
        event(stub, BAD, probe.client_order_id, **CANCEL)


# fmt: off
REJECTS = [
    pytest.param({"quantity": NAN}, pb.REJECT_REASON_INVALID_ORDER, "quantity", id="nan-quantity"),
    pytest.param({"quantity": INF}, pb.REJECT_REASON_INVALID_ORDER, "quantity", id="inf-quantity"),
    pytest.param({"quantity": -1.0}, pb.REJECT_REASON_INVALID_ORDER, "quantity",
                 id="negative-quantity"),
    pytest.param({"quantity": 0.0}, pb.REJECT_REASON_INVALID_ORDER, "quantity", id="zero-quantity"),
    pytest.param({"price": NAN}, pb.REJECT_REASON_INVALID_ORDER, "price", id="nan-price"),
    pytest.param({"price": -7e4}, pb.REJECT_REASON_INVALID_ORDER, "price", id="negative-price"),
    pytest.param({"price": None}, pb.REJECT_REASON_INVALID_ORDER, "price", id="limit-without-price"),
    pytest.param({"side": pb.SIDE_UNSPECIFIED}, pb.REJECT_REASON_INVALID_ORDER, "side", id="no-side"),
    pytest.param({"side": 7}, pb.REJECT_REASON_INVALID_ORDER, "side", id="unknown-side"),
    pytest.param({"order_type": 99}, pb.REJECT_REASON_INVALID_ORDER, "order_type",
                 id="unknown-order-type"),
    pytest.param({"symbol": ""}, pb.REJECT_REASON_INVALID_ORDER, "symbol", id="no-symbol"),
    pytest.param({"symbol": "SOL-PERPETUAL"}, pb.REJECT_REASON_UNKNOWN_INSTRUMENT, "symbol",
                 id="unknown-symbol"),
    pytest.param({"symbol": "BTC!!"}, pb.REJECT_REASON_UNKNOWN_INSTRUMENT, "symbol",
                 id="malformed-symbol"),
    pytest.param({"symbol": EXPIRED}, pb.REJECT_REASON_INSTRUMENT_EXPIRED, "symbol",
                 id="expired-symbol"),
    pytest.param({"account_id": "nobody"}, pb.REJECT_REASON_UNKNOWN_ACCOUNT, "account_id",
                 id="unknown-account"),
    pytest.param({"account_id": ""}, pb.REJECT_REASON_UNKNOWN_ACCOUNT, "account_id",
                 id="no-account"),
    pytest.param({"client_order_id": ""}, pb.REJECT_REASON_INVALID_ORDER, "client_order_id",
                 id="no-client-order-id"),
]
# fmt: on


def _bad_order(coid: str, changes: Mapping[str, object]) -> pb.Order:
    fields: dict[str, object] = {
        "account_id": BAD,
        "client_order_id": coid,
        "symbol": PERP,
        "side": SELL,
        "order_type": pb.ORDER_TYPE_LIMIT,
        "quantity": 0.1,
        "price": 70_000.0,
    }
    fields.update(changes)
    return pb.Order(**{k: v for k, v in fields.items() if v is not None})


@pytest.mark.parametrize(("changes", "reason", "field_name"), REJECTS)
def test_bad_order_content_is_a_reject_naming_the_field(
    env: Env,
    bad_account: str,
    request: pytest.FixtureRequest,
    changes: dict[str, object],
    reason: int,
    field_name: str,
) -> None:
    stub = env.stub
    coid = f"rej-{request.node.callspec.id}"
    with state_unchanged(stub):
        decisions = [check(stub, _bad_order(coid, changes))]
        if field_name != "client_order_id":  # WhatIf needs no client order id
            decisions.append(whatif(stub, _bad_order(coid, changes)))
        batch = pb.CheckOrdersRequest(orders=[_bad_order(coid + "-batch", changes)])
        decisions += stub.CheckOrders(batch, timeout=T).decisions
        for d in decisions:
            assert not d.accepted and d.reason == reason, d
            assert d.context.field == field_name, d
            assert d.detail


@pytest.mark.parametrize(
    "changes",
    [
        {"quantity": 0.0},
        {"symbol": "SOL-PERPETUAL"},
        {"quantity": NAN},
        {"price": NAN},
    ],
    ids=["zero-quantity", "unknown-symbol", "nan-quantity", "nan-price"],
)
def test_a_retried_bad_order_gets_its_original_reject(
    env: Env, bad_account: str, request: pytest.FixtureRequest, changes: dict[str, object]
) -> None:
    stub = env.stub
    coid = f"retry-{request.node.callspec.id}"
    first = check(stub, _bad_order(coid, changes))
    assert not first.accepted
    with state_unchanged(stub):
        retry = check(stub, _bad_order(coid, changes))
    assert retry.duplicate, retry
    assert (retry.reason, retry.context.field) == (first.reason, first.context.field)


def test_a_bad_order_in_a_batch_rejects_only_itself(env: Env, bad_account: str) -> None:
    stub = env.stub
    before = get(stub, bad_account)
    good = [order(BAD, f"mix-{k}", PERP, SELL, 0.01, 70_000.0) for k in range(2)]
    bad = order(BAD, "mix-bad", PERP, SELL, NAN, 70_000.0)
    decisions = stub.CheckOrders(pb.CheckOrdersRequest(orders=[good[0], bad, good[1]]), timeout=T)
    assert [d.accepted for d in decisions.decisions] == [True, False, True]
    assert decisions.decisions[1].context.field == "quantity"
    assert set(working(get(stub, bad_account))) == set(working(before)) | {"mix-0", "mix-1"}
    for o in good:
        event(stub, BAD, o.client_order_id, **CANCEL)
    after = get(stub, bad_account)
    assert set(working(after)) == set(working(before))
    assert pool(after).initial_margin == approx(pool(before).initial_margin)
