"""The book: accounts, their positions, working orders and margin state per pool.

Per pool three incremental states share one risk table:
- ``P``: positions (and collateral) — equity and the margin status come from here; the
  positions themselves are kept only here (``P.qty``);
- ``B``: positions + every working buy; ``S``: positions − every working sell.
Margin with open orders is the worse of ``B`` and ``S``. Every change of holdings goes
through :meth:`AccountPool.change`, which keeps the three in step; only
:mod:`riskgate.engine.apply` calls it.

Quantities in the states are *units* (:mod:`riskgate.domain.instruments`): an inverse future's
or perpetual's position is its fixed USD notional, a working order on one reserves its coin
quantity converted at its limit price (the mark for a market order), every other instrument
counts its quantity. Futures and perpetuals are marked to market against a *basis* per
position (:attr:`Account.basis`), so their settlement depends only on the current mark.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from riskgate.domain.instruments import Instrument
from riskgate.engine.arrays import MODE_AUTO, MODE_EAGER, MODE_PORTFOLIO, ArrayBook
from riskgate.engine.controls.model import AccountControls, ControlBook
from riskgate.engine.market import MarketState
from riskgate.engine.state import PoolState
from riskgate.engine.types import (
    Decision,
    EngineConfig,
    Limits,
    MarginMethod,
    MarginStatus,
    OrderRequest,
    OrderStatus,
    PoolMode,
    ScenarioInfo,
    Side,
    TradingState,
)
from riskgate.kernels import margin as mk
from riskgate.models.base import ScenarioModel
from riskgate.models.risk_table import USD, RiskTable
from riskgate.models.rules import RulesParams

_SEGREGATED = PoolMode.SEGREGATED
_EPS = 1e-12
COLLATERAL_PREFIX = "collateral:"


def pool_currency(inst: Instrument, segregated: bool) -> str:
    """The margin pool an instrument belongs to: its coin's pool for an inverse instrument of
    a segregated account, else the USD pool."""
    return inst.underlying if segregated and inst.is_inverse else USD


def margin_status(equity: float, im: float, mm: float) -> MarginStatus:
    """LIQUIDATION below maintenance, MARGIN_CALL below initial margin, else OK."""
    if equity < mm - _EPS:
        return MarginStatus.LIQUIDATION
    if equity < im - _EPS:
        return MarginStatus.MARGIN_CALL
    return MarginStatus.OK


@dataclass(slots=True)
class WorkingOrder:
    request: OrderRequest
    symbol: str  # canonical
    side: Side
    pool: str
    quantity: float
    price: float | None
    accepted_ns: int  # wall clock
    reserve_until_ns: int  # reservation expiry while PENDING_ACK (wall clock)
    filled: float = 0.0
    status: OrderStatus = OrderStatus.PENDING_ACK
    venue_order_id: str = ""
    fill_ids: set[str] | None = None  # created on the first fill that carries an id
    # units reserved per unit of quantity: multiplier x (limit price, or the mark when it was
    # accepted) for an inverse future or perpetual, else 1
    unit: float = 1.0

    @property
    def working(self) -> float:
        return self.quantity - self.filled if self.status.is_working else 0.0

    @property
    def working_units(self) -> float:
        """What the order still reserves in the pool's states."""
        return self.working * self.unit


def side_figures(out: np.ndarray) -> tuple[float, float, tuple[int, int, float]]:
    """(IM, MM, scenario key) of a margin kernel's pool row; the key is (cell, underlying
    row, worst loss)."""
    row = out[out.shape[0] - 1].tolist()
    return row[mk.O_IM], row[mk.O_MM], (int(row[mk.O_CELL]), int(row[mk.O_UND]), row[mk.O_WORST])


def scenario_info(table: RiskTable, key: tuple[int, int, float]) -> ScenarioInfo:
    """The scenario a (cell, underlying row, worst loss) key names in ``table``."""
    cell, u, loss = key
    move, vol, moves, name = table.labels[u][cell]
    return ScenarioInfo(cell, move, vol, table.currency, table.coins[u], loss, moves, name)


