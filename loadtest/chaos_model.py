"""The crash test's client-side model: the accounts it creates, the operations it sends,
and what the server must hold once it has acknowledged them (see :mod:`loadtest.chaos`).

Every expected value here comes from requests the client sent and replies it received,
never from reading the server's state. Quantities are small binary fractions (multiples
of 1/8) so that positions and filled quantities are exact sums in any order (an inverse
future's shown quantity, its USD notional over the mark, to rounding); fills are
only of futures and perpetuals, at exactly the server's mark, so that their P&L against
the mark (which moves collateral) is exactly 0.0 and collateral balances stay exactly as
UpsertAccount last set them (to rounding, for an inverse future closed: see _same_amounts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import grpc

from loadtest.workload import fair_price
from riskgate.client import RiskGateClient
from riskgate.demo import DemoMarket
from riskgate.domain.instruments import Kind
from riskgate.v1 import riskgate_pb2 as pb

__all__ = [
    "ACCOUNT_PLANS",
    "AccountModel",
    "Findings",
    "Instrument",
    "NewOrders",
    "OrderModel",
    "OrderStep",
    "SetCollateral",
    "SetState",
    "compare",
    "decision_key",
    "get_views",
    "pick_instruments",
]

PENDING, OPEN, PARTIAL = (
    pb.ORDER_STATUS_PENDING_ACK, pb.ORDER_STATUS_OPEN, pb.ORDER_STATUS_PARTIALLY_FILLED,
)  # fmt: skip
FILLED, CANCELLED = pb.ORDER_STATUS_FILLED, pb.ORDER_STATUS_CANCELLED
ACTIVE, HALTED = pb.TRADING_STATE_ACTIVE, pb.TRADING_STATE_HALTED

# (pool mode, margin method, collateral, whether SetPositions gives it positions)
ACCOUNT_PLANS: list[tuple[int, int, dict[str, float], bool]] = [
    (pb.MARGIN_POOL_MODE_CROSS, pb.MARGIN_METHOD_PORTFOLIO,
     {"USD": 5e6, "USDC": 1e6, "BTC": 10.0, "ETH": 100.0}, True),
    (pb.MARGIN_POOL_MODE_CROSS, pb.MARGIN_METHOD_PORTFOLIO, {"USD": 5e6, "USDC": 1e6}, False),
    (pb.MARGIN_POOL_MODE_SEGREGATED, pb.MARGIN_METHOD_PORTFOLIO,
     {"BTC": 50.0, "ETH": 500.0, "USDC": 2e6}, True),
    (pb.MARGIN_POOL_MODE_CROSS, pb.MARGIN_METHOD_RULES_BASED, {"USD": 5e6}, False),
    (pb.MARGIN_POOL_MODE_CROSS, pb.MARGIN_METHOD_AUTO, {"USD": 2e6, "BTC": 5.0}, True),
    # thin collateral: larger orders are rejected for margin
    (pb.MARGIN_POOL_MODE_CROSS, pb.MARGIN_METHOD_PORTFOLIO, {"USDC": 30_000.0}, False),
    (pb.MARGIN_POOL_MODE_SEGREGATED, pb.MARGIN_METHOD_PORTFOLIO,
     {"BTC": 20.0, "ETH": 200.0, "USDC": 5e5}, False),
    (pb.MARGIN_POOL_MODE_CROSS, pb.MARGIN_METHOD_PORTFOLIO, {"USD": 1e7}, True),
]  # fmt: skip


@dataclass(frozen=True)
class Instrument:
    symbol: str
    price: float  # limit price of orders; for fillable ones the server's mark (set later)
    lot: float  # quantities are 1..8 eighths of this
    fillable: bool  # a future or perpetual: filled at its mark, collateral unchanged


def pick_instruments(market: DemoMarket) -> list[Instrument]:
    """Per coin: the perpetuals (inverse and linear) and the nearest dated future, which
    are filled; the spot and three options near the money, which are decided, acknowledged
    and cancelled but never filled."""
    snap, out = market.snapshot, []
    for coin, lot in (("BTC", 1.0), ("ETH", 8.0)):
        insts = [i for i in market.instruments if i.underlying == coin]
        live = [i for i in insts if i.tte_years(snap.valuation_time) > 7 / 365]
        futs = sorted((i for i in live if i.kind == Kind.FUTURE), key=lambda i: i.expiry)
        picks = [i for i in insts if i.kind == Kind.PERPETUAL] + futs[:1]
        for inst in picks:
            out.append(Instrument(inst.symbol, fair_price(inst, snap), lot, True))
        spot = [i for i in insts if i.kind == Kind.SPOT]
        out += [Instrument(i.symbol, fair_price(i, snap), lot, False) for i in spot]
        if futs:
            index = snap.index(coin)
            chain = [i for i in live if i.is_option and i.expiry == futs[0].expiry]
            chain.sort(key=lambda i: abs(i.strike_usd - index))
            for inst in chain[:3]:
                price = float(f"{fair_price(inst, snap):.6g}")
                if price > 0:
                    out.append(Instrument(inst.symbol, price, lot, False))
    return out


@dataclass
class OrderModel:
    request: pb.Order
    fillable: bool
    filled: float = 0.0
    status: int = PENDING
    fills: int = 0  # fill ids sent so far

    @property
    def working(self) -> float:
        return self.request.quantity - self.filled


@dataclass
class AccountModel:
    """What the server must hold for one account."""

    account_id: str
    collateral: dict[str, float]
    positions: dict[str, float] = field(default_factory=dict)
    orders: dict[str, OrderModel] = field(default_factory=dict)  # working orders
    ended: dict[str, int] = field(default_factory=dict)  # client order id -> final status
    trading_state: int = ACTIVE

    def copy(self) -> AccountModel:
        return AccountModel(
            self.account_id, dict(self.collateral), dict(self.positions),
            {k: replace(o) for k, o in self.orders.items()}, dict(self.ended), self.trading_state,
        )  # fmt: skip


@dataclass
class Findings:
    """Lost acknowledged operations and violations, each with its details."""

    lost: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    def add_lost(self, **detail: Any) -> None:
        self.lost.append(detail)

    def add_violation(self, **detail: Any) -> None:
        self.violations.append(detail)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.violations


# ---- operations -------------------------------------------------------------------------
# Each operation is sent as one RPC; ``apply`` changes the model by its reply (once the
# reply is received the operation is acknowledged); ``after`` is the model as it would be
# had the operation been applied, for a state check while its outcome is unknown.


def decision_key(d: pb.Decision) -> bytes:
    """A decision as its retries must repeat it: every field but ``duplicate``."""
    same = pb.Decision()
    same.CopyFrom(d)
    same.duplicate = False
    return same.SerializeToString(deterministic=True)


@dataclass
class NewOrders:
    orders: list[pb.Order]
    fillable: list[bool]
    batch: bool
    kind: str = "check_order"

    def __post_init__(self) -> None:
        self.kind = "check_orders" if self.batch else "check_order"

    @property
    def account_id(self) -> str:
        return self.orders[0].account_id

    def send(self, client: RiskGateClient) -> list[pb.Decision]:
        if self.batch:
            return client.check_orders(self.orders)
        o = self.orders[0]
        return [client.stub.CheckOrder(pb.CheckOrderRequest(order=o), timeout=client.timeout_s)]

    def apply(self, model: AccountModel, reply: list[pb.Decision], findings: Findings) -> None:
        for order, fillable, d in zip(self.orders, self.fillable, reply, strict=True):
            if d.accepted:
                model.orders[order.client_order_id] = OrderModel(order, fillable)

    def after(self, model: AccountModel) -> AccountModel:
        return model  # unknown decisions are checked as "maybe present" (see compare)


@dataclass
class OrderStep:
    """A lifecycle report: ``ack``, ``fill`` (quantity at ``price``) or ``cancel``."""

    account_id: str
    client_order_id: str
    what: str
    quantity: float = 0.0
    price: float = 0.0
    fill_id: str = ""

    @property
    def kind(self) -> str:
        return self.what

    def send(self, client: RiskGateClient) -> pb.OrderEventAck:
        aid, coid = self.account_id, self.client_order_id
        if self.what == "ack":
            return client.ack(aid, coid, venue_order_id=f"v-{coid}")
        if self.what == "fill":
            return client.fill(aid, coid, self.quantity, self.price, fill_id=self.fill_id)
        return client.cancel(aid, coid)

    def step(self, model: AccountModel) -> tuple[AccountModel, tuple[int, float, float]]:
        """The model after this report, and the (status, filled, working) it must reply."""
        m = model.copy()
        coid = self.client_order_id
        o = m.orders[coid]
        if self.what == "ack":
            o.status = OPEN if o.status == PENDING else o.status
        elif self.what == "cancel":
            o.status = CANCELLED
        else:
            o.filled += self.quantity
            signed = self.quantity if o.request.side == pb.SIDE_BUY else -self.quantity
            sym = o.request.symbol
            m.positions[sym] = m.positions.get(sym, 0.0) + signed
            o.status = FILLED if o.working == 0.0 else PARTIAL
        if o.status in (FILLED, CANCELLED):
            del m.orders[coid]
            m.ended[coid] = o.status
            return m, (o.status, o.filled, 0.0)
        return m, (o.status, o.filled, o.working)

    def after(self, model: AccountModel) -> AccountModel:
        return self.step(model)[0]

    def apply(self, model: AccountModel, reply: pb.OrderEventAck, findings: Findings) -> None:
        new, expected = self.step(model)
        got = (reply.order_status, reply.filled_quantity, reply.working_quantity)
        if got != expected:
            findings.add_violation(
                check="event reply", account=self.account_id, order=self.client_order_id,
                event=self.what, expected=list(expected), actual=list(got),
            )  # fmt: skip
        model.positions, model.orders, model.ended = new.positions, new.orders, new.ended


@dataclass
class SetCollateral:
    account_id: str
    collateral: dict[str, float]
    kind: str = "upsert_account"

    def send(self, client: RiskGateClient) -> pb.UpsertAccountResponse:
        return client.upsert_account(self.account_id, self.collateral)

    def after(self, model: AccountModel) -> AccountModel:
        m = model.copy()
        m.collateral.update(self.collateral)
        return m

    def apply(self, model: AccountModel, reply: Any, findings: Findings) -> None:
        model.collateral.update(self.collateral)


@dataclass
class SetState:
    account_id: str
    state: int
    kind: str = "set_trading_state"

    def send(self, client: RiskGateClient) -> pb.SetTradingStateResponse:
        return client.set_trading_state(self.state, self.account_id, reason="chaos")

    def after(self, model: AccountModel) -> AccountModel:
        m = model.copy()
        m.trading_state = self.state
        return m

    def apply(self, model: AccountModel, reply: Any, findings: Findings) -> None:
        model.trading_state = self.state


Op = NewOrders | OrderStep | SetCollateral | SetState


# ---- the state check --------------------------------------------------------------------


def _same_amounts(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(
        math.isclose(a.get(k, 0.0), b.get(k, 0.0), rel_tol=1e-12, abs_tol=1e-9)
        for k in set(a) | set(b)
    )


def _nonzero(positions: dict[str, float]) -> dict[str, float]:
    return {s: q for s, q in positions.items() if q != 0.0}


def compare(
    view: pb.AccountView | None, model: AccountModel, maybe: dict[str, pb.Order] | None = None
) -> list[dict[str, Any]]:
    """Differences between the server's view of an account and the model; ``maybe``: orders
    whose decision is unknown, which may be working (as just accepted) or absent."""
    maybe = maybe or {}
    if view is None:
        return [{"account": model.account_id, "what": "account missing", "lost": True}]
    out: list[dict[str, Any]] = []

    def diff(what: str, expected: Any, actual: Any, lost: bool = True, **more: Any) -> None:
        out.append({"account": model.account_id, "what": what, "expected": expected,
                    "actual": actual, "lost": lost, **more})  # fmt: skip

    if view.trading_state != model.trading_state:
        diff("trading_state", pb.TradingState.Name(model.trading_state),
             pb.TradingState.Name(view.trading_state))  # fmt: skip
    collateral = dict(view.collateral)
    # fills at the mark settle zero, up to the rounding of an inverse future's USD notional
    # (a residue of ~1e-16 coin when it closes)
    if not _same_amounts(collateral, model.collateral):
        diff("collateral", model.collateral, collateral)
    positions = _nonzero({p.symbol: p.quantity for p in view.positions})
    expected = _nonzero(model.positions)
    # an inverse future is held as a USD notional (converted at each fill's price) and shown
    # as notional / mark: exact up to rounding, far inside the smallest lot (1/8)
    off = [
        k for k in sorted(set(positions) | set(expected))
        if not math.isclose(expected.get(k, 0.0), positions.get(k, 0.0), rel_tol=1e-12,
                            abs_tol=1e-12)
    ]  # fmt: skip
    if off:
        diff("positions", {k: expected.get(k, 0.0) for k in off},
             {k: positions.get(k, 0.0) for k in off})  # fmt: skip
    working = {w.client_order_id: w for w in view.working_orders}
    for coid, o in model.orders.items():
        w = working.pop(coid, None)
        if w is None:
            diff("working order missing", [o.request.quantity, o.filled], None, order=coid)
            continue
        want = (o.request.symbol, o.request.side, o.request.quantity, o.filled, o.working, o.status)
        got = (w.symbol, w.side, w.quantity, w.filled_quantity, w.working_quantity, w.status)
        if want != got:
            diff("working order", list(want), list(got), order=coid)
    for coid, w in working.items():
        order = maybe.get(coid)
        if order is not None:
            want = (order.symbol, order.side, order.quantity, 0.0, order.quantity, PENDING)
            got = (w.symbol, w.side, w.quantity, w.filled_quantity, w.working_quantity, w.status)
            if want != got:
                diff("in-flight order", list(want), list(got), lost=False, order=coid)
        elif coid in model.ended:
            diff("ended order working again", pb.OrderStatus.Name(model.ended[coid]),
                 pb.OrderStatus.Name(w.status), order=coid)  # fmt: skip
        else:
            diff("unexpected working order", None, pb.OrderStatus.Name(w.status),
                 lost=False, order=coid)  # fmt: skip
    return out


def get_views(client: RiskGateClient, ids: list[str]) -> dict[str, pb.AccountView | None]:
    """Every account's view; None for an account the server does not know."""
    out: dict[str, pb.AccountView | None] = {}
    for aid in ids:
        try:
            out[aid] = client.get_account(aid)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            out[aid] = None
    return out


TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
     grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
)  # fmt: skip
