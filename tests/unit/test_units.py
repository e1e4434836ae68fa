"""Numbers printed for people: units, thousands separators, never scientific notation."""

from __future__ import annotations

import math

import pytest

from riskgate.domain.units import money, plain, price, quantity


@pytest.mark.parametrize(
    ("x", "significant", "text"),
    [
        (11_946_526.36, 6, "11,946,526"),  # every integer digit, whatever `significant` says
        (11_946_526.36, 10, "11,946,526.36"),
        (1.19465e12, 6, "1,194,650,000,000"),
        (0.00502808, 6, "0.00502808"),
        (0.030782612, 6, "0.0307826"),
        (1e-9, 10, "0.000000001"),
        (70_000.0, 6, "70,000"),
        (-2.0, 6, "-2"),
        (0.0, 6, "0"),
        (-0.0, 6, "0"),
        (-1e-15, 6, "0"),  # rounds to zero at the twelfth decimal
        (1e-20, 6, "0"),  # below the smallest decimal written
    ],
)
def test_plain(x: float, significant: int, text: str) -> None:
    assert plain(x, significant) == text


def test_no_exponent_over_a_wide_range() -> None:
    for k in range(-12, 16):
        for x in (1.2345678 * 10.0**k, -9.87654 * 10.0**k):
            for text in (plain(x), money(x, "USD"), money(x, "BTC"), quantity(x, "BTC")):
                assert "e" not in text.lower().replace("usd", "").replace("btc", ""), text


def test_money_price_quantity() -> None:
    assert money(11_946_526.36, "USD") == "11,946,526.36 USD"
    assert money(-0.0, "USD") == "0.00 USD"
    assert money(0.2450161, "BTC") == "0.245016 BTC"
    assert money(50_000, "USDC") == "50,000.00 USDC"
    assert price(70_010.5, "USD") == "70,010.50 USD"
    assert price(0.35, "USD") == "0.35 USD"
    assert price(0.00502808, "BTC") == "0.00502808 BTC"
    assert quantity(0.5, "BTC") == "0.5 BTC"
    assert quantity(1_000_000, "ETH") == "1,000,000 ETH"
    assert money(math.nan, "USD") == "nan USD"
