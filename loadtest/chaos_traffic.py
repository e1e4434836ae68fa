"""The crash test's traffic: worker threads sending open-loop operations on the accounts
they own, and what happens to an operation whose reply never came (see
:mod:`loadtest.chaos`).

Each account belongs to one worker, which sends one operation at a time: the order of an
account's operations is the order the client sent them, and at most one of them per worker
is in flight when the server is killed. That operation's outcome is unknown; the worker
parks it and the restart check resolves it by sending it again.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import grpc

from loadtest.chaos_model import (
    ACTIVE,
    HALTED,
    PENDING,
    TRANSIENT,
    AccountModel,
    Findings,
    Instrument,
    NewOrders,
    Op,
    OrderModel,
    OrderStep,
    SetCollateral,
    SetState,
    decision_key,
)
from riskgate.client import RiskGateClient
from riskgate.v1 import riskgate_pb2 as pb

__all__ = ["Control", "Worker", "client_for"]

ORDER_TIMEOUT_S = 5.0
ADMIN_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 20  # of an operation while the server is up (transient errors)
MAX_WORKING = 40  # working orders per account before cancels and fills take over
# rejects that are not kept for retries: a retry of their client order id is decided afresh
NOT_REMEMBERED = frozenset(
    {pb.REJECT_REASON_LATENCY_BUDGET_EXCEEDED, pb.REJECT_REASON_DUPLICATE_ORDER_ID_MISMATCH,
     pb.REJECT_REASON_INTERNAL_ERROR}
)  # fmt: skip
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 200),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def client_for(address: str) -> RiskGateClient:
    return RiskGateClient(
        address, ORDER_TIMEOUT_S, admin_timeout_s=ADMIN_TIMEOUT_S, options=CHANNEL_OPTIONS
    )


class Control:
    """Pauses and resumes the workers. ``pause`` returns once no worker is inside an
    operation; the operations cut short by a kill are parked as unknown by then."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.running = False
        self.stopping = False
        self.busy = 0
        self.epoch = 0  # one per server incarnation: workers reconnect when it changes
        self.address = ""

    def enter(self) -> int | None:
        with self._cond:
            while not self.running and not self.stopping:
                self._cond.wait(0.5)
            if self.stopping:
                return None
            self.busy += 1
            return self.epoch

    def leave(self) -> None:
        with self._cond:
            self.busy -= 1
            self._cond.notify_all()

    def halt(self) -> None:
        """No new operation from now on (the ones in flight go on); see :meth:`pause`."""
        self.running = False

    def pause(self, timeout_s: float) -> bool:
        with self._cond:
            self.running = False
            return self._cond.wait_for(lambda: self.busy == 0, timeout_s)

    def resume(self, address: str) -> None:
        with self._cond:
            self.address, self.epoch, self.running = address, self.epoch + 1, True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopping, self.running = True, False
            self._cond.notify_all()


