"""Numbers for people: each amount with its unit, never in scientific notation.

``f"{x:g}"`` writes 11,946,526.36 as ``1.19465e+07``; these helpers keep every digit a
reader needs and add thousands separators instead.
"""

from __future__ import annotations

import math

__all__ = ["USD_LIKE", "money", "plain", "price", "quantity"]

USD_LIKE = ("USD", "USDC", "USDT")
_MAX_DECIMALS = 12


def plain(x: float, significant: int = 6) -> str:
    """``x`` to ``significant`` significant digits (at least every integer digit), with
    thousands separators and no exponent; trailing zeros after the point are dropped."""
    if not math.isfinite(x):
        return str(x)
    x = float(x) + 0.0  # -0.0 -> 0.0
    if x == 0.0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = min(max(significant - 1 - magnitude, 0), _MAX_DECIMALS)
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money(x: float, currency: str) -> str:
    """An amount of money: USD-like currencies to the cent, coins to 6 decimals."""
    x = float(x) + 0.0
    if not math.isfinite(x):
        return f"{x} {currency}".rstrip()
    if not currency:
        return plain(x)
    if currency in USD_LIKE:
        return f"{x:,.2f} {currency}"
    return f"{x:,.6f} {currency}"


def price(x: float, currency: str) -> str:
    """A price in its quote currency: USD per coin to the cent (six significant digits
    below one dollar), a coin-quoted option price to six significant digits."""
    if currency in USD_LIKE and math.isfinite(x) and abs(x) >= 1.0:
        return f"{float(x) + 0.0:,.2f} {currency}"
    return f"{plain(x)} {currency}".rstrip()


def quantity(x: float, unit: str) -> str:
    """An order or position size (e.g. ``0.5 BTC``): as many digits as it has, up to ten
    significant ones."""
    return f"{plain(x, 10)} {unit}".rstrip()