class RulesTotals:
    """Per-leg standard IM/MM of a state, kept incrementally: sum_i f_i(q_i)."""

    __slots__ = ("im", "mm")

    def __init__(self) -> None:
        self.im = 0.0
        self.mm = 0.0

    @staticmethod
    def leg(coef: tuple[float, ...], q: float) -> tuple[float, float]:
        a = abs(q)
        if q >= 0.0:
            return coef[0] * a + coef[1] * a * a, coef[4] * a + coef[5] * a * a
        return coef[2] * a + coef[3] * a * a, coef[6] * a + coef[7] * a * a


class AccountPool:
    __slots__ = (
        "B",
        "P",
        "S",
        "__weakref__",
        "_chunk",
        "_out3",
        "_p",
        "currency",
        "equity",
        "im",
        "im_B",
        "im_S",
        "mm",
        "mm_B",
        "mm_S",
        "rules",
        "scen_B",
        "scen_S",
        "track_rules",
    )  # fmt: skip

    def __init__(
        self, table: RiskTable, track_rules: bool = False, arrays: ArrayBook | None = None
    ) -> None:
        self.currency = table.currency
        if arrays is None:
            self._chunk, self._p = None, -1
            self.P = PoolState(table)
            self.B = PoolState(table)
            self.S = PoolState(table)
        else:  # three consecutive rows of the array book: P, B, S
            seg = arrays.segment(table)
            chunk, p = self._chunk, self._p = seg.allocate(self)
            self.P = PoolState(table, seg, chunk, 3 * p)
            self.B = PoolState(table, seg, chunk, 3 * p + 1)
            self.S = PoolState(table, seg, chunk, 3 * p + 2)
        self.rules = {"P": RulesTotals(), "B": RulesTotals(), "S": RulesTotals()}
        self.im_B = self.im_S = self.mm_B = self.mm_S = 0.0
        self.im = self.mm = 0.0
        # (cell, underlying row, worst loss) of each side's worst scenario, cached so that a
        # decision can name the other side's scenario without another kernel call
        self.scen_B = self.scen_S = (0, 0, 0.0)
        self.equity = 0.0  # of P, cached: read on every decision
        # per-leg standard totals are kept only while the account is margined rules-based
        self.track_rules = track_rules
        self._out3 = np.zeros((3, len(table.coins) + 1, mk.N_OUT))  # rebind's margins

    @property
    def table(self) -> RiskTable:
        return self.P.table

    def states(self) -> tuple[tuple[str, PoolState], ...]:
        return (("P", self.P), ("B", self.B), ("S", self.S))

    def change(
        self, market: MarketState, symbol: str, dq_pos: float, dq_buy: float, dq_sell: float
    ) -> None:
        """Positions move by ``dq_pos``; working buys by ``dq_buy``; working sells by ``dq_sell``
        (both as positive quantities of working orders)."""
        if dq_pos != 0.0:
            self._step(market, "P", self.P, symbol, dq_pos)
        dq = dq_pos + dq_buy
        if dq != 0.0:
            self._step(market, "B", self.B, symbol, dq)
        dq = dq_pos - dq_sell
        if dq != 0.0:
            self._step(market, "S", self.S, symbol, dq)
        if dq_pos != 0.0:
            self.equity = self.P.equity

    def _step(
        self, market: MarketState, name: str, state: PoolState, symbol: str, dq: float
    ) -> None:
        self._set(market, name, state, symbol, state.qty.get(symbol, 0.0) + dq)

    def _set(
        self, market: MarketState, name: str, state: PoolState, symbol: str, q1: float
    ) -> None:
        q0 = state.qty.get(symbol, 0.0)
        state.set_quantity(symbol, q1)
        if self.track_rules and not symbol.startswith(COLLATERAL_PREFIX):
            self._rules_step(market, name, symbol, q0, q1)

    def align(self, market: MarketState, symbol: str, buy: bool) -> None:
        """No order works on this side of ``symbol`` any more: the side's state holds exactly
        the position (what rounding of the reservations' sums left is dropped)."""
        name, state = ("B", self.B) if buy else ("S", self.S)
        q = self.P.qty.get(symbol, 0.0)
        if state.qty.get(symbol, 0.0) != q:
            self._set(market, name, state, symbol, q)

    def _rules_step(
        self, market: MarketState, name: str, symbol: str, q0: float, q1: float
    ) -> None:
        coef = market.rules_coefficients(self.currency, symbol)
        r = self.rules[name]
        im0, mm0 = RulesTotals.leg(coef, q0)
        im1, mm1 = RulesTotals.leg(coef, q1)
        r.im += im1 - im0
        r.mm += mm1 - mm0

    def set_collateral(self, currency: str, amount: float, rebuild_next: bool = False) -> None:
        """``rebuild_next``: the states are rebuilt from holdings right after (a bind), so
        only the holdings change now."""
        for _, state in self.states():
            state.set_collateral(currency, amount, rebuild_next)
        self.equity = self.P.equity

    def set_track_rules(self, market: MarketState, on: bool) -> None:
        if on and not self.track_rules:
            self.track_rules = True
            self._recompute_rules(market)
        self.track_rules = on

    def _recompute_rules(self, market: MarketState) -> None:
        for name, state in self.states():
            r = self.rules[name]
            r.im = r.mm = 0.0
            for sym, q in state.qty.items():
                if not sym.startswith(COLLATERAL_PREFIX):
                    im, mm = RulesTotals.leg(market.rules_coefficients(self.currency, sym), q)
                    r.im += im
                    r.mm += mm

    def rebind(self, market: MarketState | None, table: RiskTable) -> np.ndarray:
        """Rebuild the three states on a new table (a market update) and margin them
        (``market``: the new market, for the per-leg totals of a pool that keeps them).
        Returns the margin outputs ``[3, n_u + 1, N_OUT]`` of P, B and S (scratch of this
        pool: read them before its next rebind). Each state is rebuilt from its own
        holdings in their order: the arithmetic of the array book's whole-book kernel."""
        out = self.adopt(market, table) if market is not None else None
        if out is not None:
            return out
        out3 = self._out3
        if out3.shape[1] != len(table.coins) + 1:
            out3 = self._out3 = np.zeros((3, len(table.coins) + 1, mk.N_OUT))
        if self._rebuild_rows(table, out3):
            self._after_rebind(market)
            return out3
        for k, state in enumerate((self.P, self.B, self.S)):
            state.rebind(table)
            out3[k] = state.margin_out()
        self._after_rebind(market)
        return out3

    def adopt(self, market: MarketState, table: RiskTable) -> np.ndarray | None:
        """Take the rows the array book's kernel computed on ``market`` for this pool, if
        they are still this pool's (its holdings have not changed since) and priced;
        returns their margin outputs, or None (the pool must be rebuilt)."""
        chunk = self._chunk
        if chunk is None:
            return None
        k = market.version & 1
        p = self._p
        r = 3 * p
        if (
            chunk.result_market[k] is not market
            or chunk.result_gen[k][p] != chunk.gen[p]
            or chunk.failed[k][r : r + 3].any()
            or not (self.P.in_array_book and self.B.in_array_book and self.S.in_array_book)
        ):
            return None
        chunk.pnl[r : r + 3] = chunk.result_pnl[k][r : r + 3]
        chunk.aux[r : r + 3] = chunk.result_aux[k][r : r + 3]
        for state in (self.P, self.B, self.S):
            state.table = table
            state._staged = None
        self._after_rebind(market)
        return chunk.result_out[k][r : r + 3]

    def _rebuild_rows(self, table: RiskTable, out3: np.ndarray) -> bool:
        """Rebuild and margin the pool's rows of the array book in one kernel call (the
        whole-book kernel's arithmetic); False if it cannot (not in the array book, not the
        current market's table, a holding it does not price)."""
        chunk, P, B, S = self._chunk, self.P, self.B, self.S
        if chunk is None or P._seg is None or not (B.in_array_book and S.in_array_book):
            return False
        if P._pnl.shape != (len(table.coins), table.n_cells):
            return False
        id_row = P._seg.arrays.cached_id_rows(table)
        if id_row is None:
            return False
        ok = table.model.remargin_pool_kernel(
            chunk.pos_id, chunk.pos_q, chunk.n_pos, self._p, id_row, table.risk, table.attr,
            table.und_price, table.gparams, table.uparams, chunk.pnl, chunk.aux, out3,
            chunk.failed1,
        )  # fmt: skip
        if ok:
            for state in (P, B, S):
                state.table = table
                state._staged = None
        return ok

    def _after_rebind(self, market: MarketState | None) -> None:
        if self.track_rules:
            assert market is not None, "a pool keeping per-leg totals needs the market"
            self._recompute_rules(market)
        self.equity = self.P.equity


