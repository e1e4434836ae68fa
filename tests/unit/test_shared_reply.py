"""A journaled accept's reply is the Decision message its journal record was built with."""

from __future__ import annotations

import dataclasses

from riskgate.engine import events as ev
from riskgate.engine import types as et
from riskgate.engine.journal import codec
from riskgate.server import convert
from riskgate.v1 import riskgate_pb2 as pb


def _accepted() -> ev.Stamped:
    req = et.OrderRequest("acct", "o1", "BTC-PERPETUAL", et.Side.BUY, 0.5, 70_000.0)
    d = et.Decision(
        "acct", "o1", True, et.Reason.ACCEPTED, initial_margin_before=10.5,
        initial_margin_after=12.25, equity_before=1e6, equity_after=1e6 - 1.5,
        worst_scenario=et.ScenarioInfo(7, -0.16, "up", "USD", "BTC", 12.0, (("BTC", -0.16),)),
        pool_currency="USD", compute_ns=8123, market_version=4,
    )  # fmt: skip
    return ev.Stamped(
        9, 1_700_000_000_000_000_000, ev.OrderAccepted(req, d, req.symbol, "USD", 1, 2)
    )


def test_the_reply_is_the_journaled_message_once_and_equal_to_a_fresh_one() -> None:
    stamped = _accepted()
    d = stamped.event.decision
    fresh = convert.fill_decision(pb.Decision(), d)
    record = codec.event_to_proto(stamped)
    reply = convert.decision_to_proto(d)
    assert reply is record.order_accepted.decision
    assert reply == fresh
    assert reply.SerializeToString() == fresh.SerializeToString()
    again = convert.decision_to_proto(d)  # a second reply builds its own
    assert again is not reply and again == fresh


def test_another_decision_is_not_given_the_journaled_message() -> None:
    stamped = _accepted()
    d = stamped.event.decision
    codec.event_to_proto(stamped)
    retry = dataclasses.replace(d, duplicate=True)  # what a retry returns
    reply = convert.decision_to_proto(retry)
    assert reply.duplicate and reply == convert.fill_decision(pb.Decision(), retry)
    assert convert.decision_to_proto(d) == convert.fill_decision(pb.Decision(), d)
