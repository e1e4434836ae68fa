"""Request-shape checks and short messages (riskgate/server/validate.py)."""

from __future__ import annotations

from riskgate.server.validate import MESSAGE_CHARS, QUOTE_CHARS, clip, clip_message
from riskgate.server.validate import request_problem as problem
from riskgate.v1 import riskgate_pb2 as pb


def test_clip_keeps_short_values_and_cuts_long_ones() -> None:
    assert clip("acct-1") == "acct-1"
    assert clip("a" * 100) == "a" * QUOTE_CHARS + "…"
    msg = "account_id: unknown account '" + "y" * 10_000 + "' (" + "z " * 1_000 + ")"
    out = clip_message(msg)
    assert out.startswith("account_id: unknown account '")
    assert "y" * QUOTE_CHARS not in out and "…" in out
    assert len(out) <= MESSAGE_CHARS + 1
    assert clip_message("state: missing (ACTIVE, REDUCING or HALTED)") == (
        "state: missing (ACTIVE, REDUCING or HALTED)"
    )


def test_enum_numbers_and_map_keys_are_named_by_their_path() -> None:
    assert problem(pb.CheckOrderRequest(order=pb.Order(side=1, time_in_force=3))) is None
    assert problem(pb.CheckOrderRequest()) is None
    assert problem(pb.CheckOrderRequest(order=pb.Order(time_in_force=4))).startswith(
        "order.time_in_force: unknown value 4 (expected one of TIME_IN_FORCE_UNSPECIFIED"
    )
    # the engine rejects an order's unknown side or type as INVALID_ORDER: not refused here
    assert problem(pb.CheckOrdersRequest(orders=[pb.Order(side=7, order_type=9)])) is None
    assert problem(pb.CheckOrdersRequest(orders=[pb.Order(), pb.Order(time_in_force=-1)])) == (
        problem(pb.CheckOrderRequest(order=pb.Order(time_in_force=-1))).replace(
            "order.", "orders[1].", 1
        )
    )
    assert problem(pb.SetTradingStateRequest(state=3)) is None
    assert problem(pb.SetTradingStateRequest(state=4)).startswith("state: unknown value 4")
    assert problem(pb.UpsertAccountRequest(margin_method=3)) is None
    assert problem(pb.UpsertAccountRequest(margin_method=8)).startswith("margin_method:")
    assert problem(pb.UpsertAccountRequest(collateral={"": 1.0})) == "collateral: empty key"
    limits = pb.Limits(position_limits={"BTC-PERPETUAL": 1.0, "": 2.0})
    assert problem(pb.UpsertAccountRequest(limits=limits)) == "limits.position_limits: empty key"
    for name in ("index_usd", "marks_usd", "ivs"):
        assert problem(pb.UpdateMarketRequest(**{name: {"": 1.0}})) == f"{name}: empty key"
    assert problem(pb.UpdateMarketRequest(index_usd={"BTC": 1.0})) is None
    for req in (pb.GetAccountRequest(), pb.OrderEvent(), pb.StreamMarginStatusRequest()):
        assert problem(req) is None