@dataclass(eq=False)
class Account:
    account_id: str
    pool_mode: PoolMode
    margin_method: MarginMethod
    limits: Limits
    trading_state: TradingState = TradingState.ACTIVE
    trading_state_reason: str = ""
    # balances per currency: deposits and realised cash, without the open futures' variation
    # margin (the collateral an account shows and margins is this plus that: apply.collateral)
    collateral: dict[str, float] = field(default_factory=dict)
    # futures and perpetuals held: symbol -> basis b, against which the position settles at
    # mark m: inverse (units: USD notional N, b in coin) b - N / m coin; linear (q in coin x
    # multiplier) q x multiplier x m - b USD. A fill adds its N / fill price (q x multiplier
    # x fill price), a reconciliation its change at the mark; a closed position's
    # settlement joins the balance.
    basis: dict[str, float] = field(default_factory=dict)
    avg_price: dict[str, float] = field(default_factory=dict)
    working_buy: dict[str, float] = field(default_factory=dict)
    working_sell: dict[str, float] = field(default_factory=dict)
    orders: dict[str, WorkingOrder] = field(default_factory=dict)
    # client order id -> (request, decision, wall-clock time decided); the request's
    # fingerprint is taken only when a retry arrives
    decisions: OrderedDict[str, tuple[OrderRequest, Decision, int]] = field(
        default_factory=OrderedDict
    )
    pools: dict[str, AccountPool] = field(default_factory=dict)
    open_orders: int = 0
    pending: dict[str, int] = field(default_factory=dict)  # PENDING_ACK coid -> deadline
    ended: deque[str] = field(default_factory=deque)
    status: MarginStatus = MarginStatus.OK
    method_in_use: MarginMethod = MarginMethod.PORTFOLIO
    market: MarketState | None = field(default=None, repr=False)  # what the state is bound to
    controls: AccountControls | None = field(default=None, repr=False)  # pre-trade controls
    arrays: ArrayBook | None = field(default=None, repr=False)  # where its pools' rows live
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def segregated(self) -> bool:
        return self.pool_mode is _SEGREGATED

    @property
    def positions(self) -> dict[str, float]:
        """Every position (symbol -> signed units: an inverse future's USD notional), read
        from the pools' ``P`` states."""
        return {
            s: q
            for pool in self.pools.values()
            for s, q in pool.P.qty.items()
            if not s.startswith(COLLATERAL_PREFIX)
        }

    def position(self, pool: str, symbol: str) -> float:
        p = self.pools.get(pool)
        return 0.0 if p is None else p.P.qty.get(symbol, 0.0)

    def pool_currency(self, market: MarketState, symbol: str) -> str:
        return pool_currency(market.instruments[symbol], self.segregated)

    def pool(self, market: MarketState, currency: str) -> AccountPool:
        p = self.pools.get(currency)
        if p is None:
            p = self.pools[currency] = AccountPool(
                market.tables[currency], self.method_in_use == MarginMethod.RULES_BASED,
                self.arrays,
            )  # fmt: skip
        return p

    def refresh_margin(self, pool: AccountPool, out3: np.ndarray | None = None) -> None:
        """Recompute the pool's cached margin figures (after any change of its states);
        ``out3``: margins its rebind has just computed, instead of running the kernels."""
        out = pool.B.margin_out() if out3 is None else out3[1]
        pool.im_B, pool.mm_B, pool.scen_B = side_figures(out)
        out = pool.S.margin_out() if out3 is None else out3[2]
        pool.im_S, pool.mm_S, pool.scen_S = side_figures(out)
        if self.method_in_use == MarginMethod.RULES_BASED:
            assert pool.track_rules, "rules-based account pool without per-leg totals"
            pool.im_B, pool.mm_B = pool.rules["B"].im, pool.rules["B"].mm
            pool.im_S, pool.mm_S = pool.rules["S"].im, pool.rules["S"].mm
        pool.im = max(pool.im_B, pool.im_S)
        pool.mm = max(pool.mm_B, pool.mm_S)

    def mirror(self) -> None:
        """Tell the array book, per pool, what a market update needs to decide whether this
        account may bind lazily (after every change of its status, method, pools or
        futures, and of the market it is bound to)."""
        pools = self.pools
        simple = (
            len(pools) == 1
            and not self.basis
            and self.method_in_use is MarginMethod.PORTFOLIO
            and self.margin_method in (MarginMethod.PORTFOLIO, MarginMethod.AUTO)
        )
        version = 0 if self.market is None else self.market.version
        for ccy, pool in pools.items():
            chunk = pool._chunk
            if chunk is None:
                continue
            p = pool._p
            chunk.accounts[p] = self
            in_book = pool.P.in_array_book and pool.B.in_array_book and pool.S.in_array_book
            if simple and ccy == USD and in_book:
                auto = self.margin_method is MarginMethod.AUTO
                chunk.mode[p] = MODE_AUTO if auto else MODE_PORTFOLIO
            else:
                chunk.mode[p] = MODE_EAGER
            chunk.status[p] = int(self.status)
            chunk.bound[p] = version

    def order_ended(self, order: WorkingOrder, window: int) -> None:
        """Book-keeping when an order stops working; ended orders are kept (for duplicate
        terminal events) only up to the idempotency window."""
        coid = order.request.client_order_id
        self.open_orders -= 1
        self.pending.pop(coid, None)
        self.ended.append(coid)
        while len(self.ended) > window:
            old = self.ended.popleft()
            stale = self.orders.get(old)
            if stale is not None and not stale.status.is_working:
                del self.orders[old]

    def remember(
        self, decision: Decision, request: OrderRequest, now_ns: int, window: int, ttl_ns: int
    ) -> None:
        """Keep a decision for retries: at most ``window`` of them, none older than
        ``ttl_ns`` at ``now_ns`` (the time of the event that remembers it)."""
        decisions = self.decisions
        decisions[request.client_order_id] = (request, decision, now_ns)
        while len(decisions) > window:
            decisions.popitem(last=False)
        oldest = now_ns - ttl_ns
        while decisions and next(iter(decisions.values()))[2] < oldest:
            decisions.popitem(last=False)


@dataclass(eq=False)
class Book:
    """Everything the engine knows: the market, the accounts and the kill switch. Written
    only by :func:`riskgate.engine.apply.apply`."""

    model: ScenarioModel
    rules_params: RulesParams
    config: EngineConfig
    market: MarketState | None = None
    accounts: dict[str, Account] = field(default_factory=dict)
    halt_all: tuple[bool, str] = (False, "")
    market_seq: int = 0  # cluster mode: the last market-stream message taken (MarketSourced)
    # accounts with PENDING_ACK orders (their reservations may expire)
    pending_accounts: set[Account] = field(default_factory=set)
    # margin status changes made by apply, for the engine to publish (apply does no I/O)
    status_changes: deque[tuple[str, MarginStatus, MarginStatus, str, float, float, float, int]] = (
        field(default_factory=deque)
    )
    controls: ControlBook = field(default_factory=ControlBook)  # groups, trading day
    # every account pool's scenario states as rows of a few arrays (re-margined in one
    # kernel call per chunk on a market update)
    arrays: ArrayBook = field(default_factory=ArrayBook, repr=False)
