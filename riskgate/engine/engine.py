"""The pre-trade engine: the book, the order of writes to it, and the public calls (the
order path's in :mod:`riskgate.engine.orders`).

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
import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from riskgate.domain.market import MarketSnapshot
from riskgate.engine import admin, arrays, decide, market_update, views
from riskgate.engine.apply import accounts_to_bind, apply, bind
from riskgate.engine.book import Account, AccountPool, Book
from riskgate.engine.capture import SnapshotCapture
from riskgate.engine.controls import views as control_views
from riskgate.engine.controls.engine_path import ControlsPath
from riskgate.engine.events import ACTOR, Audited, Event, MarketSourced, Stamped
from riskgate.engine.market import MarketState
from riskgate.engine.orders import OrderPath
from riskgate.engine.state import StateError
from riskgate.engine.types import (
    AccountView,
    EngineConfig,
    EngineError,
    Limits,
    MarginMethod,
    MarginStatusEvent,
    MarketUpdateResult,
    PoolMode,
    Reason,
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


class RiskEngine(OrderPath, ControlsPath):
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
        self._written = 0  # seq of the last event handed to the sink
        self._accounts_lock = threading.Lock()  # account creation
        self._market_lock = threading.Lock()
        self._decision_gate = threading.Lock()
        self._gate_waiters = 0  # callers blocked waiting for the gate
        self._waiters_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._subscribers: list[queue.Queue] = []
        self._sub_lock = threading.Lock()
        self.counters: dict[str, int] = {"latency_rejects": 0, "decisions": 0}
        self._dropping: frozenset[str] = frozenset()  # symbols a market update is removing
        self._capture: SnapshotCapture | None = None  # while a snapshot is being taken
        self._throttle = {}  # gateway principal -> its orders' window (not durable)

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
            arrays.warm_up(table)

    # ================================================================ committing ===========

    def _commit(self, event: Event, hint: Any = None, defer: bool = False) -> int:
        """Sequence, journal (unless ``defer``: the caller flushes) and apply one event."""
        with self._commit_lock:
            if self._capture is not None:
                self._capture.before(self.book, event)  # a snapshot is being taken
            self.seq = seq = self.seq + 1
            if self.sink is not None:
                self._pending.append(Stamped(seq, self.wall_ns(), event, ACTOR.get()))
                if not defer:
                    self._write_pending()
            apply(self.book, event, hint)
        return seq

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, []
        self.sink.write(pending)  # type: ignore[union-attr]
        self._written = pending[-1].seq

    def _durable(self, seq: int) -> None:
        """Return once event ``seq`` is in the journal (as the fsync policy defines it), and
        publish the margin status changes applied so far."""
        sink = self.sink
        if sink is not None and seq:
            if seq > self._written:
                # committed but not written yet: deferred (a batch's events), or a commit on
                # another thread has taken its seq and not yet written its event (``seq``
                # may be ``self.seq`` read unlocked); with the commit lock, neither is
                # half-way any more
                with self._commit_lock:
                    if self._pending:
                        self._write_pending()
            sink.wait_durable(seq)
        self._publish_changes()

    def _bind(self, acc: Account) -> None:
        bind(self.book, acc)

    def record_audit(
        self, principal: str, method: str, accounts: Sequence[str], outcome: str, detail: str
    ) -> None:
        """Journal a call that changed nothing (a refusal) for the audit trail; without a
        journal there is nothing to do (the log has it)."""
        if self.sink is None:
            return
        token = ACTOR.set(principal)
        try:
            seq = self._commit(Audited(principal, method, tuple(accounts), outcome, detail))
        finally:
            ACTOR.reset(token)
        self._durable(seq)

    def new_book(self) -> Book:
        """An empty book of this engine's model and configuration (to recover into)."""
        return Book(self.model, self.rules_params, self.config, status_changes=deque())

    def restore(self, book: Book, seq: int) -> None:
        """Serve a recovered book whose last applied event is ``seq``."""
        self.book = book
        self.seq = self._written = seq
        book.status_changes.clear()
        # what replay queued was acted on when it happened (its trips are in the journal)
        book.controls.alerts.clear()
        book.controls.loss_candidates.clear()

    def snapshot(self) -> tuple[int, bytes]:
        """The whole book and the sequence number of the last event in it.

        Copy on write: the cut is taken under the commit lock alone (the accounts listed,
        the market and the halt copied); then each account is copied into the snapshot
        under the commit lock, one at a time, unless a commit touching it comes first: that
        commit copies it before applying its event (an event of every account copies all
        that are left). Writers wait at most one account's copy. Market updates wait for
        the whole snapshot (they would rebind accounts outside a commit)."""
        from riskgate.engine.journal import codec

        with self._market_lock:
            with self._accounts_lock:
                accounts = list(self.accounts.values())
            for acc in accounts:  # a no-op unless a market update has just ended
                with acc.lock:
                    self._bind(acc)
            with self._commit_lock:
                if self._pending:
                    self._write_pending()
                seq, halt = self.seq, self.book.halt_all
                groups = codec.controls_head_to_proto(self.book)  # members' commits change it
                self._capture = capture = SnapshotCapture(accounts, codec.account_state_bytes)
            head = codec.book_head_to_proto(self.book, seq, controls=False)  # market: fixed
            head.halt_all, head.halt_all_reason = halt
            head.MergeFrom(groups)
            try:
                for acc in accounts:
                    self._capture_one(capture, acc)
            finally:
                with self._commit_lock:
                    self._capture = None
        self._publish_changes()
        return seq, codec.snapshot_payload(head, capture.states(accounts))

    def _capture_one(self, capture: SnapshotCapture, acc: Account) -> None:
        with self._commit_lock:
            capture.take(acc)
        # a writer woken by that release gets the GIL, and then the lock, before the next
        # account: without this the copying thread took the lock straight back and held
        # a waiting writer off for most of the snapshot (a lock is not fair)
        time.sleep(0)

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
        market_seq: int = 0,
        received_ns: int | None = None,
    ) -> MarketUpdateResult:
        """``market_seq`` (cluster mode): the update is that message of the market stream,
        journaled with it (``MarketSourced``) so a new owner knows where to go on from;
        ``received_ns``: its arrival time (default now)."""
        t0 = time.perf_counter_ns()
        self.roll_trading_day()  # the loss limits' day, before the market moves
        with self._market_lock:
            old = self.book.market
            event, new = market_update.prepare(
                old, self.model, self.rules_params, full_snapshot=full_snapshot,
                valuation_time=valuation_time, index_usd=index_usd, marks_usd=marks_usd,
                ivs=ivs, rate=rate,
                received_ns=self.wall_ns() if received_ns is None else received_ns,
            )  # fmt: skip
            # instruments this update drops take no new orders or positions from now on, so
            # once no account holds them (checked under each account's lock) none can
            self._dropping = (
                frozenset(old.instruments) - frozenset(new.instruments) if old else frozenset()
            )
            try:
                if self._dropping:
                    # what is held was priced by the market before (an update that drops
                    # an instrument checks none holds it): only a drop can leave a holding
                    # unpriced, and only then is every account read
                    market_update.check_priced(
                        market_update.held_symbols(list(self.accounts.values())), new
                    )
                seq = self._commit(event, new)
                if market_seq:
                    seq = self._commit(MarketSourced(market_seq))
                # the array book has re-margined every account; those whose status, method
                # or futures this update changes (or that have pre-trade controls, whose
                # loss limits and credit usage follow the marks) bind now, the others when
                # next touched
                n = len(self.accounts)
                for account in accounts_to_bind(self.book):
                    with account.lock:
                        self._bind(account)
            finally:
                self._dropping = frozenset()
        self._durable(seq)
        return MarketUpdateResult(new.version, n, time.perf_counter_ns() - t0)

    def skip_market(self, market_seq: int, refused: str) -> None:
        """Cluster mode: journal that this shard refused message ``market_seq`` of the
        market stream (it goes on with the next one)."""
        with self._market_lock:
            seq = self._commit(MarketSourced(market_seq, refused or "refused"))
        self._durable(seq)

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
                break
            event = MarginStatusEvent(aid, prev, status, pool, eq, im, mm, time.time_ns(), version)
            with self._sub_lock:
                subs = list(self._subscribers)
            for q in subs:
                # a subscriber that stopped reading loses events, not the engine
                with contextlib.suppress(queue.Full):
                    q.put_nowait(event)
        cb = self.book.controls
        if cb.loss_candidates or cb.alerts:
            self._enforce_controls()  # loss limits crossed trip; credit alerts go out

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
            if acc.controls is not None:
                cv = control_views.account_controls_view(self.book, acc, self.wall_ns())
                view = dataclasses.replace(view, controls=cv)
        self._publish_changes()
        return view


__all__ = ["EngineConfig", "EngineError", "RiskEngine", "StateError"]
