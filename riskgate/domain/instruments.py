"""Instruments and the Deribit symbol grammar.

Quantities are in coin (1.0 = one coin of notional) times the instrument's ``multiplier``.
Strikes and futures prices are in USD per coin. Expiry is 08:00 UTC on the symbol's date.

Inverse futures and perpetuals are *sized in USD*: a contract's size is a fixed USD notional
and its coin equivalent is that notional over the price. A coin quantity of one (an order, a
fill, a reconciled position, a portfolio file) is converted to USD notional at a price — the
fill price, the order's limit price, the mark — with :meth:`Instrument.units_per_quantity`;
the engine and the risk tables count such positions in USD of notional (their *units*), so
their size no longer depends on the price path. Every other instrument's unit is its quantity.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

SECONDS_PER_YEAR = 365.0 * 86400.0

# USD-like settlement currencies: everything settled in them joins the USD pool.
USD_LIKE = frozenset({"USD", "USDC", "USDT"})


class Kind(enum.IntEnum):
    SPOT = 0
    PERPETUAL = 1
    FUTURE = 2
    CALL = 3
    PUT = 4

    @property
    def is_option(self) -> bool:
        return self in (Kind.CALL, Kind.PUT)

    @property
    def is_delta_one(self) -> bool:
        return not self.is_option


class Settlement(enum.IntEnum):
    LINEAR = 0  # USD/USDC/USDT settled: prices and P&L in USD
    INVERSE = 1  # coin settled: P&L in coin


_FUTURES = (Kind.FUTURE, Kind.PERPETUAL)


class InstrumentError(ValueError):
    """A symbol or explicit instrument definition that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    kind: Kind
    underlying: str  # coin, e.g. "BTC"
    settlement: Settlement
    expiry: datetime | None = None  # UTC; None for spot and perpetuals
    strike_usd: float = 0.0
    multiplier: float = 1.0  # coin of notional per unit of quantity

    def __post_init__(self) -> None:
        if self.kind in (Kind.FUTURE, Kind.CALL, Kind.PUT) and self.expiry is None:
            raise InstrumentError(f"{self.symbol}: {self.kind.name.lower()} needs an expiry")
        if self.kind.is_option and not (self.strike_usd > 0.0):
            raise InstrumentError(f"{self.symbol}: option strike must be positive")
        if not (self.multiplier > 0.0):
            raise InstrumentError(f"{self.symbol}: multiplier must be positive")
        if self.kind == Kind.SPOT and self.settlement != Settlement.LINEAR:
            raise InstrumentError(f"{self.symbol}: spot is quoted in USD (linear)")

    @property
    def is_option(self) -> bool:
        return self.kind.is_option

    @property
    def is_inverse(self) -> bool:
        return self.settlement == Settlement.INVERSE

    @property
    def sized_in_usd(self) -> bool:
        """An inverse future or perpetual: its size is a USD notional (module docstring)."""
        return self.settlement == Settlement.INVERSE and self.kind in _FUTURES

    def units_per_quantity(self, price: float) -> float:
        """Units (what positions and risk-table rows count) per unit of quantity at ``price``:
        ``multiplier × price`` USD of notional for an inverse future or perpetual, else 1."""
        return self.multiplier * price if self.sized_in_usd else 1.0

    def to_units(self, quantity: float, price: float) -> float:
        """A quantity (coin × multiplier) in units, converted at ``price``."""
        return quantity * self.units_per_quantity(price) if self.sized_in_usd else quantity

    def to_quantity(self, units: float, price: float) -> float:
        """Units back in quantity (coin × multiplier) at ``price``: the coin equivalent of a
        USD notional at that price."""
        return units / self.units_per_quantity(price) if self.sized_in_usd else units

    @property
    def quote_currency(self) -> str:
        """Currency of its price: the coin for an inverse option (BTC-27DEC26-70000-C is
        quoted in BTC per BTC of notional), USD per coin for everything else."""
        return self.underlying if self.is_inverse and self.is_option else "USD"

    @property
    def settle_currency(self) -> str:
        """Pool currency of a segregated account: the coin for inverse, else USD."""
        return self.underlying if self.is_inverse else "USD"

    def tte_years(self, valuation_time: datetime) -> float:
        """Time to expiry in years (0 for spot/perpetual); negative once expired."""
        if self.expiry is None:
            return 0.0
        return (self.expiry - valuation_time).total_seconds() / SECONDS_PER_YEAR


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DATE_RE = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
_COIN_RE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