class Worker(threading.Thread):
    def __init__(
        self, index: int, control: Control, models: list[AccountModel],
        instruments: list[Instrument], seed: int, rate: float, findings: Findings,
    ) -> None:  # fmt: skip
        super().__init__(name=f"chaos-worker-{index}", daemon=True)
        self.index, self.control, self.findings = index, control, findings
        self.models = {m.account_id: m for m in models}
        self.base = {m.account_id: dict(m.collateral) for m in models}
        self.instruments = instruments
        self.by_symbol = {i.symbol: i for i in instruments}
        self.rng = random.Random(f"{seed}/{index}")
        self.gap_s = 1.0 / rate
        self.unknown: Op | None = None
        self.counts: Counter[str] = Counter()  # acknowledged operations by kind
        self.decided: Counter[str] = Counter()  # acknowledged decisions by reason
        self.errors: Counter[str] = Counter()  # transient errors (retried) by code
        self.unknown_ops: Counter[str] = Counter()  # in flight at a kill, by kind
        self.resolved: Counter[str] = Counter()  # how unknown operations turned out
        self.decisions: list[tuple[pb.Order, bytes]] = []  # acknowledged, kept for retries
        self.n = 0
        self.crash: str | None = None  # what ended the thread, if not the stop
        self._client: RiskGateClient | None = None
        self._epoch = -1
        self._next = 0.0

    # ---- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                epoch = self.control.enter()
                if epoch is None:
                    return
                try:
                    if epoch != self._epoch:
                        self._reconnect(epoch)
                    if self.unknown is not None:
                        time.sleep(0.05)  # resolved by the next restart check
                    elif self._pace():
                        self._send(self._next_op())
                finally:
                    self.control.leave()
        except Exception as exc:  # reported as the run's error
            self.crash = f"{self.name}: {type(exc).__name__}: {exc}"
        finally:
            if self._client is not None:
                self._client.close()

    def _reconnect(self, epoch: int) -> None:
        if self._client is not None:
            self._client.close()
        self._client = client_for(self.control.address)
        self._epoch, self._next = epoch, time.monotonic()

    def _pace(self) -> bool:
        """Wait for this worker's next slot (open loop); False if paused meanwhile."""
        while (delay := self._next - time.monotonic()) > 0:
            if not self.control.running:
                return False
            time.sleep(min(delay, 0.02))
        now = time.monotonic()
        self._next = max(self._next + self.gap_s, now - 1.0)  # at most 1 s of backlog
        return self.control.running

    def _send(self, op: Op) -> None:
        assert self._client is not None
        for attempt in range(MAX_ATTEMPTS):
            try:
                reply = op.send(self._client)
            except grpc.RpcError as exc:
                code = exc.code()
                if code not in TRANSIENT:  # an answer: the server refused the operation
                    self.findings.add_violation(
                        check="operation refused", op=op.kind, account=op.account_id,
                        code=code.name, details=exc.details(),
                    )  # fmt: skip
                    return
                if not self.control.running or attempt + 1 == MAX_ATTEMPTS:
                    self.unknown = op
                    self.unknown_ops[op.kind] += 1
                    return
                self.errors[code.name] += 1
                time.sleep(0.05)
                continue
            self.acknowledge(op, reply)
            return

    def acknowledge(self, op: Op, reply: Any) -> None:
        op.apply(self.models[op.account_id], reply, self.findings)
        self.counts[op.kind] += 1
        if isinstance(op, NewOrders):
            for order, d in zip(op.orders, reply, strict=True):
                self.decided[pb.RejectReason.Name(d.reason) if not d.accepted else "ACCEPTED"] += 1
                if d.accepted or d.reason not in NOT_REMEMBERED:
                    self.decisions.append((order, decision_key(d)))

    # ---- what to send next --------------------------------------------------------------

    def _next_op(self) -> Op:
        rng = self.rng
        aid = rng.choice(sorted(self.models))
        m = self.models[aid]
        working = list(m.orders.values())
        pending = [o for o in working if o.status == PENDING]
        fillable = [o for o in working if o.fillable]
        full = len(working) >= MAX_WORKING
        weights = {
            "order": 0 if full else 32,
            "batch": 0 if full else 4,
            "ack": 25 if pending else 0,
            "fill": 20 if fillable else 0,
            "cancel": (40 if full else 8) if working else 0,
            "upsert": 3,
            "state": 2 if m.trading_state == ACTIVE else 25,
        }
        what = rng.choices(list(weights), list(weights.values()))[0]
        if what in ("order", "batch"):
            pairs = [
                self._new_order(aid) for _ in range(rng.randint(2, 4) if what == "batch" else 1)
            ]
            return NewOrders([p[0] for p in pairs], [p[1] for p in pairs], what == "batch")
        if what == "ack":
            return OrderStep(aid, rng.choice(pending).request.client_order_id, "ack")
        if what == "fill":
            return self._fill(aid, rng.choice(fillable))
        if what == "cancel":
            return OrderStep(aid, rng.choice(working).request.client_order_id, "cancel")
        if what == "upsert":
            ccy = rng.choice(sorted(self.base[aid]))
            return SetCollateral(aid, {ccy: round(self.base[aid][ccy] * rng.uniform(0.8, 1.2), 4)})
        return SetState(aid, HALTED if m.trading_state == ACTIVE else ACTIVE)

    def _new_order(self, aid: str) -> tuple[pb.Order, bool]:
        rng = self.rng
        fills = [i for i in self.instruments if i.fillable]
        others = [i for i in self.instruments if not i.fillable]
        inst = rng.choice(fills if rng.random() < 0.7 or not others else others)
        self.n += 1
        order = pb.Order(
            account_id=aid, client_order_id=f"w{self.index}-{self.n}", symbol=inst.symbol,
            side=rng.choice((pb.SIDE_BUY, pb.SIDE_SELL)), order_type=pb.ORDER_TYPE_LIMIT,
            quantity=inst.lot * rng.randint(1, 8) / 8, price=inst.price,
        )  # fmt: skip
        return order, inst.fillable

    def _fill(self, aid: str, o: OrderModel) -> OrderStep:
        inst = self.by_symbol[o.request.symbol]
        eighths = round(o.working * 8 / inst.lot)
        part = (
            eighths if eighths < 2 or self.rng.random() < 0.5 else self.rng.randint(1, eighths - 1)
        )
        o.fills += 1
        coid = o.request.client_order_id
        return OrderStep(aid, coid, "fill", part * inst.lot / 8, inst.price, f"{coid}-f{o.fills}")

    # ---- after a restart ----------------------------------------------------------------

    def resolve(self, client: RiskGateClient, view: pb.AccountView | None) -> None:
        """Send the unknown operation again (``view``: its account as recovered, before)."""
        op, self.unknown = self.unknown, None
        assert op is not None
        if not isinstance(op, NewOrders):
            try:
                reply = op.send(client)
            except grpc.RpcError as exc:
                self.findings.add_violation(
                    check="retry of an in-flight operation refused", op=op.kind,
                    account=op.account_id, code=exc.code().name, details=exc.details(),
                )  # fmt: skip
                return
            dup = getattr(reply, "duplicate", False)
            self.resolved[
                f"{op.kind}: {'had been applied' if dup else 'applied by the retry'}"
            ] += 1
            self.acknowledge(op, reply)
            return
        working = {w.client_order_id for w in view.working_orders} if view else set()
        replies = []
        for order in op.orders:
            d = client.stub.CheckOrder(pb.CheckOrderRequest(order=order), timeout=ORDER_TIMEOUT_S)
            replies.append(d)
            coid, present = order.client_order_id, order.client_order_id in working
            if present and not (d.accepted and d.duplicate):
                self.findings.add_violation(
                    check="in-flight order: two decisions", account=op.account_id, order=coid,
                    detail="working after the restart, but its retry was "
                    + ("accepted afresh" if d.accepted else "rejected"),
                )  # fmt: skip
            elif not present and d.accepted and d.duplicate:
                self.findings.add_violation(
                    check="in-flight order: acceptance without its reservation",
                    account=op.account_id, order=coid,
                    detail="its retry is a duplicate of an acceptance, but it is not working",
                )  # fmt: skip
            how = "decided before the kill" if d.duplicate else "decided by the retry"
            self.resolved[f"order: {how}"] += 1
        self.acknowledge(op, replies)
