"""Portfolio files (JSON or TOML) for ``riskgate margin``: market, positions, collateral.

Every malformed field raises :class:`PortfolioError` whose message starts with the field's
path (``positions.BTC-27DEC26-70000-C: ...``), so the command line can print one clear line.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskgate.domain.instruments import (
    USD_LIKE,
    Instrument,
    InstrumentError,
    instrument_from_dict,
    parse_symbol,
)
from riskgate.domain.market import MarketDataError, MarketSnapshot, parse_time

POOL_MODES = ("cross", "segregated")
_TOP_LEVEL_KEYS = frozenset(
    {"description", "valuation_time", "pool", "market", "positions", "collateral", "instruments"}
)


class PortfolioError(ValueError):
    """Bad portfolio input; the message names the field."""


@dataclass(frozen=True)
class Portfolio:
    market: MarketSnapshot
    pool_mode: str  # "cross" | "segregated"
    positions: dict[str, float]  # symbol -> signed quantity
    instruments: dict[str, Instrument]  # symbol -> instrument
    collateral: dict[str, float]  # currency -> amount

    @property
    def segregated(self) -> bool:
        return self.pool_mode == "segregated"


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PortfolioError(f"{field}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise PortfolioError(f"{field}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise PortfolioError(f"{field}: must be finite, got {value!r}")
    return number


def portfolio_from_dict(data: Mapping[str, Any]) -> Portfolio:
    if not isinstance(data, Mapping):
        raise PortfolioError("portfolio: expected an object at the top level")
    unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        raise PortfolioError(
            f"{unknown[0]}: unknown key (expected {', '.join(sorted(_TOP_LEVEL_KEYS))})"
        )
    if "valuation_time" not in data:
        raise PortfolioError("valuation_time: missing")
    try:
        valuation_time = parse_time(data["valuation_time"], "valuation_time")
    except MarketDataError as exc:
        raise PortfolioError(str(exc)) from None
    pool_mode = str(data.get("pool", "cross")).lower()
    if pool_mode not in POOL_MODES:
        raise PortfolioError(f"pool: expected one of {', '.join(POOL_MODES)}, got {pool_mode!r}")
    if "market" not in data:
        raise PortfolioError("market: missing")
    try:
        market = MarketSnapshot.from_dict(data["market"], valuation_time=valuation_time)
    except MarketDataError as exc:
        raise PortfolioError(str(exc)) from None

    explicit = data.get("instruments", {})
    if not isinstance(explicit, Mapping):
        raise PortfolioError("instruments: expected an object")
    instruments: dict[str, Instrument] = {}
    for symbol, spec in explicit.items():
        if not isinstance(spec, Mapping):
            raise PortfolioError(f"instruments.{symbol}: expected an object")
        try:
            instruments[symbol] = instrument_from_dict(symbol, spec)
        except InstrumentError as exc:
            raise PortfolioError(str(exc)) from None

    raw_positions = data.get("positions", {})
    if not isinstance(raw_positions, Mapping):
        raise PortfolioError("positions: expected an object of symbol -> quantity")
    positions: dict[str, float] = {}
    for symbol, qty in raw_positions.items():
        field = f"positions.{symbol}"
        quantity = _number(qty, field)
        inst = instruments.get(symbol)
        if inst is None:
            try:
                inst = parse_symbol(symbol)
            except InstrumentError as exc:
                raise PortfolioError(f"{field}: {exc}") from None
            instruments[inst.symbol] = inst
        if inst.expiry is not None and inst.expiry <= valuation_time:
            raise PortfolioError(f"{field}: expired at {inst.expiry.isoformat()}")
        if inst.underlying not in market.index_usd:
            raise PortfolioError(f"market.index.{inst.underlying}: missing (needed by {field})")
        if inst.is_option and inst.symbol not in market.ivs:
            raise PortfolioError(f"market.ivs.{inst.symbol}: missing implied vol for {field}")
        if inst.kind.name == "FUTURE" and inst.symbol not in market.marks_usd:
            raise PortfolioError(f"market.marks.{inst.symbol}: missing mark for {field}")
        positions[inst.symbol] = positions.get(inst.symbol, 0.0) + quantity

    raw_collateral = data.get("collateral", {})
    if not isinstance(raw_collateral, Mapping):
        raise PortfolioError("collateral: expected an object of currency -> amount")
    collateral: dict[str, float] = {}
    for ccy, amount in raw_collateral.items():
        code = str(ccy).upper()
        value = _number(amount, f"collateral.{ccy}")
        if code not in USD_LIKE and code not in market.index_usd:
            raise PortfolioError(f"collateral.{ccy}: no index price for {code} in market.index")
        collateral[code] = collateral.get(code, 0.0) + value
    used = {s: instruments[s] for s in positions}
    return Portfolio(market, pool_mode, positions, used, collateral)


def load_portfolio(path: str | Path) -> Portfolio:
    """Read a ``.json`` or ``.toml`` portfolio file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PortfolioError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PortfolioError(f"{path}: malformed {p.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    return portfolio_from_dict(data)
