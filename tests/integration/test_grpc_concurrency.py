"""Concurrent clients against one real server: one account never overspent.

Many clients, each on its own channel (and its own connection), fire orders at one
account at the same time. The orders are identical lots of a linear perpetual, all on one
side, so the account's initial margin with open orders is linear in the number reserved and
the equity (USD cash) allows exactly K of them, K computed independently with
:func:`~riskgate.engine.revaluation.full_revaluation`. Whatever the interleaving, exactly K
are accepted, the K accepted decisions saw 1..K reservations (the accounts' writes are
serialised), and no observer ever sees initial margin above equity.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest

import riskgate.engine.apply as engine_module
from riskgate.domain.instruments import parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.engine.revaluation import full_revaluation
from riskgate.models import load_model
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.servers import ServerEnv, create_account, server_settings, serving

VT = datetime(2030, 6, 3, tzinfo=UTC)
PERP = "BTC_USDC-PERPETUAL"
INDEX = {"BTC": 70_000.0, "ETH": 3_500.0}
MARKS = {PERP: 70_005.0, "BTC-PERPETUAL": 70_010.0, "ETH-PERPETUAL": 3_500.5}
SNAPSHOT = MarketSnapshot(VT, INDEX, MARKS, {}, 0.0)
MODEL = load_model("deribit")

LOT = 0.1  # coin per order
K = 13  # orders the account's equity allows
N_CLIENTS = 8
ORDERS_PER_CLIENT = 6  # 48 orders for 13 slots
T = 20.0
BUY, SELL = pb.SIDE_BUY, pb.SIDE_SELL
# every channel gets its own connection (grpc otherwise shares one per target)
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


def ref_im(qty: float) -> float:
    """Initial margin of a signed ``qty`` of the perpetual, by full revaluation."""
    pools = full_revaluation(MODEL, SNAPSHOT, {parse_symbol(PERP): qty}, {"USD": 0.0}, False)
    return pools["USD"].initial_margin


def collateral_for(k: int, sign: float) -> float:
    """Cash that allows exactly ``k`` lots on one side, half a lot's margin from each edge."""
    ims = [ref_im(sign * n * LOT) for n in range(0, 41)]
    per_lot = ims[1]
    # margin is linear in the number of lots (no size-dependent add-on at this size)
    for n, im in enumerate(ims):
        assert im == pytest.approx(n * per_lot, rel=1e-9)
    cash = (ims[k] + ims[k + 1]) / 2.0 if k > 0 else per_lot / 2.0
    assert sum(im <= cash for im in ims[1:]) == k  # exactly k lots fit
    assert cash - ims[k] >= 0.4 * per_lot and ims[k + 1] - cash >= 0.4 * per_lot  # slack
    return cash


@pytest.fixture(scope="module")
def env() -> Iterator[ServerEnv]:
    settings = server_settings(
        demo=False,
        log_level="warning",
        grpc_workers=N_CLIENTS,
        # a decision waiting for the account's lock behind 7 others on a loaded machine
        # must not turn into a latency-budget reject: this test is about margin
        decision_budget_us=5_000_000.0,
        # the server runs in this process: switch threads far more often than usual so
        # that decisions on the same account really interleave
        gil_switch_interval_us=10.0,
    )
    with serving(settings) as srv, grpc.insecure_channel(srv.address) as channel:
        stub = riskgate_pb2_grpc.RiskGateStub(channel)
        req = pb.UpdateMarketRequest(full_snapshot=True, index_usd=INDEX, marks_usd=MARKS)
        req.valuation_time.FromDatetime(VT)
        stub.UpdateMarket(req, timeout=T)
        yield ServerEnv(srv, stub)


def lot(account: str, coid: str, side: int) -> pb.Order:
    return pb.Order(
        account_id=account,
        client_order_id=coid,
        symbol=PERP,
        side=side,
        order_type=pb.ORDER_TYPE_LIMIT,
        quantity=LOT,
        price=MARKS[PERP],
    )


def run_clients(target: str, work: list[list[object]], send: str) -> list[list[object]]:
    """Each client: its own channel, all released at once, sends its requests in order."""
    results: list[list[object]] = [[] for _ in work]
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def client(i: int) -> None:
        try:
            with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as ch:
                stub = riskgate_pb2_grpc.RiskGateStub(ch)
                grpc.channel_ready_future(ch).result(timeout=T)
                call = getattr(stub, send)
                start.wait(timeout=T)
                for req in work[i]:
                    results[i].append(call(req, timeout=T))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


