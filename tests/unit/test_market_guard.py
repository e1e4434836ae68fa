"""Market-data guards (riskgate/server/market_guard.py): each implausible update is a
problem naming its field; soft ones pass with override_guards, hard ones never."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from riskgate.domain.market import MarketSnapshot
from riskgate.server.market_guard import GuardLimits, check_update, refusal
from riskgate.v1 import riskgate_pb2 as pb

VT = datetime(2026, 11, 21, 8, tzinfo=UTC)
CURRENT = MarketSnapshot(
    VT,
    {"BTC": 70_000.0, "ETH": 3_500.0},
    {"BTC-PERPETUAL": 70_010.0, "ETH-PERPETUAL": 3_501.0},
    {"BTC-27DEC26-70000-C": 0.5},
    0.02,
)
LIMITS = GuardLimits()


def _problems(**fields: object) -> list:
    return check_update(pb.UpdateMarketRequest(**fields), CURRENT, LIMITS)


def test_plausible_updates_have_no_problems() -> None:
    assert _problems() == []
    assert _problems(index_usd={"BTC": 70_000 * 1.24}, marks_usd={"BTC-PERPETUAL": 86_000.0}) == []
    assert _problems(index_usd={"btc": 56_000.0}) == []  # keys are matched case-blind
    assert _problems(ivs={"BTC-27DEC26-70000-C": 4.9}, rate=0.9) == []
    full = pb.UpdateMarketRequest(full_snapshot=True, index_usd={"BTC": 71_000.0})
    assert check_update(full, CURRENT, LIMITS) == []
    # the first market has nothing to move from, but needs index prices
    assert check_update(pb.UpdateMarketRequest(index_usd={"BTC": 1.0}), None, LIMITS) == []


SOFT = [
    ({"index_usd": {"BTC": 70_000 * 1.26}}, "index_usd[BTC]", "+26.0% from 70,000"),
    ({"index_usd": {"ETH": 3_500 * 0.7}}, "index_usd[ETH]", "-30.0%"),
    ({"marks_usd": {"BTC-PERPETUAL": 140_000.0}}, "marks_usd[BTC-PERPETUAL]", "BTC index 70,000"),
    # the mark is judged against the index of the same update
    ({"index_usd": {"ETH": 3_000.0}, "marks_usd": {"ETH-PERPETUAL": 5_000.0}},
     "marks_usd[ETH-PERPETUAL]", "ETH index 3,000"),
    ({"ivs": {"BTC-27DEC26-70000-C": 7.0}}, "ivs[BTC-27DEC26-70000-C]", "max_iv 5"),
    ({"ivs": {"BTC-27DEC26-70000-C": 0.001}}, "ivs[BTC-27DEC26-70000-C]", "min_iv 0.01"),
    ({"rate": 1.5}, "rate", "max_rate 1"),
    ({"rate": -0.75}, "rate", "min_rate -0.5"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "field", "words"), SOFT)
def test_implausible_data_is_refused_unless_overridden(fields: dict, field: str, words: str):
    problems = _problems(**fields)
    assert [p.field for p in problems] == [field]
    assert problems[0].overridable
    assert problems[0].message.startswith(f"{field}: ") and words in problems[0].message
    message = refusal(problems, override=False)
    assert message is not None and message.startswith(field)
    assert message.endswith("set override_guards to apply it anyway")
    assert refusal(problems, override=True) is None


HARD = [
    ({"full_snapshot": True}, "index_usd", "a full snapshot needs index prices"),
    ({"index_usd": {"BTC": -7e4}}, "index_usd[BTC]", "finite and positive"),
    ({"index_usd": {"BTC": math.nan}}, "index_usd[BTC]", "finite and positive"),
    ({"index_usd": {"BTC": 1e13}}, "index_usd[BTC]", "outside"),
    ({"marks_usd": {"BTC-PERPETUAL": 0.0}}, "marks_usd[BTC-PERPETUAL]", "finite and positive"),
    ({"marks_usd": {"BTC-PERPETUAL": 1e-300}}, "marks_usd[BTC-PERPETUAL]", "outside"),
    ({"ivs": {"BTC-27DEC26-70000-C": math.inf}}, "ivs[BTC-27DEC26-70000-C]", "finite"),
    ({"ivs": {"BTC-27DEC26-70000-C": 1e9}}, "ivs[BTC-27DEC26-70000-C]", "outside"),
    ({"rate": 1e9}, "rate", "outside [-10, 10]"),
    ({"rate": -789426.8}, "rate", "outside [-10, 10]"),
    ({"rate": math.nan}, "rate", "outside"),
]


@pytest.mark.parametrize(("fields", "field", "words"), HARD)
def test_invalid_data_is_refused_even_with_the_override(fields: dict, field: str, words: str):
    problems = _problems(**fields)
    assert problems and problems[0].field == field and not problems[0].overridable
    assert words in problems[0].message
    for override in (False, True):
        message = refusal(problems, override)
        assert message is not None and message.startswith(field)
        assert "override_guards" not in message


def test_hard_problems_come_first_and_the_rest_are_counted() -> None:
    problems = _problems(index_usd={"BTC": 1e6}, rate=1e9, ivs={"BTC-27DEC26-70000-C": 9.0})
    assert [p.field for p in problems] == ["rate", "index_usd[BTC]", "ivs[BTC-27DEC26-70000-C]"]
    assert refusal(problems, override=True) == (
        "rate: 1000000000.0 is outside [-10, 10] (and 2 more)"
    )


def test_long_keys_are_quoted_short() -> None:
    (p,) = _problems(marks_usd={"X" * 1000: -1.0})
    assert len(p.message) < 150 and "…" in p.field
