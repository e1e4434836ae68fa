"""Pre-trade controls through a real server: many clients against one group's credit limit
accept exactly what fits; groups, usage and alerts through the API.

Each client trades its own account, all accounts in one group whose gross limit allows
exactly K lots (half a lot of slack on each side); every account has far more margin than
it needs, so the group's limit is the only thing that can stop an order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
import pytest

from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.integration.test_grpc_concurrency import INDEX, MARKS, PERP, VT, lot, run_clients
from tests.reference.servers import ServerEnv, create_account, server_settings, serving

LOT_USD = 0.1 * MARKS[PERP]  # one lot's gross notional at the mark
K = 11
N_CLIENTS = 6
ORDERS_PER_CLIENT = 5  # 30 orders for 11 slots
T = 20.0


@pytest.fixture(scope="module")
def env() -> Iterator[ServerEnv]:
    settings = server_settings(
        demo=False,
        log_level="warning",
        grpc_workers=N_CLIENTS,
        decision_budget_us=5_000_000.0,
        gil_switch_interval_us=10.0,  # decisions of the clients really interleave
    )
    with serving(settings) as srv, grpc.insecure_channel(srv.address) as channel:
        stub = riskgate_pb2_grpc.RiskGateStub(channel)
        req = pb.UpdateMarketRequest(full_snapshot=True, index_usd=INDEX, marks_usd=MARKS)
        req.valuation_time.FromDatetime(VT)
        stub.UpdateMarket(req, timeout=T)
        yield ServerEnv(srv, stub)


def test_many_clients_against_one_group_credit_limit_accept_exactly_what_fits(
    env: ServerEnv,
) -> None:
    limit = (K + 0.5) * LOT_USD
    group = env.stub.UpsertGroup(
        pb.UpsertGroupRequest(
            group_id="desk", limits=pb.ControlLimits(max_gross_notional_usd=limit)
        ),
        timeout=T,
    )
    assert group.limits.max_gross_notional_usd == limit
    accounts = [f"g-{i}" for i in range(N_CLIENTS)]
    for a in accounts:
        create_account(env.stub, a, 1e9, timeout_s=T)
        env.stub.SetAccountGroup(
            pb.SetAccountGroupRequest(account_id=a, group_id="desk"), timeout=T
        )
    work = [
        [
            pb.CheckOrderRequest(order=lot(a, f"{a}-{j}", pb.SIDE_BUY))
            for j in range(ORDERS_PER_CLIENT)
        ]
        for a in accounts
    ]
    results = run_clients(env.server.address, work, "CheckOrder")
    decisions = [d for per in results for d in per]
    accepted = [d for d in decisions if d.accepted]
    assert len(accepted) == K
    rejects = [d for d in decisions if not d.accepted]
    assert {d.reason for d in rejects} == {pb.REJECT_REASON_GROUP_LIMIT}
    assert {d.context.field for d in rejects} == {"group desk: gross_notional"}
    view = env.stub.GetGroup(pb.GetGroupRequest(group_id="desk"), timeout=T)
    (gross,) = [u for u in view.usage if u.limit == "gross_notional"]
    assert gross.used == pytest.approx(K * LOT_USD) and gross.limit_value == limit
    assert list(view.accounts) == accounts
    # the members' usage, each from GetAccount, sums to the group's
    per_account = []
    for a in accounts:
        acc = env.stub.GetAccount(pb.GetAccountRequest(account_id=a), timeout=T)
        assert list(acc.controls.groups) == ["desk"]
        (u,) = [u.used for u in acc.controls.usage if u.scope == "group desk"]
        assert u == pytest.approx(gross.used)
        per_account.append(len(acc.working_orders) * LOT_USD)
    assert sum(per_account) == pytest.approx(gross.used)


def test_account_limits_usage_and_alerts_through_the_api(env: ServerEnv) -> None:
    create_account(env.stub, "ctl-1", 1e9, timeout_s=T)
    lim = pb.Limits(
        controls=pb.ControlLimits(
            max_orders=2, orders_window_ms=60_000, max_gross_notional_usd=4 * LOT_USD,
            credit_warning_fraction=0.5,
        )
    )  # fmt: skip
    env.stub.UpsertAccount(pb.UpsertAccountRequest(account_id="ctl-1", limits=lim), timeout=T)
    events: queue.Queue = queue.Queue()
    stream = env.stub.StreamMarginStatus(
        pb.StreamMarginStatusRequest(account_ids=["ctl-1"]), timeout=T
    )
    started = threading.Event()

    def read() -> None:
        started.set()
        try:
            for ev in stream:
                events.put(ev)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    try:
        started.wait(T)
        # a stream is served once it is open: a first order may race it, so wait for the
        # subscription by polling the server's subscriber count
        for _ in range(200):
            if env.server.engine._subscribers:
                break
            threading.Event().wait(0.01)
        ds = [
            env.stub.CheckOrder(pb.CheckOrderRequest(order=lot("ctl-1", f"c{j}", pb.SIDE_BUY)))
            for j in range(3)
        ]
        assert [d.accepted for d in ds] == [True, True, False]
        assert ds[2].reason == pb.REJECT_REASON_VELOCITY_LIMIT
        c = ds[2].context
        assert (c.limit_value, c.actual_value, c.unit) == (2.0, 3.0, "orders/60s")
        ev = events.get(timeout=T)  # 2 lots of 4: the warning at 50 %
        assert ev.alert == pb.CONTROL_ALERT_CREDIT_WARNING
        assert (ev.limit_name, ev.warning_fraction) == ("gross_notional", 0.5)
        assert ev.used == pytest.approx(2 * LOT_USD)
    finally:
        stream.cancel()
        reader.join(T)
    view = env.stub.GetAccount(pb.GetAccountRequest(account_id="ctl-1"), timeout=T)
    usage = {u.limit: (u.used, u.limit_value, u.unit) for u in view.controls.usage}
    assert usage["orders"] == (2.0, 2.0, "orders/60s")
    assert usage["gross_notional"][0] == pytest.approx(2 * LOT_USD)
    assert view.limits.controls.max_orders == 2


def test_group_rpcs_refuse_bad_input(env: ServerEnv) -> None:
    with pytest.raises(grpc.RpcError) as e:
        env.stub.UpsertGroup(pb.UpsertGroupRequest(group_id=""), timeout=T)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        env.stub.GetGroup(pb.GetGroupRequest(group_id="nope"), timeout=T)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        env.stub.UpsertGroup(
            pb.UpsertGroupRequest(group_id="x", limits=pb.ControlLimits(loss_action=99)), timeout=T
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
