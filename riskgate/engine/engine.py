"""The pre-trade engine: decisions, limits, order lifecycle, market updates, margin status.

Concurrency: one writer per account (its lock); every change to an account's holdings goes
through :class:`~riskgate.engine.book.AccountPool.change` under that lock. Market updates
build the new risk tables with no lock held, swap the market state in, then re-margin each
account under its own lock, so order checks on other accounts keep flowing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TypeVar

import numpy as np

from riskgate.domain.instruments import USD_LIKE, Instrument, InstrumentError, Kind, parse_symbol
from riskgate.domain.market import MarketDataError, MarketSnapshot
from riskgate.engine.book import (
    Account,
    AccountPool,
    RulesTotals,
    WorkingOrder,
    scenario_key,
    side_figures,
)
from riskgate.engine.market import MarketState, build_market_state
from riskgate.engine.state import StateError
from riskgate.engine.types import (
    AccountView,
    Acknowledged,
    Amended,
    Cancelled,
    Decision,
    EngineError,
    EventAck,
    Expired,
    Filled,
    Limits,
    MarginMethod,
    MarginStatus,
    MarginStatusEvent,
    MarketUpdateResult,
    MaxQuantityResult,
    OrderEventBody,
    OrderRequest,
    OrderStatus,
    OrderType,
    PoolMode,
    PoolView,
    PositionView,
    Reason,
    ScenarioInfo,
    Side,
    TradingState,
    VenueRejected,
    WorkingOrderView,
    invalid,
    not_found,
    precondition,
)
from riskgate.kernels import margin as mk
from riskgate.models.base import ScenarioModel
from riskgate.models.risk_table import USD
from riskgate.models.rules import RulesParams

_EPS = 1e-12
E = TypeVar("E", bound=Enum)
_MAX_QUEUE_S = 5.0  # without a deadline, how long a call may wait for its turn
_SIDE = {1: Side.BUY, 2: Side.SELL}
# enum members bound once: the decision path reads them on every order
_BUY, _SELL = Side.BUY, Side.SELL
_RULES = MarginMethod.RULES_BASED
_ACCEPTED, _LATENCY = Reason.ACCEPTED, Reason.LATENCY_BUDGET_EXCEEDED
_HALTED, _REDUCING = TradingState.HALTED, TradingState.REDUCING
_LIMIT = OrderType.LIMIT
_ORDER_TYPES = frozenset((OrderType.LIMIT, OrderType.MARKET))
_NUMBER = (float, int)


@dataclass(frozen=True)
class EngineConfig:
    decision_budget_ns: int = 2_000_000
    reservation_ttl_ns: int = 30_000_000_000
    idempotency_window: int = 100_000
    pm_equity_minimum_usd: float = 0.0
    max_batch_orders: int = 10_000
    default_limits: Limits = dataclasses.field(default_factory=Limits)


class _Reject(Exception):
    """Internal: stop the decision flow with this reason."""

    def __init__(
        self, reason: Reason, detail: str, field: str = "", limit=None, actual=None, unit=""
    ):
        self.reason, self.detail, self.field = reason, detail, field
        self.limit, self.actual, self.unit = limit, actual, unit


def _finite_positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0.0


class RiskEngine:
    def __init__(
        self,
        model: ScenarioModel,
        rules_params: RulesParams,
        config: EngineConfig | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.model = model
        self.rules_params = rules_params
        self.config = config or EngineConfig()
        self.clock_ns = clock_ns
        self.market: MarketState | None = None
        self.accounts: dict[str, Account] = {}
        self._accounts_lock = threading.Lock()  # guards the accounts dict, not accounts
        self._market_lock = threading.Lock()  # one market update at a time
        # Decisions run one at a time. Under CPython's GIL they cannot run in parallel anyway,
        # and letting every gRPC worker thread contend for the GIL mid-decision stretched the
        # p99 decision time from ~60 µs to ~4 ms under load (GIL switch-interval convoys).
        # Never taken while an account lock is held, so no lock-order inversion.
        self._decision_gate = threading.Lock()
        self._subscribers: list[queue.Queue] = []
        self._sub_lock = threading.Lock()
        self.halt_all: tuple[bool, str] = (False, "")
        self.counters: dict[str, int] = {"latency_rejects": 0, "decisions": 0}
        self._pending_accounts: set[Account] = set()  # accounts with PENDING_ACK orders
        self._dropping: frozenset[str] = frozenset()  # symbols a market update is removing

    def warm_up(self) -> None:
        """Compile (or load from numba's on-disk cache) every kernel the order path uses, on
        a throwaway market, so the first real decision pays no JIT cost."""
        from riskgate.demo import demo_market
        from riskgate.engine.state import PoolState, build_tables

        dm = demo_market(strikes_per_expiry=3, n_months=1, n_quarters=1)
        for table in build_tables(self.model, dm.snapshot, dm.instruments, True).values():
            state = PoolState(table)
            for sym in list(table.row)[:4]:
                state.set_quantity(sym, 1.0)
                state.whatif_out(sym, -0.5)
            state.set_collateral(table.currency, 1.0)
            state.margin()
            state.rebind(table)
            pool = AccountPool(table)
            pool.B.set_quantity(sym, 1.0)
            pool.rebind(None, table)

    # ================================================================ market data ==========

    def update_market(
        self,
        *,
        full_snapshot: bool,
        valuation_time: datetime | None,
        index_usd: Mapping[str, float],
        marks_usd: Mapping[str, float],
        ivs: Mapping[str, float],
        rate: float | None = None,
    ) -> MarketUpdateResult:
        t0 = time.perf_counter_ns()
        with self._market_lock:
            old = self.market
            try:
                if (
                    old is not None
                    and valuation_time is not None
                    and valuation_time < old.valuation_time
                ):
                    raise precondition(
                        f"valuation_time: {valuation_time.isoformat()} is older than the "
                        f"current {old.valuation_time.isoformat()}"
                    )
                if full_snapshot or old is None:
                    if valuation_time is None:
                        raise invalid("valuation_time: required for a full snapshot")
                    snap = MarketSnapshot(
                        valuation_time,
                        {k.upper(): float(v) for k, v in index_usd.items()},
                        {k.upper(): float(v) for k, v in marks_usd.items()},
                        {k.upper(): float(v) for k, v in ivs.items()},
                        0.0 if rate is None else float(rate),
                    )
                else:
                    if valuation_time is not None and valuation_time < old.valuation_time:
                        raise precondition(
                            f"valuation_time: {valuation_time.isoformat()} is older than the "
                            f"current {old.valuation_time.isoformat()}"
                        )
                    snap = old.snapshot.with_updates(
                        valuation_time=valuation_time,
                        index_usd={k.upper(): float(v) for k, v in index_usd.items()},
                        marks_usd={k.upper(): float(v) for k, v in marks_usd.items()},
                        ivs={k.upper(): float(v) for k, v in ivs.items()},
                        rate=rate,
                    )
                version = 1 if old is None else old.version + 1
                new = build_market_state(version, snap, self.model, self.rules_params)
            except (MarketDataError, InstrumentError) as exc:
                raise invalid(str(exc)) from None
            # Instruments this update drops take no new orders or positions from now on, so
            # once no account holds them (checked under each account's lock) none can.
            self._dropping = (
                frozenset(old.instruments) - frozenset(new.instruments) if old else frozenset()
            )
            try:
                held = self._held_symbols()
                missing = sorted(s for s in held if s not in new.instruments)
                if missing:
                    raise precondition(
                        f"market: {missing[0]} is held or worked by an account but cannot be "
                        "priced by this update (missing data or expired); reconcile positions first"
                    )
                self.market = new
            except BaseException:
                self._dropping = frozenset()
                raise
            n = 0
            for account in list(self.accounts.values()):
                with account.lock:
                    self._rebind_account(account, old, new)
                n += 1
            self._dropping = frozenset()
        return MarketUpdateResult(new.version, n, time.perf_counter_ns() - t0)

    def load_snapshot(self, snapshot: MarketSnapshot) -> MarketUpdateResult:
        """A full market update from a snapshot object (demo data, benchmarks, tests)."""
        return self.update_market(
            full_snapshot=True,
            valuation_time=snapshot.valuation_time,
            index_usd=snapshot.index_usd,
            marks_usd=snapshot.marks_usd,
            ivs=snapshot.ivs,
            rate=snapshot.rate,
        )

    def _held_symbols(self) -> set[str]:
        held: set[str] = set()
        for account in list(self.accounts.values()):
            with account.lock:
                held.update(account.positions)
                held.update(o.symbol for o in account.orders.values() if o.status.is_working)
        return held

    def _rebind_account(self, account: Account, old: MarketState | None, new: MarketState) -> None:
        # futures are marked to market: the move of their mark settles into collateral
        if old is not None:
            mtm = new.marked_to_market
            for sym, q in account.positions.items():
                if sym not in mtm or sym not in old.quotes:
                    continue
                inst = new.instruments[sym]
                m0, m1 = old.quotes[sym].mark, new.quotes[sym].mark
                if inst.is_inverse:
                    self._add_cash(account, inst.underlying, q * (1.0 - m0 / m1))
                else:
                    self._add_cash(account, USD, q * (m1 - m0))
        # holdings (collateral rows included) are rebuilt on the new tables; cash is kept
        margins = {ccy: pool.rebind(new, new.tables[ccy]) for ccy, pool in account.pools.items()}
        account.market = new
        self._refresh_account(account, new, margins)

    # ================================================================ accounts =============

    def _market(self) -> MarketState:
        m = self.market
        if m is None:
            raise precondition("market: no market data loaded yet (UpdateMarket first)")
        return m

    def _account(self, account_id: str) -> Account:
        if not account_id:
            raise invalid("account_id: missing")
        acc = self.accounts.get(account_id)
        if acc is None:
            raise not_found(f"account_id: unknown account {account_id!r}")
        return acc

    def upsert_account(
        self,
        account_id: str,
        *,
        collateral: Mapping[str, float] | None = None,
        pool_mode: PoolMode | None = None,
        margin_method: MarginMethod | None = None,
        limits: Limits | None = None,
    ) -> tuple[bool, AccountView]:
        if not account_id:
            raise invalid("account_id: missing")
        market = self._market()
        clean: dict[str, float] = {}
        for ccy, amount in (collateral or {}).items():
            code = ccy.upper()
            if not math.isfinite(amount):
                raise invalid(f"collateral.{ccy}: must be finite")
            if code not in USD_LIKE and code not in market.snapshot.index_usd:
                raise invalid(f"collateral.{ccy}: unknown currency (no index price)")
            clean[code] = float(amount)
        if limits is not None:
            _check_limits(limits)
        # members, not plain ints: the decision path compares them by identity
        pool_mode = _member(PoolMode, pool_mode, "pool_mode")
        margin_method = _member(MarginMethod, margin_method, "margin_method")
        with self._accounts_lock:
            acc = self.accounts.get(account_id)
            created = acc is None
            if created:
                halted, why = self.halt_all
                acc = Account(
                    account_id,
                    pool_mode or PoolMode.CROSS,
                    margin_method or MarginMethod.AUTO,
                    limits or self.config.default_limits,
                    TradingState.HALTED if halted else TradingState.ACTIVE,
                    why if halted else "",
                    market=market,
                )
                self.accounts[account_id] = acc
        with acc.lock:
            if not created and pool_mode is not None and pool_mode != acc.pool_mode:
                if acc.positions or any(o.status.is_working for o in acc.orders.values()):
                    raise precondition(
                        "pool_mode: cannot change while the account holds positions or orders"
                    )
                acc.pool_mode = pool_mode
                acc.pools.clear()
                for ccy, amount in acc.collateral.items():
                    for pool in self._collateral_pools(acc, market, ccy):
                        pool.set_collateral(ccy, amount)
            if margin_method is not None:
                acc.margin_method = margin_method
            if limits is not None and not created:
                acc.limits = limits
            for ccy, amount in clean.items():
                acc.collateral[ccy] = amount
                for pool in self._collateral_pools(acc, market, ccy):
                    pool.set_collateral(ccy, amount)
            if created and not acc.pools:
                acc.pool(market, USD)
            self._refresh_account(acc, market)
            view = self._view(acc, market)
        return created, view

    def _collateral_pools(self, acc: Account, market: MarketState, ccy: str) -> list[AccountPool]:
        if ccy in USD_LIKE or not acc.segregated:
            return [acc.pool(market, USD)]
        return [acc.pool(market, ccy)]

    def _add_cash(self, acc: Account, ccy: str, amount: float) -> None:
        if amount == 0.0:
            return
        acc.collateral[ccy] = acc.collateral.get(ccy, 0.0) + amount
        market = self.market
        assert market is not None
        for pool in self._collateral_pools(acc, market, ccy):
            pool.set_collateral(ccy, acc.collateral[ccy])

    def set_positions(
        self, account_id: str, positions: Sequence[tuple[str, float, float | None]]
    ) -> AccountView:
        """Reconciliation snapshot from the venue: replaces every position."""
        market = self._market()
        acc = self._account(account_id)
        target: dict[str, float] = {}
        avg: dict[str, float] = {}
        for k, (sym, qty, avg_price) in enumerate(positions):
            field = f"positions[{k}]"
            if not sym:
                raise invalid(f"{field}.symbol: missing")
            try:
                symbol = parse_symbol(sym).symbol
            except InstrumentError as exc:
                raise invalid(f"{field}.symbol: {exc}") from None
            if symbol not in market.instruments:
                raise not_found(f"{field}.symbol: {sym} is not priced by the current market")
            if not math.isfinite(qty):
                raise invalid(f"{field}.quantity: must be finite")
            if avg_price is not None and not _finite_positive(avg_price):
                raise invalid(f"{field}.avg_price: must be finite and positive")
            if symbol in target:
                raise invalid(f"{field}.symbol: {sym} listed twice")
            target[symbol] = float(qty)
            if avg_price is not None:
                avg[symbol] = float(avg_price)
        with acc.lock:
            if acc.market is not market:
                raise precondition("market: changed while reconciling; retry")
            dropping = sorted(set(target) & self._dropping)
            if dropping:
                raise precondition(f"positions: {dropping[0]} is being removed by a market update")
            for sym in set(acc.positions) | set(target):
                dq = target.get(sym, 0.0) - acc.positions.get(sym, 0.0)
                if dq != 0.0:
                    pool = acc.pool(market, acc.pool_currency(market, sym))
                    pool.change(market, sym, dq, 0.0, 0.0)
            acc.positions = {s: q for s, q in target.items() if q != 0.0}
            acc.avg_price = avg
            for pool in acc.pools.values():
                acc.refresh_margin(pool)
            self._refresh_account(acc, market)
            return self._view(acc, market)

    def set_trading_state(
        self, account_id: str, all_accounts: bool, state: TradingState, reason: str
    ) -> int:
        if state not in (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED):
            raise invalid("state: must be ACTIVE, REDUCING or HALTED")
        state = TradingState(state)
        if all_accounts:
            if account_id:
                raise invalid("account_id: give either account_id or all_accounts, not both")
            with self._accounts_lock:  # no account can be created half-way through
                self.halt_all = (state == TradingState.HALTED, reason)
                targets = list(self.accounts.values())
        else:
            targets = [self._account(account_id)]
        for acc in targets:
            with acc.lock:
                acc.trading_state = state
                acc.trading_state_reason = reason
        return len(targets)

    # ================================================================ decisions ============

    def check_order(
        self, order: OrderRequest, deadline_ns: int | None = None, reserve: bool = True
    ) -> Decision:
        """One decision, DESIGN section 6 order. ``deadline_ns`` is on ``clock_ns``'s scale."""
        # a free gate is taken without the timed wait's bookkeeping
        if not self._decision_gate.acquire(False) and not self._enter_gate(deadline_ns):
            return self._gate_timeout(order, self.clock_ns())
        try:
            # the budget counts the decision's own compute, from when its turn comes; time
            # queued for the gate counts only against the caller's deadline
            start = self.clock_ns()
            if deadline_ns is not None and start >= deadline_ns:
                return self._gate_timeout(order, start)  # nobody is waiting for the answer
            return self._check(order, start, self._budget_end(start, deadline_ns), reserve)
        finally:
            self._decision_gate.release()

    def _budget_end(self, start: int, deadline_ns: int | None) -> int:
        budget_end = start + self.config.decision_budget_ns
        return deadline_ns if deadline_ns is not None and deadline_ns < budget_end else budget_end

    def _enter_gate(self, deadline_ns: int | None) -> bool:
        """Wait for the gate. A caller that finds it free takes it with ``acquire(False)``
        first; a spent deadline is then caught by the decision's own budget check."""
        if deadline_ns is None:
            return self._decision_gate.acquire(timeout=_MAX_QUEUE_S)
        remaining = (deadline_ns - self.clock_ns()) / 1e9
        return remaining > 0 and self._decision_gate.acquire(timeout=remaining)

    def _gate_timeout(self, order: OrderRequest, start: int) -> Decision:
        d = Decision(order.account_id, order.client_order_id, False, _ACCEPTED)
        r = _Reject(Reason.LATENCY_BUDGET_EXCEEDED, "no turn to decide before the deadline")
        return self._finish(d, r, start)

    def _check(self, order: OrderRequest, start: int, budget_end: int, reserve: bool) -> Decision:
        """A decision with the gate held."""
        decision = Decision(order.account_id, order.client_order_id, False, _ACCEPTED)
        try:
            if self.market is None:
                raise _Reject(Reason.MARKET_DATA_MISSING, "no market data loaded yet", "market")
            acc = self.accounts.get(order.account_id) if order.account_id else None
            if acc is None:
                raise _Reject(
                    Reason.UNKNOWN_ACCOUNT, f"unknown account {order.account_id!r}", "account_id"
                )
            if reserve and not order.client_order_id:
                raise _Reject(
                    Reason.INVALID_ORDER, "client_order_id is required", "client_order_id"
                )
            # uncontended: no timeout bookkeeping (a timed acquire costs ~4x)
            if not acc.lock.acquire(False):
                remaining = (budget_end - self.clock_ns()) / 1e9
                if remaining <= 0 or not acc.lock.acquire(timeout=remaining):
                    raise _Reject(_LATENCY, "account busy past the latency budget")
            try:
                # the market the account's state is bound to (a market update rebinds it)
                market = acc.market
                decision.market_version = market.version
                return self._decide_locked(acc, market, order, decision, start, budget_end, reserve)
            finally:
                acc.lock.release()
        except _Reject as r:
            return self._finish(decision, r, start)
        except Exception as exc:  # fail closed: an internal fault is a reject, never an accept
            self.counters["internal_errors"] = self.counters.get("internal_errors", 0) + 1
            return self._finish(
                decision, _Reject(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"), start
            )

    def _finish(self, d: Decision, r: _Reject | None, start: int) -> Decision:
        if r is not None:
            d.accepted = False
            d.reason = r.reason
            d.detail = r.detail
            d.context_field, d.context_limit, d.context_actual, d.context_unit = (
                r.field,
                r.limit,
                r.actual,
                r.unit,
            )
            if r.reason == _LATENCY:
                self.counters["latency_rejects"] += 1
        d.compute_ns = self.clock_ns() - start
        self.counters["decisions"] += 1
        return d

    def _decide_locked(
        self,
        acc: Account,
        market: MarketState,
        order: OrderRequest,
        d: Decision,
        start: int,
        budget_end: int,
        reserve: bool,
    ) -> Decision:
        # 1. validation and idempotency
        if reserve:
            prior = acc.decisions.get(order.client_order_id)
            if prior is not None:
                original_order, original = prior
                if original_order.fingerprint() == order.fingerprint():
                    return dataclasses.replace(original, duplicate=True)
                return self._finish(
                    d,
                    _Reject(
                        Reason.DUPLICATE_ORDER_ID_MISMATCH,
                        f"client_order_id {order.client_order_id!r} was used for a different order",
                        "client_order_id",
                    ),
                    start,
                )
        if reserve and order.client_order_id in acc.orders:
            # its decision has left the idempotency window, the order has not
            return self._finish(
                d,
                _Reject(
                    Reason.DUPLICATE_ORDER_ID_MISMATCH,
                    f"client_order_id {order.client_order_id!r} belongs to an order already "
                    "decided (its decision is no longer kept for replay)",
                    "client_order_id",
                ),
                start,
            )
        try:
            inst = self._validate(order, market)
        except _Reject as r:
            return self._remember(acc, order, self._finish(d, r, start), reserve)
        symbol = inst.symbol
        if symbol in self._dropping:
            r = _Reject(
                Reason.MARKET_DATA_MISSING,
                f"{symbol} is being removed by a market update",
                "symbol",
            )
            return self._remember(acc, order, self._finish(d, r, start), reserve)
        side = _SIDE[order.side]
        buy = side is _BUY
        qty = float(order.quantity)
        signed = qty if buy else -qty
        ccy = inst.underlying if inst.is_inverse and acc.segregated else USD
        # a pool the account doesn't have yet joins it only when an order is reserved
        pool = acc.pools.get(ccy) or AccountPool(market.tables[ccy], acc.method_in_use is _RULES)
        d.pool_currency = ccy
        d.margin_method = acc.method_in_use
        # 2. trading state
        pos = acc.positions.get(symbol, 0.0)
        same_side = (acc.working_buy if buy else acc.working_sell).get(symbol, 0.0)
        reduces_position = pos * signed < 0.0 and same_side + qty <= abs(pos) + _EPS
        try:
            if acc.trading_state is _HALTED:
                raise _Reject(
                    Reason.ACCOUNT_HALTED,
                    acc.trading_state_reason or "account halted",
                    "trading_state",
                )
            if acc.trading_state is _REDUCING and not reduces_position:
                raise _Reject(
                    Reason.ACCOUNT_REDUCING_ONLY,
                    "account is REDUCING: only orders that reduce a position are allowed",
                    "trading_state",
                )
            if order.reduce_only and not reduces_position:
                raise _Reject(
                    Reason.REDUCE_ONLY_VIOLATION,
                    "reduce_only order would open or increase a position",
                    "reduce_only", abs(pos) - same_side, qty, "coin",
                )  # fmt: skip
            # 3. static limits
            if acc.limits.active:
                self._check_static(acc, market, order, symbol, qty, signed, pos)
            # 4. margin
            side_after = self._margin_step(acc, market, pool, symbol, buy, signed, d)
            # 5. latency budget: fail closed if the decision took too long
            if self.clock_ns() > budget_end:
                raise _Reject(_LATENCY, "decision exceeded the latency budget")
        except _Reject as rej:
            if rej.reason != Reason.INSUFFICIENT_MARGIN:
                self._current_numbers(d, pool)
            return self._remember(acc, order, self._finish(d, rej, start), reserve)
        d.accepted = True
        if reserve:
            acc.pools.setdefault(ccy, pool)
            self._reserve(acc, market, pool, order, symbol, buy, qty, side_after)
        return self._remember(acc, order, self._finish(d, None, start), reserve)

    def _remember(self, acc: Account, order: OrderRequest, d: Decision, reserve: bool) -> Decision:
        if reserve and order.client_order_id and d.reason != _LATENCY:
            acc.remember(d, order, self.config.idempotency_window)
        return d

    @staticmethod
    def _validate(order: OrderRequest, market: MarketState) -> Instrument:
        """The order's listed instrument; raises the reject of a malformed order."""
        inst = market.instruments.get(order.symbol)
        if inst is None:
            if not order.symbol:
                raise _Reject(Reason.INVALID_ORDER, "symbol is required", "symbol")
            try:
                inst = parse_symbol(order.symbol)
            except InstrumentError as exc:
                raise _Reject(Reason.UNKNOWN_INSTRUMENT, str(exc), "symbol") from None
            if inst.expiry is not None and inst.expiry <= market.valuation_time:
                raise _Reject(
                    Reason.INSTRUMENT_EXPIRED,
                    f"{inst.symbol} expired at {inst.expiry.isoformat()}",
                    "symbol",
                )
            # another spelling of a listed symbol resolves to the listed instrument
            inst = market.instruments.get(inst.symbol)
            if inst is None:
                raise _Reject(
                    Reason.UNKNOWN_INSTRUMENT,
                    f"{order.symbol} is not listed in the market data",
                    "symbol",
                )
        if order.side not in _SIDE:
            raise _Reject(Reason.INVALID_ORDER, "side must be BUY or SELL", "side")
        if order.order_type not in _ORDER_TYPES:
            raise _Reject(Reason.INVALID_ORDER, "order_type must be LIMIT or MARKET", "order_type")
        q = order.quantity
        if not (isinstance(q, _NUMBER) and math.isfinite(q) and q > 0.0):
            raise _Reject(
                Reason.INVALID_ORDER,
                "quantity must be finite and positive",
                "quantity",
                actual=q if isinstance(q, float) and math.isfinite(q) else None,
            )
        p = order.price
        if p is None:
            if order.order_type == _LIMIT:
                raise _Reject(Reason.INVALID_ORDER, "a LIMIT order needs a price", "price")
        elif not (math.isfinite(p) and p > 0.0):
            raise _Reject(Reason.INVALID_ORDER, "price must be finite and positive", "price")
        return inst

    def _check_static(
        self,
        acc: Account,
        market: MarketState,
        order: OrderRequest,
        symbol: str,
        qty: float,
        signed: float,
        pos: float,
    ) -> None:
        lim = acc.limits
        if lim.max_order_quantity is not None and qty > lim.max_order_quantity:
            raise _Reject(
                Reason.MAX_ORDER_QUANTITY,
                "order quantity above the limit",
                "quantity",
                lim.max_order_quantity,
                qty,
                "coin",
            )
        quote = market.quotes[symbol]
        if lim.max_order_notional_usd is not None:
            notional = qty * quote.notional_usd
            if notional > lim.max_order_notional_usd:
                raise _Reject(
                    Reason.MAX_ORDER_NOTIONAL,
                    "order notional above the limit",
                    "quantity",
                    lim.max_order_notional_usd,
                    notional,
                    "USD",
                )
        if lim.price_band_fraction is not None and order.price is not None:
            dev = abs(order.price - quote.mark) / quote.mark
            if dev > lim.price_band_fraction:
                raise _Reject(
                    Reason.PRICE_BAND,
                    f"price {order.price:g} is {dev:.1%} away from mark {quote.mark:g}",
                    "price",
                    lim.price_band_fraction,
                    dev,
                    "fraction",
                )
        if lim.max_open_orders is not None and acc.open_orders >= lim.max_open_orders:
            raise _Reject(
                Reason.MAX_OPEN_ORDERS,
                "too many open orders",
                "open_orders",
                float(lim.max_open_orders),
                float(acc.open_orders + 1),
                "orders",
            )
        plimit = lim.position_limits.get(symbol, lim.default_position_limit)
        if plimit is not None:
            working = (acc.working_buy if signed > 0 else acc.working_sell).get(symbol, 0.0)
            worst = abs(pos + (working + qty) * (1.0 if signed > 0 else -1.0))
            if worst > plimit + _EPS and worst > abs(pos):
                raise _Reject(
                    Reason.POSITION_LIMIT,
                    "position limit would be exceeded",
                    "quantity",
                    plimit,
                    worst,
                    "coin",
                )

    def _margin_step(
        self,
        acc: Account,
        market: MarketState,
        pool: AccountPool,
        symbol: str,
        buy: bool,
        signed: float,
        d: Decision,
    ) -> tuple[float, float, tuple[int, int, float]]:
        """Fill the decision's margin numbers; reject if short of margin. Returns the side's
        (IM, MM, scenario key) after the order."""
        state = pool.B if buy else pool.S
        equity = pool.equity
        im_before = pool.im
        side_im_before = pool.im_B if buy else pool.im_S
        side_im, side_mm, key = side_figures(state.whatif_out(symbol, signed))
        if acc.method_in_use is _RULES:
            coef = market.rules_coefficients(pool.currency, symbol)
            r = pool.rules["B" if buy else "S"]
            q0 = state.qty.get(symbol, 0.0)
            im0, mm0 = RulesTotals.leg(coef, q0)
            im1, mm1 = RulesTotals.leg(coef, q0 + signed)
            side_im, side_mm = r.im + im1 - im0, r.mm + mm1 - mm0
        if buy:
            other_im, other_mm, other_key = pool.im_S, pool.mm_S, pool.scen_S
        else:
            other_im, other_mm, other_key = pool.im_B, pool.mm_B, pool.scen_B
        im_after = max(side_im, other_im)
        d.initial_margin_before, d.initial_margin_after = im_before, im_after
        d.maintenance_margin_before, d.maintenance_margin_after = pool.mm, max(side_mm, other_mm)
        d.equity_before = d.equity_after = equity
        # name the scenario that sets IM after: the other side's when it binds
        d.worst_scenario = self._scenario_info(pool, key if other_im <= side_im else other_key)
        d.risk_reducing = side_im < side_im_before - _EPS * max(1.0, side_im_before)
        # written so that a NaN margin on either side fails closed
        if not (side_im <= equity and other_im <= equity) and not d.risk_reducing:
            raise _Reject(
                Reason.INSUFFICIENT_MARGIN,
                f"initial margin after {im_after:.6g} exceeds equity {equity:.6g} {pool.currency}",
                "initial_margin", equity, im_after, pool.currency,
            )  # fmt: skip
        return side_im, side_mm, key

    def _current_numbers(self, d: Decision, pool: AccountPool) -> None:
        """A reject before (or without) the margin step still carries the account's margin,
        equity and worst scenario; nothing changes, so before = after."""
        if d.worst_scenario is not None:
            return  # the margin step already filled them
        d.initial_margin_before = d.initial_margin_after = pool.im
        d.maintenance_margin_before = d.maintenance_margin_after = pool.mm
        d.equity_before = d.equity_after = pool.equity
        d.worst_scenario = self._scenario_info(
            pool, pool.scen_B if pool.im_B >= pool.im_S else pool.scen_S
        )

    @staticmethod
    def _scenario_info(pool: AccountPool, key: tuple[int, int, float]) -> ScenarioInfo:
        cell, u, loss = key
        t = pool.table
        move, vol = t.labels[u][cell]
        return ScenarioInfo(cell, move, vol, t.currency, t.coins[u], loss)

    def _reserve(
        self, acc: Account, market: MarketState, pool: AccountPool, order: OrderRequest,
        symbol: str, buy: bool, qty: float, side_after: tuple[float, float, tuple[int, int, float]],
    ) -> None:  # fmt: skip
        # the side's state takes the change its what-if just evaluated (see PoolState)
        if buy:
            pool.change(market, symbol, 0.0, qty, 0.0)
            working = acc.working_buy
            pool.im_B, pool.mm_B, pool.scen_B = side_after
        else:
            pool.change(market, symbol, 0.0, 0.0, qty)
            working = acc.working_sell
            pool.im_S, pool.mm_S, pool.scen_S = side_after
        working[symbol] = working.get(symbol, 0.0) + qty
        pool.im = max(pool.im_B, pool.im_S)
        pool.mm = max(pool.mm_B, pool.mm_S)
        coid = order.client_order_id
        expires = self.clock_ns() + self.config.reservation_ttl_ns
        acc.orders[coid] = WorkingOrder(
            order, symbol, _BUY if buy else _SELL, pool.currency, qty, order.price,
            time.time_ns(), expires,
        )  # fmt: skip
        acc.open_orders += 1
        acc.pending[coid] = expires
        self._pending_accounts.add(acc)

    def check_orders(
        self, orders: Sequence[OrderRequest], deadline_ns: int | None = None
    ) -> list[Decision]:
        if not orders:
            raise invalid("orders: empty batch")
        if len(orders) > self.config.max_batch_orders:
            raise invalid(
                f"orders: batch of {len(orders)} exceeds the maximum {self.config.max_batch_orders}"
            )
        # the whole batch holds the gate once: decided in sequence, without other callers'
        # orders interleaving (and without a gate hand-off per order)
        if not self._decision_gate.acquire(False) and not self._enter_gate(deadline_ns):
            now = self.clock_ns()
            return [self._gate_timeout(o, now) for o in orders]
        try:
            out = []
            for o in orders:
                t = self.clock_ns()
                if deadline_ns is not None and t >= deadline_ns:
                    out.append(self._gate_timeout(o, t))
                else:
                    out.append(self._check(o, t, self._budget_end(t, deadline_ns), True))
            return out
        finally:
            self._decision_gate.release()

    def whatif(self, order: OrderRequest, deadline_ns: int | None = None) -> Decision:
        return self.check_order(order, deadline_ns, reserve=False)

    def max_quantity(self, account_id: str, symbol: str, price: float | None) -> MaxQuantityResult:
        t0 = time.perf_counter_ns()
        market = self._market()
        acc = self._account(account_id)
        if not symbol:
            raise invalid("symbol: missing")
        try:
            inst = parse_symbol(symbol)
        except InstrumentError as exc:
            raise invalid(f"symbol: {exc}") from None
        if inst.expiry is not None and inst.expiry <= market.valuation_time:
            raise precondition(f"symbol: {inst.symbol} expired")
        if inst.symbol not in market.instruments:
            raise not_found(f"symbol: {symbol} is not listed in the market data")
        if price is not None and not _finite_positive(price):
            raise invalid("price: must be finite and positive")
        px = price if price is not None else market.quotes[inst.symbol].mark
        results = []
        for side in (Side.BUY, Side.SELL):
            results.append(self._max_side(acc, inst.symbol, side, px))
        (qb, rb), (qs, rs) = results
        return MaxQuantityResult(
            account_id, inst.symbol, qb, qs, rb, rs, time.perf_counter_ns() - t0, market.version
        )

    def _max_side(
        self, acc: Account, symbol: str, side: Side, price: float
    ) -> tuple[float, Reason]:
        def probe(q: float) -> Decision:
            return self.check_order(
                OrderRequest(acc.account_id, "", symbol, side, q, price), reserve=False
            )

        lo, hi = 0.0, 1e-3
        first = probe(hi)
        if not first.accepted:
            # even a tiny order fails: bisect down toward zero
            reason = first.reason
            hi_bad = hi
            lo = 0.0
            for _ in range(60):
                mid = (lo + hi_bad) / 2.0
                if mid <= 0.0:
                    break
                if probe(mid).accepted:
                    lo = mid
                else:
                    hi_bad = mid
            return lo, reason
        reason = Reason.ACCEPTED
        lo = hi
        while True:
            hi = lo * 2.0
            dec = probe(hi)
            if not dec.accepted:
                reason = dec.reason
                break
            lo = hi
            if hi > 1e12:
                return hi, Reason.ACCEPTED
        for _ in range(100):
            mid = (lo + hi) / 2.0
            if mid <= lo or mid >= hi:
                break
            dec = probe(mid)
            if dec.accepted:
                lo = mid
            else:
                hi = mid
                reason = dec.reason
            if hi - lo <= 1e-12 * hi:
                break
        return lo, reason

    # ================================================================ order lifecycle ======

    def order_event(self, account_id: str, client_order_id: str, event: OrderEventBody) -> EventAck:
        market = self._market()
        acc = self._account(account_id)
        if not client_order_id:
            raise invalid("client_order_id: missing")
        with acc.lock:
            market = acc.market
            order = acc.orders.get(client_order_id)
            if order is None:
                raise not_found(
                    f"client_order_id: no order {client_order_id!r} on account {account_id!r}"
                )
            duplicate = False
            if not order.status.is_working:
                same = (
                    (isinstance(event, Cancelled) and order.status == OrderStatus.CANCELLED)
                    or (isinstance(event, Expired) and order.status == OrderStatus.EXPIRED)
                    or (
                        isinstance(event, VenueRejected)
                        and order.status == OrderStatus.VENUE_REJECTED
                    )
                    or (
                        isinstance(event, Filled)
                        and event.fill_id
                        and event.fill_id in (order.fill_ids or ())
                    )
                )
                if not same:
                    raise precondition(
                        f"client_order_id: order {client_order_id!r} is already {order.status.name}"
                    )
                duplicate = True
            elif isinstance(event, Acknowledged):
                if order.status == OrderStatus.PENDING_ACK:
                    order.status = OrderStatus.OPEN
                    acc.pending.pop(client_order_id, None)
                order.venue_order_id = event.venue_order_id or order.venue_order_id
            elif isinstance(event, VenueRejected | Cancelled | Expired):
                self._release(acc, market, order, order.working)
                order.status = {
                    VenueRejected: OrderStatus.VENUE_REJECTED,
                    Cancelled: OrderStatus.CANCELLED,
                    Expired: OrderStatus.EXPIRED,
                }[type(event)]
                acc.order_ended(order, self.config.idempotency_window)
            elif isinstance(event, Amended):
                self._amend(acc, market, order, event)
            elif isinstance(event, Filled):
                duplicate = self._fill(acc, market, order, event)
            else:  # pragma: no cover - exhaustive
                raise invalid("event: missing")
            pool = acc.pools[order.pool]
            acc.refresh_margin(pool)
            self._refresh_account(acc, market)
            return EventAck(
                account_id, client_order_id, duplicate, order.status, order.filled, order.working
            )

    def _release(self, acc: Account, market: MarketState, order: WorkingOrder, qty: float) -> None:
        if qty <= 0.0:
            return
        sym = order.symbol
        pool = acc.pools[order.pool]
        if order.side == Side.BUY:
            pool.change(market, sym, 0.0, -qty, 0.0)
            _bump(acc.working_buy, sym, -qty)
        else:
            pool.change(market, sym, 0.0, 0.0, -qty)
            _bump(acc.working_sell, sym, -qty)

    def _amend(self, acc: Account, market: MarketState, order: WorkingOrder, ev: Amended) -> None:
        if ev.new_quantity is not None:
            if not _finite_positive(ev.new_quantity):
                raise invalid("amended.new_quantity: must be finite and positive")
            if ev.new_quantity < order.filled - _EPS:
                raise precondition(
                    f"amended.new_quantity: below the filled quantity {order.filled:g}"
                )
        if ev.new_price is not None and not _finite_positive(ev.new_price):
            raise invalid("amended.new_price: must be finite and positive")
        if ev.new_quantity is not None:
            delta = ev.new_quantity - order.quantity
            sym = order.symbol
            pool = acc.pools[order.pool]
            if order.side == Side.BUY:
                pool.change(market, sym, 0.0, delta, 0.0)
                _bump(acc.working_buy, sym, delta)
            else:
                pool.change(market, sym, 0.0, 0.0, delta)
                _bump(acc.working_sell, sym, delta)
            order.quantity = ev.new_quantity
            if order.working <= _EPS:
                order.status = OrderStatus.FILLED
                acc.order_ended(order, self.config.idempotency_window)
        if ev.new_price is not None:
            order.price = ev.new_price

    def _fill(self, acc: Account, market: MarketState, order: WorkingOrder, ev: Filled) -> bool:
        if ev.fill_id and ev.fill_id in (order.fill_ids or ()):
            return True
        if not _finite_positive(ev.fill_quantity):
            raise invalid("filled.fill_quantity: must be finite and positive")
        if not _finite_positive(ev.fill_price):
            raise invalid("filled.fill_price: must be finite and positive")
        if ev.fill_quantity > order.working + _EPS * max(1.0, order.quantity):
            raise precondition(
                f"filled.fill_quantity: {ev.fill_quantity:g} exceeds the working quantity {order.working:g}"
            )
        f = min(ev.fill_quantity, order.working)
        sym = order.symbol
        inst = market.instruments[sym]
        pool = acc.pools[order.pool]
        signed = f if order.side == Side.BUY else -f
        # position up by the fill, the working order down by it
        if order.side == Side.BUY:
            pool.change(market, sym, signed, -f, 0.0)
            _bump(acc.working_buy, sym, -f)
        else:
            pool.change(market, sym, signed, 0.0, -f)
            _bump(acc.working_sell, sym, -f)
        q0 = acc.positions.get(sym, 0.0)
        q1 = q0 + signed
        if q1 == 0.0:
            acc.positions.pop(sym, None)
            acc.avg_price.pop(sym, None)
        else:
            acc.positions[sym] = q1
            if q0 == 0.0 or q0 * q1 < 0.0:
                acc.avg_price[sym] = ev.fill_price
            elif abs(q1) > abs(q0):
                a0 = acc.avg_price.get(sym, ev.fill_price)
                acc.avg_price[sym] = (a0 * abs(q0) + ev.fill_price * f) / abs(q1)
        # cash: what the fill costs against the current mark, in the settlement currency
        mark = market.quotes[sym].mark
        p = ev.fill_price
        if inst.kind in (Kind.FUTURE, Kind.PERPETUAL):
            if inst.is_inverse:
                # DESIGN section 3: Q (1 - 1/(1+s)) for the move s = mark/p - 1 since the fill
                self._add_cash(acc, inst.underlying, signed * inst.multiplier * (1.0 - p / mark))
            else:
                self._add_cash(acc, USD, signed * inst.multiplier * (mark - p))
        elif inst.is_option and inst.is_inverse:
            self._add_cash(acc, inst.underlying, -signed * inst.multiplier * p)
        else:  # spot and linear options pay the premium / price in USD
            self._add_cash(acc, USD, -signed * inst.multiplier * p)
        order.filled += f
        if ev.fill_id:
            if order.fill_ids is None:
                order.fill_ids = set()
            order.fill_ids.add(ev.fill_id)
        if order.quantity - order.filled <= _EPS * max(1.0, order.quantity):
            order.status = OrderStatus.FILLED
            acc.order_ended(order, self.config.idempotency_window)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
            acc.pending.pop(order.request.client_order_id, None)
        return False

    def expire_reservations(self, now_ns: int | None = None) -> int:
        """Release the reservations of accepted orders never acknowledged within the TTL."""
        now = self.clock_ns() if now_ns is None else now_ns
        n = 0
        for acc in list(self._pending_accounts):
            with acc.lock:
                if not acc.pending:
                    self._pending_accounts.discard(acc)
                    continue
                # deadlines are accepted-time + a fixed TTL, so the dict (insertion order) is
                # sorted by deadline: only its expired head is read
                if next(iter(acc.pending.values())) > now:
                    continue
                market = acc.market
                expired = []
                for coid, deadline in acc.pending.items():
                    if deadline > now:
                        break
                    expired.append(coid)
                for coid in expired:
                    o = acc.orders.get(coid)
                    if o is None or o.status != OrderStatus.PENDING_ACK:
                        acc.pending.pop(coid, None)
                        continue
                    self._release(acc, market, o, o.working)
                    o.status = OrderStatus.RESERVATION_EXPIRED
                    acc.order_ended(o, self.config.idempotency_window)
                    n += 1
                for pool in acc.pools.values():
                    acc.refresh_margin(pool)
                if not acc.pending:
                    self._pending_accounts.discard(acc)
        return n

    # ================================================================ status & views =======

    def _pool_positions_margin(
        self, acc: Account, pool: AccountPool, out3: np.ndarray | None = None
    ) -> tuple[float, float]:
        """(IM, MM) of the pool's positions alone (no working orders)."""
        if acc.method_in_use == MarginMethod.RULES_BASED:
            return pool.rules["P"].im, pool.rules["P"].mm
        im, mm, _ = side_figures(pool.P.margin_out() if out3 is None else out3[0])
        return im, mm

    def _equity_usd(self, acc: Account, market: MarketState) -> float:
        total = 0.0
        for ccy, pool in acc.pools.items():
            total += pool.P.equity * (1.0 if ccy == USD else market.snapshot.index(ccy))
        return total

    def _refresh_account(
        self, acc: Account, market: MarketState, margins: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Method in use, cached margins and margin status; publish a status change.
        ``margins``: per pool, the margins a rebind has just computed (else recomputed)."""
        method = acc.margin_method
        if method == MarginMethod.AUTO:
            eq = self._equity_usd(acc, market)
            method = (
                MarginMethod.PORTFOLIO
                if eq >= self.config.pm_equity_minimum_usd
                else MarginMethod.RULES_BASED
            )
        acc.method_in_use = method
        for pool in acc.pools.values():
            pool.set_track_rules(market, method == MarginMethod.RULES_BASED)
        worst = MarginStatus.OK
        worst_pool = None
        figures = None
        for ccy, pool in acc.pools.items():
            out3 = margins.get(ccy) if margins else None
            acc.refresh_margin(pool, out3)
            im, mm = self._pool_positions_margin(acc, pool, out3)
            eq = pool.P.equity
            status = (
                MarginStatus.LIQUIDATION if eq < mm - _EPS else
                MarginStatus.MARGIN_CALL if eq < im - _EPS else MarginStatus.OK
            )  # fmt: skip
            if worst_pool is None or status > worst:
                worst, worst_pool, figures = status, ccy, (eq, im, mm)
        if worst != acc.status and worst_pool is not None and figures is not None:
            event = MarginStatusEvent(
                acc.account_id, acc.status, worst, worst_pool, figures[0], figures[1], figures[2],
                time.time_ns(), market.version,
            )  # fmt: skip
            acc.status = worst
            self._publish(event)

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=100_000)
        with self._sub_lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._sub_lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def _publish(self, event: MarginStatusEvent) -> None:
        with self._sub_lock:
            subs = list(self._subscribers)
        for q in subs:
            # a subscriber that stopped reading loses events, not the engine
            with contextlib.suppress(queue.Full):
                q.put_nowait(event)

    def current_status_events(self, account_ids: Iterable[str]) -> list[MarginStatusEvent]:
        """The current status of each account, with the figures of its worst pool (the same
        shape as a change event)."""
        self._market()
        out = []
        for aid in account_ids:
            acc = self._account(aid)
            with acc.lock:
                view = self._view(acc, acc.market)
            worst = max(view.pools, key=lambda p: p.margin_status, default=None)
            ccy, eq, im, mm = (
                (worst.currency, worst.equity, worst.positions_initial_margin,
                 worst.positions_maintenance_margin)
                if worst is not None else (USD, 0.0, 0.0, 0.0)
            )  # fmt: skip
            out.append(
                MarginStatusEvent(
                    aid,
                    acc.status,
                    acc.status,
                    ccy,
                    eq,
                    im,
                    mm,
                    time.time_ns(),
                    view.market_version,
                )
            )
        return out

    def account_view(self, account_id: str) -> AccountView:
        self._market()  # raises if no market data yet
        acc = self._account(account_id)
        with acc.lock:
            return self._view(acc, acc.market)

    def _view(self, acc: Account, market: MarketState) -> AccountView:
        pools: list[PoolView] = []
        eq_usd = im_usd = mm_usd = 0.0
        worst: ScenarioInfo | None = None
        worst_loss = -1.0
        for ccy, pool in sorted(acc.pools.items()):
            im_p, mm_p = self._pool_positions_margin(acc, pool)
            # scenario and add-ons of the state that sets the pool's IM (orders included)
            binding = pool.B if pool.im_B >= pool.im_S else pool.S
            t = pool.table
            out = np.zeros((len(t.coins) + 1, mk.N_OUT))
            t.model.margin_kernel(binding.pnl, binding.aux, t.und_price, t.gparams, t.uparams, out)
            total = out.shape[0] - 1
            scen = self._scenario_info(pool, scenario_key(out))
            eq = pool.P.equity
            status = (
                MarginStatus.LIQUIDATION if eq < mm_p - _EPS else
                MarginStatus.MARGIN_CALL if eq < im_p - _EPS else MarginStatus.OK
            )  # fmt: skip
            add_ons = {
                n: float(out[total, mk.O_ADDON0 + k])
                for k, n in enumerate(market.model.addon_names)
            }
            pools.append(
                PoolView(
                    ccy, eq, pool.im, pool.mm, im_p, mm_p, scen, add_ons, status, acc.method_in_use
                )
            )
            fx = 1.0 if ccy == USD else market.snapshot.index(ccy)
            eq_usd += eq * fx
            im_usd += pool.im * fx
            mm_usd += pool.mm * fx
            if scen.loss * fx > worst_loss:
                worst_loss, worst = scen.loss * fx, scen
        positions = []
        for sym, q in sorted(acc.positions.items()):
            ccy = acc.pool_currency(market, sym)
            table = market.tables[ccy]
            positions.append(
                PositionView(
                    sym,
                    q,
                    acc.avg_price.get(sym),
                    market.quotes[sym].mark,
                    q * table.value(sym),
                    ccy,
                )
            )
        orders = [
            WorkingOrderView(
                o.request.client_order_id, o.symbol, o.side, OrderType(o.request.order_type),
                o.quantity, o.filled, o.working, o.price, o.request.reduce_only, o.status,
                o.venue_order_id, o.accepted_ns, o.request.time_in_force,
            )
            for o in acc.orders.values()
            if o.status.is_working
        ]  # fmt: skip
        return AccountView(
            acc.account_id, acc.trading_state, acc.trading_state_reason, acc.pool_mode,
            acc.method_in_use, acc.status, eq_usd, im_usd, mm_usd, worst, pools, positions,
            orders, dict(acc.collateral), acc.limits, market.version,
            int(market.valuation_time.timestamp() * 1e9),
        )  # fmt: skip


def _bump(d: dict[str, float], key: str, delta: float) -> None:
    v = d.get(key, 0.0) + delta
    if abs(v) <= _EPS:
        d.pop(key, None)
    else:
        d[key] = v


def _member(enum_type: type[E], value: E | int | None, name: str) -> E | None:
    if value is None:
        return None
    try:
        return enum_type(value)
    except ValueError:
        raise invalid(f"{name}: unknown value {value!r}") from None


def _check_limits(lim: Limits) -> None:
    for name in (
        "max_order_quantity",
        "max_order_notional_usd",
        "price_band_fraction",
        "default_position_limit",
    ):
        v = getattr(lim, name)
        if v is not None and not _finite_positive(v):
            raise invalid(f"limits.{name}: must be finite and positive")
    if lim.max_open_orders is not None and lim.max_open_orders < 1:
        raise invalid("limits.max_open_orders: must be >= 1")
    for sym, v in lim.position_limits.items():
        if not _finite_positive(v):
            raise invalid(f"limits.position_limits.{sym}: must be finite and positive")


__all__ = ["EngineConfig", "EngineError", "RiskEngine", "StateError"]