class Observer:
    """Polls GetAccount while the clients run: initial margin never exceeds equity."""

    def __init__(self, target: str, account: str) -> None:
        self.account = account
        self.seen: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = riskgate_pb2_grpc.RiskGateStub(self._channel)
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            view = self._stub.GetAccount(pb.GetAccountRequest(account_id=self.account), timeout=T)
            self.seen.append((view.pools[0].initial_margin, view.pools[0].equity))

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=T)
        self._channel.close()


@pytest.mark.parametrize(
    ("round_", "side"), [(0, BUY), (1, SELL), (2, BUY)], ids=["buys", "sells", "buys-again"]
)
def test_exactly_k_of_many_concurrent_orders_are_accepted(
    env: ServerEnv, round_: int, side: int
) -> None:
    account = f"conc-{round_}"
    sign = 1.0 if side == BUY else -1.0
    cash = collateral_for(K, sign)
    create_account(env.stub, account, cash, timeout_s=T)
    work = [
        [
            pb.CheckOrderRequest(order=lot(account, f"c{round_}-{i}-{j}", side))
            for j in range(ORDERS_PER_CLIENT)
        ]
        for i in range(N_CLIENTS)
    ]
    with Observer(env.server.address, account) as observer:
        results = run_clients(env.server.address, work, "CheckOrder")
    decisions: list[pb.Decision] = [d for per_client in results for d in per_client]
    assert len(decisions) == N_CLIENTS * ORDERS_PER_CLIENT

    accepted = [d for d in decisions if d.accepted]
    assert len(accepted) == K
    assert {d.reason for d in decisions if not d.accepted} == {pb.REJECT_REASON_INSUFFICIENT_MARGIN}
    assert not any(d.duplicate for d in decisions)
    # serialised: the accepted orders saw 0..K-1 earlier reservations, one each
    ims_after = sorted(d.initial_margin_after for d in accepted)
    assert ims_after == pytest.approx([ref_im(sign * n * LOT) for n in range(1, K + 1)], rel=1e-9)
    for d in accepted:
        assert d.initial_margin_after <= d.equity_before == pytest.approx(cash)
    # never overspent, at any moment an observer could see
    assert observer.seen
    assert all(im <= equity for im, equity in observer.seen)

    view = env.stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T)
    assert {o.client_order_id for o in view.working_orders} == {d.client_order_id for d in accepted}
    assert all(o.working_quantity == LOT and o.side == side for o in view.working_orders)
    assert view.pools[0].initial_margin == pytest.approx(ref_im(sign * K * LOT), rel=1e-9)
    assert view.pools[0].initial_margin <= view.pools[0].equity


def test_concurrent_retries_of_one_order_reserve_it_once(env: ServerEnv) -> None:
    account = "conc-retry"
    create_account(env.stub, account, collateral_for(K, 1.0), timeout_s=T)
    req = pb.CheckOrderRequest(order=lot(account, "same-id", BUY))
    results = run_clients(env.server.address, [[req] * 3 for _ in range(N_CLIENTS)], "CheckOrder")
    decisions = [d for per_client in results for d in per_client]
    assert all(d.accepted for d in decisions)
    assert sum(not d.duplicate for d in decisions) == 1
    assert len({d.initial_margin_after for d in decisions}) == 1
    view = env.stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T)
    assert [(o.client_order_id, o.working_quantity) for o in view.working_orders] == [
        ("same-id", LOT)
    ]
    assert view.pools[0].initial_margin == pytest.approx(ref_im(LOT), rel=1e-9)


