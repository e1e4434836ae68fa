"""The order path of :class:`~riskgate.engine.engine.RiskEngine`: decisions (one at a time
through the decision gate, fail-closed within the latency budget), what-ifs, the largest
acceptable quantity, the gateway's lifecycle reports and reservation expiry."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from riskgate.domain.instruments import InstrumentError, parse_symbol
from riskgate.engine import admin, attribution, decide, lifecycle
from riskgate.engine.book import Account
from riskgate.engine.events import DecisionRemembered, OrderAccepted, OrderStep, ReservationsExpired
from riskgate.engine.types import (
    Decision,
    EventAck,
    MaxQuantityResult,
    OrderEventBody,
    OrderRequest,
    OrderStatus,
    Reason,
    Side,
    invalid,
    not_found,
    precondition,
)

if TYPE_CHECKING:
    from riskgate.engine.engine import RiskEngine

_MAX_QUEUE_S = 5.0  # without a deadline, how long a call may wait for its turn
_ACCEPTED, _LATENCY = Reason.ACCEPTED, Reason.LATENCY_BUDGET_EXCEEDED
_Reject = decide.Reject


class OrderPath:
    """Mixed into the engine (its locks, book, commit and clocks are the engine's)."""

    def check_order(
        self: RiskEngine, order: OrderRequest, deadline_ns: int | None = None, reserve: bool = True
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

    def _budget_end(self: RiskEngine, start: int, deadline_ns: int | None) -> int:
        budget_end = start + self.config.decision_budget_ns
        return deadline_ns if deadline_ns is not None and deadline_ns < budget_end else budget_end

    def _enter_gate(self: RiskEngine, deadline_ns: int | None) -> bool:
        """Wait for the gate. A caller that finds it free takes it with ``acquire(False)``
        first; a spent deadline is then caught by the decision's own budget check."""
        if deadline_ns is None:
            timeout = _MAX_QUEUE_S
        else:
            timeout = (deadline_ns - self.clock_ns()) / 1e9
            if timeout <= 0:
                return False
        with self._waiters_lock:  # how many wait: a batch holding the gate lets them in
            self._gate_waiters += 1
        try:
            return self._decision_gate.acquire(timeout=timeout)
        finally:
            with self._waiters_lock:
                self._gate_waiters -= 1

    def _yield_gate(self: RiskEngine, deadline_ns: int | None) -> bool:
        """A batch lets the callers waiting for the gate decide (a lock is not fair: the
        holder would take it straight back), then waits for it again."""
        self._decision_gate.release()
        for _ in range(100):
            time.sleep(0)  # lets a woken waiter run and take the gate
            if not self._gate_waiters or self._decision_gate.locked():
                break
        return self._decision_gate.acquire(False) or self._enter_gate(deadline_ns)

    def _gate_timeout(self: RiskEngine, order: OrderRequest, start: int) -> Decision:
        d = Decision(order.account_id, order.client_order_id, False, _ACCEPTED)
        r = _Reject(_LATENCY, "no turn to decide before the deadline")
        return self._finish(d, r, start)

    def _check(
        self: RiskEngine,
        order: OrderRequest,
        start: int,
        budget_end: int,
        reserve: bool,
        defer: bool = False,
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
                if self.config.throttle_max_orders:
                    self._throttle_order(start)  # the message throttle per gateway principal
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
        self: RiskEngine,
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
        max_age = self.config.max_market_age_ns
        now = self.wall_ns()  # the decision's time: the accepted event records it
        stale = now - market.received_ns - max_age if max_age else 0
        try:
            out = decide.decide(
                acc,
                market,
                order,
                d,
                reserve,
                self._dropping,
                budget_end,
                self.clock_ns,
                stale,
                now,
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
            accepted = OrderAccepted(
                order, d, out.symbol, out.pool, now, now + self.config.reservation_ttl_ns
            )
            self._commit(accepted, out.hint, defer)
        return d

    def _finish(self: RiskEngine, d: Decision, r: _Reject | None, start: int) -> Decision:
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
        self: RiskEngine, orders: Sequence[OrderRequest], deadline_ns: int | None = None
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
        held = True
        try:
            out = []
            hold_ns = self.config.max_gate_hold_ns
            since = self.clock_ns()
            for o in orders:
                t = self.clock_ns()
                if t - since > hold_ns and self._gate_waiters:
                    held = self._yield_gate(deadline_ns)
                    t = since = self.clock_ns()
                if not held or (deadline_ns is not None and t >= deadline_ns):
                    out.append(self._gate_timeout(o, t))
                else:
                    out.append(self._check(o, t, self._budget_end(t, deadline_ns), True, True))
        finally:
            if held:
                self._decision_gate.release()
        self._durable(self.seq)
        return out

    def whatif(
        self: RiskEngine,
        order: OrderRequest,
        deadline_ns: int | None = None,
        explain: bool = False,
    ) -> Decision:
        """``check_order`` reserving nothing; ``explain``: also the attribution of the
        scenario that sets the margin after the order (accepted or not), computed after the
        decision (its compute time is not the decision's)."""
        d = self.check_order(order, deadline_ns, reserve=False)
        if explain and not d.attribution and d.pool_currency:
            from riskgate.engine.attribution import explain_order

            d.attribution = explain_order(self, order, d)
        return d

    def max_quantity(
        self: RiskEngine, account_id: str, symbol: str, price: float | None
    ) -> MaxQuantityResult:
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

            with attribution.suppressed():  # probes need no attribution
                results.append(decide.max_side(probe))
        (qb, rb), (qs, rs) = results
        return MaxQuantityResult(
            account_id, inst.symbol, qb, qs, rb, rs, time.perf_counter_ns() - t0, market.version
        )

    # ================================================================ order lifecycle ======

    def order_event(
        self: RiskEngine, account_id: str, client_order_id: str, event: OrderEventBody
    ) -> EventAck:
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

    def expire_reservations(self: RiskEngine, now_ns: int | None = None) -> int:
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