def parse_expiry(text: str) -> datetime:
    """``27DEC26`` -> 2026-12-27 08:00 UTC."""
    m = _DATE_RE.match(text)
    if not m or m.group(2) not in _MONTHS:
        raise InstrumentError(f"malformed expiry date {text!r} (expected e.g. 27DEC26)")
    day, month, year = int(m.group(1)), _MONTHS[m.group(2)], 2000 + int(m.group(3))
    try:
        return datetime(year, month, day, 8, 0, tzinfo=UTC)
    except ValueError as exc:
        raise InstrumentError(f"malformed expiry date {text!r}: {exc}") from None


def format_expiry(expiry: datetime) -> str:
    month = next(k for k, v in _MONTHS.items() if v == expiry.month)
    return f"{expiry.day}{month}{expiry.year % 100:02d}"


def _parse_strike(text: str, symbol: str) -> float:
    # Deribit writes decimal strikes with a 'd' (e.g. 0d625).
    if not re.fullmatch(r"\d+([dD.]\d+)?", text):
        raise InstrumentError(f"{symbol}: malformed strike {text!r}")
    strike = float(text.replace("d", ".").replace("D", "."))
    if not (math.isfinite(strike) and strike > 0.0):
        raise InstrumentError(f"{symbol}: strike must be finite and positive")
    return strike


@functools.lru_cache(maxsize=65_536)
def parse_symbol(symbol: str) -> Instrument:
    """Parse a Deribit-style symbol (memoised: every market update lists the whole
    universe again, and an ``Instrument`` is immutable).

    ``BTC-PERPETUAL``, ``BTC-27DEC26``, ``BTC-27DEC26-70000-C`` are inverse (coin settled);
    ``BTC_USDC-PERPETUAL``, ``BTC_USDC-27DEC26``, ``BTC_USDC-27DEC26-70000-C`` linear;
    ``BTC_USDC`` / ``BTC_USDT`` spot.
    """
    if not isinstance(symbol, str) or not symbol:
        raise InstrumentError("empty instrument symbol")
    text = symbol.strip().upper()
    parts = text.split("-")
    head = parts[0]
    if "_" in head:
        coin, quote = head.split("_", 1)
        if quote not in USD_LIKE:
            raise InstrumentError(f"{symbol}: unsupported quote currency {quote!r}")
        settlement = Settlement.LINEAR
    else:
        coin, quote = head, None
        settlement = Settlement.INVERSE
    if not _COIN_RE.match(coin):
        raise InstrumentError(f"{symbol}: malformed underlying {coin!r}")

    if len(parts) == 1:
        if quote is None:
            raise InstrumentError(f"unknown instrument symbol {symbol!r}")
        return Instrument(text, Kind.SPOT, coin, Settlement.LINEAR)
    if len(parts) == 2:
        if parts[1] == "PERPETUAL":
            return Instrument(text, Kind.PERPETUAL, coin, settlement)
        return Instrument(text, Kind.FUTURE, coin, settlement, expiry=parse_expiry(parts[1]))
    if len(parts) == 4:
        expiry = parse_expiry(parts[1])
        strike = _parse_strike(parts[2], symbol)
        if parts[3] not in ("C", "P"):
            raise InstrumentError(f"{symbol}: option type must be C or P")
        kind = Kind.CALL if parts[3] == "C" else Kind.PUT
        return Instrument(text, kind, coin, settlement, expiry=expiry, strike_usd=strike)
    raise InstrumentError(f"unknown instrument symbol {symbol!r}")


def instrument_from_dict(symbol: str, spec: dict) -> Instrument:
    """An explicit instrument definition: kind, underlying, expiry, strike, settlement, multiplier."""
    try:
        kind = Kind[str(spec["kind"]).upper()]
    except KeyError:
        raise InstrumentError(
            f"instruments.{symbol}.kind: expected one of {[k.name.lower() for k in Kind]}"
        ) from None
    try:
        settlement = Settlement[str(spec.get("settlement", "inverse")).upper()]
    except KeyError:
        raise InstrumentError(
            f"instruments.{symbol}.settlement: expected 'linear' or 'inverse'"
        ) from None
    underlying = str(spec.get("underlying", "")).upper()
    if not _COIN_RE.match(underlying):
        raise InstrumentError(f"instruments.{symbol}.underlying: malformed {underlying!r}")
    expiry = None
    if "expiry" in spec:
        try:
            expiry = datetime.fromisoformat(str(spec["expiry"]).replace("Z", "+00:00"))
        except ValueError:
            raise InstrumentError(f"instruments.{symbol}.expiry: malformed date") from None
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
    return Instrument(
        symbol=symbol,
        kind=kind,
        underlying=underlying,
        settlement=settlement,
        expiry=expiry,
        strike_usd=float(spec.get("strike", 0.0)),
        multiplier=float(spec.get("multiplier", 1.0)),
    )