def test_concurrent_batches_across_accounts(env: ServerEnv) -> None:
    """Batches from several clients at once, each batch mixing four accounts whose equity
    allows 13, 5, 1 and 0 lots: exactly that many are accepted on each account, and within a
    batch an account's accepted orders come first (a batch is decided in sequence)."""
    allowed = {"batch-a": 13, "batch-b": 5, "batch-c": 1, "batch-d": 0}
    accounts = list(allowed)
    for account, k in allowed.items():
        create_account(env.stub, account, collateral_for(k, 1.0), timeout_s=T)
    n_batches, batch_size = 3, 8
    work: list[list[object]] = []
    for i in range(6):
        batches = []
        for j in range(n_batches):
            orders = [
                lot(accounts[(i + j + m) % len(accounts)], f"b-{i}-{j}-{m}", BUY)
                for m in range(batch_size)
            ]
            batches.append(pb.CheckOrdersRequest(orders=orders))
        work.append(batches)
    results = run_clients(env.server.address, work, "CheckOrders")

    accepted: dict[str, set[str]] = {a: set() for a in accounts}
    sent: dict[str, int] = dict.fromkeys(accounts, 0)
    for per_client, batches in zip(results, work, strict=True):
        for resp, req in zip(per_client, batches, strict=True):
            assert len(resp.decisions) == len(req.orders)
            in_batch: dict[str, list[bool]] = {a: [] for a in accounts}
            for o, d in zip(req.orders, resp.decisions, strict=True):
                assert (d.account_id, d.client_order_id) == (o.account_id, o.client_order_id)
                assert d.accepted or d.reason == pb.REJECT_REASON_INSUFFICIENT_MARGIN, d
                in_batch[o.account_id].append(d.accepted)
                sent[o.account_id] += 1
                if d.accepted:
                    accepted[o.account_id].add(o.client_order_id)
            for flags in in_batch.values():
                assert flags == sorted(flags, reverse=True)  # accepts, then only rejects
    assert all(n > 13 for n in sent.values())
    assert {a: len(ids) for a, ids in accepted.items()} == allowed
    for account, k in allowed.items():
        view = env.stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T)
        assert {o.client_order_id for o in view.working_orders} == accepted[account]
        assert view.pools[0].initial_margin == pytest.approx(ref_im(k * LOT), rel=1e-9, abs=1e-9)
        assert view.pools[0].initial_margin <= view.pools[0].equity


def test_kill_switch_during_account_creation_halts_the_new_account(
    env: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic reproduction: account creation is paused (a test seam wrapped around the
    engine's Account constructor, everything else over gRPC) right after the engine read
    the kill-switch flag; the kill switch fires; then the creation completes."""
    account = "race-new"
    real_account = engine_module.Account
    creating, release = threading.Event(), threading.Event()

    def paused_account(*args: object, **kwargs: object) -> object:
        if args and args[0] == account:
            creating.set()
            release.wait(timeout=5.0)
        return real_account(*args, **kwargs)

    monkeypatch.setattr(engine_module, "Account", paused_account)
    stub = env.stub
    halted: list[pb.SetTradingStateResponse] = []
    create = threading.Thread(target=create_account, args=(stub, account, 100_000.0, None, T))
    create.start()
    try:
        assert creating.wait(timeout=T)
        kill = threading.Thread(
            target=lambda: halted.append(
                stub.SetTradingState(
                    pb.SetTradingStateRequest(
                        all_accounts=True, state=pb.TRADING_STATE_HALTED, reason="kill switch"
                    ),
                    timeout=T,
                )
            )
        )
        kill.start()
        kill.join(timeout=0.5)  # returns at once today; a fix may wait for the creation
        release.set()
        create.join(timeout=T)
        kill.join(timeout=T)
        assert halted
        view = stub.GetAccount(pb.GetAccountRequest(account_id=account), timeout=T)
        d = stub.CheckOrder(pb.CheckOrderRequest(order=lot(account, "r-1", BUY)), timeout=T)
        assert view.trading_state == pb.TRADING_STATE_HALTED
        assert not d.accepted and d.reason == pb.REJECT_REASON_ACCOUNT_HALTED
    finally:
        release.set()
        create.join(timeout=T)
        stub.SetTradingState(
            pb.SetTradingStateRequest(all_accounts=True, state=pb.TRADING_STATE_ACTIVE),
            timeout=T,
        )


def test_collateral_helper_sanity() -> None:
    """The set-up itself: exactly K lots fit, with slack on both sides, both directions."""
    for sign in (1.0, -1.0):
        cash = collateral_for(K, sign)
        per_lot = ref_im(sign * LOT)
        assert K * per_lot < cash < (K + 1) * per_lot
