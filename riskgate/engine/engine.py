"""The pre-trade engine: the book, the order of writes to it, and the public calls.

Every change of state is an event (:mod:`riskgate.engine.events`) committed here and applied
by :func:`riskgate.engine.apply.apply`, the one writer. Committing gives the event the next
sequence number, hands it to the journal sink (if any) and applies it, all under the commit
lock, so the journal's order is the order of application. A call's reply waits until its
events are written (``_durable``).

Locks, always taken in this order: the decision gate (decisions one at a time: under the GIL
they cannot run in parallel, and contending mid-decision stretched the p99), the market lock
(one market update at a time), an account's lock (one writer per account), the commit lock.
A market update builds its risk tables with no lock held, commits ``MarketApplied`` (the
market swap is O(1)), then binds each account to it under that account's own lock, so order
checks on other accounts keep flowing; an account touched before its turn binds first.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from riskgate.domain.instruments import InstrumentError, parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.engine import admin, decide, lifecycle, market_update, views
from riskgate.engine.apply import apply, bind
from riskgate.engine.book import Account, AccountPool, Book
from riskgate.engine.events import (
    DecisionRemembered,
    Event,
    OrderAccepted,
    OrderStep,
    ReservationsExpired,
    Stamped,
)
from riskgate.engine.market import MarketState
from riskgate.engine.state import StateError
from riskgate.engine.types import (
    AccountView,
    Decision,
    EngineConfig,
    EngineError,
    EventAck,
    Limits,
    MarginMethod,
    MarginStatusEvent,
    MarketUpdateResult,
    MaxQuantityResult,
    OrderEventBody,
    OrderRequest,
    OrderStatus,
    PoolMode,
    Reason,
    Side,
    TradingState,
    invalid,
    not_found,
    precondition,
)
from riskgate.models.base import ScenarioModel
from riskgate.models.rules import RulesParams

_MAX_QUEUE_S = 5.0  # without a deadline, how long a call may wait for its turn
_ACCEPTED, _LATENCY = Reason.ACCEPTED, Reason.LATENCY_BUDGET_EXCEEDED
_Reject = decide.Reject


class EventSink(Protocol):
    """Where committed events go before a reply depends on them (the journal)."""

    def write(self, events: Sequence[Stamped]) -> None: ...

    def wait_durable(self, seq: int) -> None: ...


class RiskEngine:
    def __init__(
        self,
        model: ScenarioModel,
        rules_params: RulesParams,
        config: EngineConfig | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        sink: EventSink | None = None,
    ) -> None:
        """``clock_ns`` times decisions (budgets, deadlines); ``wall_ns`` stamps events and
        reservation expiry (it must survive a restart)."""
        self.model = model
        self.rules_params = rules_params
        self.config = config or EngineConfig()
        self.book = Book(model, rules_params, self.config, status_changes=deque())
        self.clock_ns = clock_ns
        self.wall_ns = wall_ns
        self.sink = sink
        self.seq = 0  # of the last committed event
        self._pending: list[Stamped] = []  # committed, not yet handed to the sink
        self._accounts_lock = threading.Lock()  # account creation
        self._market_lock = threading.Lock()
        self._decision_gate = threading.Lock()
        self._commit_lock = threading.Lock()
        self._subscribers: list[queue.Queue] = []
        self._sub_lock = threading.Lock()
        self.counters: dict[str, int] = {"latency_rejects": 0, "decisions": 0}
        self._dropping: frozenset[str] = frozenset()  # symbols a market update is removing

    @property
    def market(self) -> MarketState | None:
        return self.book.market

    @property
    def accounts(self) -> dict[str, Account]:
        return self.book.accounts

    @property
    def halt_all(self) -> tuple[bool, str]:
        return self.book.halt_all

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

    # ================================================================ committing ===========

    def _commit(self, event: Event, hint: Any = None, defer: bool = False) -> int:
        """Sequence, journal (unless ``defer``: the caller flushes) and apply one event."""
        with self._commit_lock:
            self.seq = seq = self.seq + 1
            if self.sink is not None:
                self._pending.append(Stamped(seq, self.wall_ns(), event))
                if not defer:
                    self._write_pending()
            apply(self.book, event, hint)
        return seq

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, []
        self.sink.write(pending)  # type: ignore[union-attr]

    def _durable(self, seq: int) -> None:
        """Return once event ``seq`` is in the journal (as the fsync policy defines it), and
        publish the margin status changes applied so far."""
        sink = self.sink
        if sink is not None and seq:
            if self._pending:
                with self._commit_lock:
                    if self._pending:
                        self._write_pending()
            sink.wait_durable(seq)
        self._publish_changes()

    def _bind(self, acc: Account) -> None:
        bind(self.book, acc)

    def restore(self, book: Book, seq: int) -> None:
        """Serve a recovered book whose last applied event is ``seq``."""
        self.book = book
        self.seq = seq
        book.status_changes.clear()

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
            old = self.book.market
            event, new = market_update.prepare(
                old, self.model, self.rules_params, full_snapshot=full_snapshot,
                valuation_time=valuation_time, index_usd=index_usd, marks_usd=marks_usd,
                ivs=ivs, rate=rate,
            )  # fmt: skip
            # instruments this update drops take no new orders or positions from now on, so
            # once no account holds them (checked under each account's lock) none can
            self._dropping = (
                frozenset(old.instruments) - frozenset(new.instruments) if old else frozenset()
            )
            try:
                market_update.check_priced(
                    market_update.held_symbols(list(self.accounts.values())), new
                )
                seq = self._commit(event, new)
                n = 0
                for account in list(self.accounts.values()):
                    with account.lock:
                        self._bind(account)
                    n += 1
            finally:
                self._dropping = frozenset()
        self._durable(seq)
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

    # ================================================================ accounts =============

    def _market(self) -> MarketState:
        m = self.book.market
        if m is None:
            raise precondition("market: no market data loaded yet (UpdateMarket first)")
        return m

    def _account(self, account_id: str) -> Account:
        if not account_id:
            raise invalid("account_id: missing")
        acc = self.accounts.get(account_id)
        if acc is None:
            admin.check_account_id(account_id, self.config)
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
        args = (collateral, pool_mode, margin_method, limits)
        created = False
        with self._accounts_lock:  # two creations of one id: the second is an update
            acc = self.accounts.get(account_id)
            if acc is None:
                event = admin.upsert_event(self._market(), self.config, account_id, None, *args)
                seq = self._commit(event)
                acc, created = self.accounts[account_id], True
        with acc.lock:
            if not created:
                self._bind(acc)
                event = admin.upsert_event(acc.market, self.config, account_id, acc, *args)
                seq = self._commit(event)
            view = views.account_view(acc)
        self._durable(seq)
        return created, view

    def set_positions(
        self, account_id: str, positions: Sequence[tuple[str, float, float | None]]
    ) -> AccountView:
        """Reconciliation snapshot from the venue: replaces every position."""
        self._market()
        acc = self._account(account_id)
        with acc.lock:
            self._bind(acc)
            event = admin.positions_event(acc.market, account_id, positions)
            dropping = sorted({s for s, _, _ in event.positions} & self._dropping)
            if dropping:
                raise precondition(f"positions: {dropping[0]} is being removed by a market update")
            seq = self._commit(event)
            view = views.account_view(acc)
        self._durable(seq)
        return view

    def set_trading_state(
        self, account_id: str, all_accounts: bool, state: TradingState, reason: str
    ) -> int:
        event = admin.trading_state_event(account_id, all_accounts, state, reason)
        if all_accounts:
            # with the gate held no decision is half-way: none decided before the switch
            # can be committed after it
            with self._decision_gate, self._accounts_lock:
                seq = self._commit(event)
                n = len(self.accounts)
        else:
            acc = self._account(account_id)
            with acc.lock:
                seq = self._commit(event)
            n = 1
        self._durable(seq)
        return n

    # ================================================================ decisions ============

    def check_order(
        self, order: OrderRequest, deadline_ns: int | None = None, reserve: bool = True
    ) -> Decision:
        """One decision, in the decision flow's order. ``deadline_ns`` is on ``clock_ns``'s
        scale."""
        # a free gate is taken without the timed wait's bookkeeping
        if not self._decision_gate.acquire(False) and not self._enter_gate(deadline_ns):
            return self._gate_timeout(order, self.clock_ns())
        try:
            # the budget counts the decision's own compute, from when its turn comes; time
            # queued for the gate counts only against the caller's deadline
            start = self.clock_ns()
            if deadline_ns is not None and start >= deadline_ns:
                return self._gate_timeout(order, start)  # nobody is waiting for the answer
            d = self._check(order, start, self._budget_end(start, deadline_ns), reserve)
        finally:
            self._decision_gate.release()
        if reserve:
            self._durable(self.seq)
        return d

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
        r = _Reject(_LATENCY, "no turn to decide before the deadline")
        return self._finish(d, r, start)

    def _check(
        self, order: OrderRequest, start: int, budget_end: int, reserve: bool, defer: bool = False
    ) -> Decision:
        """A decision with the gate held; an accept or a remembered reject is committed."""
        decision = Decision(order.account_id, order.client_order_id, False, _ACCEPTED)
        try:
            if self.book.market is None:
                raise _Reject(Reason.MARKET_DATA_MISSING, "no market data loaded yet", "market")
            acc = self.accounts.get(order.account_id) if order.account_id else None
            if acc is None:
                raise _Reject(
                    Reason.UNKNOWN_ACCOUNT, f"unknown account {order.account_id!r}", "account_id"
                )
            if reserve:
                coid = order.client_order_id
                if not coid:
                    raise _Reject(
                        Reason.INVALID_ORDER, "client_order_id is required", "client_order_id"
                    )
                limit = self.config.max_client_order_id_bytes
                if decide.too_long(coid, limit):
                    raise _Reject(
                        Reason.INVALID_ORDER,
                        f"client_order_id is longer than {limit} bytes",
                        "client_order_id",
                    )
            # uncontended: no timeout bookkeeping (a timed acquire costs ~4x)
            if not acc.lock.acquire(False):
                remaining = (budget_end - self.clock_ns()) / 1e9
                if remaining <= 0 or not acc.lock.acquire(timeout=remaining):
                    raise _Reject(_LATENCY, "account busy past the latency budget")
            try:
                return self._decide_locked(acc, order, decision, start, budget_end, reserve, defer)
            finally:
                acc.lock.release()
        except _Reject as r:
            return self._finish(decision, r, start)
        except Exception as exc:  # fail closed: an internal fault is a reject, never an accept
            self.counters["internal_errors"] = self.counters.get("internal_errors", 0) + 1
            return self._finish(
                decision, _Reject(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"), start
            )

    def _decide_locked(
        self,
        acc: Account,
        order: OrderRequest,
        d: Decision,
        start: int,
        budget_end: int,
        reserve: bool,
        defer: bool,
    ) -> Decision:
        if acc.market is not self.book.market:
            self._bind(acc)
        market = acc.market
        d.market_version = market.version
        try:
            out = decide.decide(
                acc, market, order, d, reserve, self._dropping, budget_end, self.clock_ns
            )
        except _Reject as r:
            self._finish(d, r, start)
            if reserve and r.remember:
                self._commit(DecisionRemembered(order, d, self.wall_ns()), None, defer)
            return d
        if isinstance(out, Decision):
            return out  # a retry: the original decision
        d.accepted = True
        self._finish(d, None, start)
        if reserve:
            now = self.wall_ns()
            accepted = OrderAccepted(
                order, d, out.symbol, out.pool, now, now + self.config.reservation_ttl_ns
            )
            self._commit(accepted, out.hint, defer)
        return d

    def _finish(self, d: Decision, r: _Reject | None, start: int) -> Decision:
        if r is not None:
            d.accepted = False
            d.reason = r.reason
            d.detail = r.detail
            d.context_field, d.context_limit, d.context_actual, d.context_unit = (
                r.field, r.limit, r.actual, r.unit,
            )  # fmt: skip
            if r.reason is _LATENCY:
                self.counters["latency_rejects"] += 1
        d.compute_ns = self.clock_ns() - start
        self.counters["decisions"] += 1
        return d

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
        # orders interleaving (and without a gate hand-off per order); its events go to the
        # journal in one write
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
                    out.append(self._check(o, t, self._budget_end(t, deadline_ns), True, True))
        finally:
            self._decision_gate.release()
        self._durable(self.seq)
        return out

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
        if price is not None and not admin._finite_positive(price):
            raise invalid("price: must be finite and positive")
        px = price if price is not None else market.quotes[inst.symbol].mark
        results = []
        for side in (Side.BUY, Side.SELL):

            def probe(q: float, side: Side = side) -> Decision:
                return self.whatif(OrderRequest(acc.account_id, "", inst.symbol, side, q, px))

            results.append(decide.max_side(probe))
        (qb, rb), (qs, rs) = results
        return MaxQuantityResult(
            account_id, inst.symbol, qb, qs, rb, rs, time.perf_counter_ns() - t0, market.version
        )

    # ================================================================ order lifecycle ======

    def order_event(self, account_id: str, client_order_id: str, event: OrderEventBody) -> EventAck:
        self._market()
        acc = self._account(account_id)
        if not client_order_id:
            raise invalid("client_order_id: missing")
        seq = 0
        with acc.lock:
            order = acc.orders.get(client_order_id)
            if order is None:
                raise not_found(
                    f"client_order_id: no order {client_order_id!r} on account {account_id!r}"
                )
            self._bind(acc)
            duplicate = lifecycle.check(order, event, client_order_id)
            if not duplicate:
                seq = self._commit(OrderStep(account_id, client_order_id, event))
            ack = EventAck(
                account_id, client_order_id, duplicate, order.status, order.filled, order.working
            )
        self._durable(seq)
        return ack

    def expire_reservations(self, now_ns: int | None = None) -> int:
        """Release the reservations of accepted orders never acknowledged within the TTL."""
        now = self.wall_ns() if now_ns is None else now_ns
        n = seq = 0
        for acc in list(self.book.pending_accounts):
            with acc.lock:
                # deadlines are accepted-time + a fixed TTL, so the dict (insertion order) is
                # sorted by deadline: only its expired head is read
                expired = []
                for coid, deadline in acc.pending.items():
                    if deadline > now:
                        break
                    if acc.orders[coid].status == OrderStatus.PENDING_ACK:
                        expired.append(coid)
                if expired:
                    seq = self._commit(ReservationsExpired(acc.account_id, tuple(expired)))
                    n += len(expired)
                elif not acc.pending:
                    self.book.pending_accounts.discard(acc)
        self._durable(seq)
        return n

    # ================================================================ status & views =======

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=100_000)
        with self._sub_lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._sub_lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def _publish_changes(self) -> None:
        changes = self.book.status_changes
        while changes:
            try:
                aid, prev, status, pool, eq, im, mm, version = changes.popleft()
            except IndexError:
                return
            event = MarginStatusEvent(aid, prev, status, pool, eq, im, mm, time.time_ns(), version)
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
                self._bind(acc)
                view = views.account_view(acc)
            out.append(views.status_event(acc, view, time.time_ns()))
        self._publish_changes()
        return out

    def account_view(self, account_id: str) -> AccountView:
        self._market()  # raises if no market data yet
        acc = self._account(account_id)
        with acc.lock:
            self._bind(acc)
            view = views.account_view(acc)
        self._publish_changes()
        return view


__all__ = ["EngineConfig", "EngineError", "RiskEngine", "StateError"]
