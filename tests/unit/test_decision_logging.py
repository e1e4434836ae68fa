"""Decision logging through the servicer (issue 3, item 6): one event per decision with its
numbers; rejects always, accepts sampled at the configured rate, latency rejects at warning,
what-ifs only at debug."""

from __future__ import annotations

import logging

import pytest
import structlog
from structlog.testing import LogCapture

from riskgate.config import Settings
from riskgate.engine.types import MarginMethod, PoolMode
from riskgate.server.servicer import AcceptSampler, RiskGateServicer
from riskgate.v1 import riskgate_pb2 as pb
from tests.reference.engine_market import make_engine

PERP = "BTC_USDC-PERPETUAL"
FIELDS = {
    "account", "client_order_id", "symbol", "side", "qty", "decision", "reason",
    "im_before", "im_after", "equity", "compute_us",
}  # fmt: skip


@pytest.fixture
def events():
    """Capture log events at info and above, whatever an earlier test configured."""
    old = structlog.get_config()
    cap = LogCapture()
    structlog.configure(
        processors=[cap],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    yield cap.entries
    structlog.configure(**old)


class Context:
    """What the servicer asks of a grpc.ServicerContext on the order path."""

    def __init__(self, remaining_s: float | None = None) -> None:
        self.remaining_s = remaining_s

    def time_remaining(self) -> float | None:
        return self.remaining_s

    def abort(self, code, message):
        raise AssertionError(f"unexpected abort {code}: {message}")


class StepClock:
    """Advances 1 µs on every read, so a 1 ns deadline is always missed."""

    def __init__(self) -> None:
        self.now = 10**9

    def __call__(self) -> int:
        self.now += 1_000
        return self.now


def request(coid: str, symbol: str = PERP, qty: float = 0.01) -> pb.CheckOrderRequest:
    return pb.CheckOrderRequest(
        order=pb.Order(
            account_id="A",
            client_order_id=coid,
            symbol=symbol,
            side=pb.SIDE_BUY,
            order_type=pb.ORDER_TYPE_MARKET,
            quantity=qty,
        )
    )


def servicer(rate: float, clock=None) -> RiskGateServicer:
    eng = make_engine(clock=clock)
    eng.upsert_account(
        "A",
        collateral={"USD": 1e7},
        pool_mode=PoolMode.CROSS,
        margin_method=MarginMethod.PORTFOLIO,
    )
    return RiskGateServicer(eng, Settings(demo=False, accept_log_sample_rate=rate))


@pytest.mark.parametrize(("rate", "logged"), [(1.0, 40), (0.25, 10), (0.0, 0)])
def test_accepts_are_sampled_rejects_always_logged(events, rate: float, logged: int) -> None:
    svc = servicer(rate)
    ctx = Context()
    for k in range(40):
        assert svc.CheckOrder(request(f"ok-{k}"), ctx).accepted
    for k in range(3):
        d = svc.CheckOrder(request(f"bad-{k}", symbol="BTC-NOPE"), ctx)
        assert not d.accepted
    decisions = [e for e in events if e["event"] == "decision"]
    accepts = [e for e in decisions if e["decision"] == "accept"]
    rejects = [e for e in decisions if e["decision"] == "reject"]
    assert len(accepts) == logged
    assert len(rejects) == 3
    assert all(e["log_level"] == "info" for e in decisions)
    assert {e["reason"] for e in rejects} == {"UNKNOWN_INSTRUMENT"}
    assert [e["client_order_id"] for e in rejects] == ["bad-0", "bad-1", "bad-2"]
    for e in decisions:
        assert e.keys() >= FIELDS
    for e in accepts:
        assert e["account"] == "A" and e["symbol"] == PERP and e["side"] == "buy"
        assert e["im_after"] > e["im_before"] >= 0.0 and e["equity"] == pytest.approx(1e7)
        assert e["compute_us"] > 0.0


def test_latency_reject_is_logged_at_warning(events) -> None:
    svc = servicer(0.0, clock=StepClock())
    d = svc.CheckOrder(request("late"), Context(remaining_s=1e-9))
    assert not d.accepted and d.reason == pb.REJECT_REASON_LATENCY_BUDGET_EXCEEDED
    [e] = [e for e in events if e["event"] == "decision"]
    assert e["log_level"] == "warning"
    assert e["reason"] == "LATENCY_BUDGET_EXCEEDED" and e["client_order_id"] == "late"


def test_whatif_is_not_logged_at_info(events) -> None:
    svc = servicer(1.0)
    assert svc.WhatIf(request("w"), Context()).accepted
    assert not [e for e in events if e["event"] in ("decision", "whatif")]


@pytest.mark.parametrize(("rate", "period"), [(1.0, 1), (0.5, 2), (0.01, 100), (0.0, 0)])
def test_sampler_period(rate: float, period: int) -> None:
    sampler = AcceptSampler(rate)
    assert sampler.period == period
    hits = sum(sampler() for _ in range(1000))
    assert hits == (0 if period == 0 else 1000 // period)
