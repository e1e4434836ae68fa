"""Market snapshot: index per coin, marks per future/perpetual, implied vols per option."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from riskgate.domain.instruments import Instrument, InstrumentError, Kind, Settlement, parse_symbol


class MarketDataError(ValueError):
    """Missing or malformed market data; the message names the field."""


def parse_time(text: str, field_name: str) -> datetime:
    try:
        ts = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise MarketDataError(
            f"{field_name}: malformed date {text!r} (ISO 8601 expected)"
        ) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _finite_positive(value: object, field_name: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MarketDataError(f"{field_name}: not a number ({value!r})") from None
    if not math.isfinite(number) or number <= 0.0:
        raise MarketDataError(f"{field_name}: must be finite and positive, got {value!r}")
    return number


@dataclass(frozen=True)
class MarketSnapshot:
    valuation_time: datetime
    index_usd: Mapping[str, float]  # coin -> USD index price
    marks_usd: Mapping[str, float] = field(default_factory=dict)  # future/perp -> USD mark
    ivs: Mapping[str, float] = field(default_factory=dict)  # option -> implied vol (1.0 = 100%)
    rate: float = 0.0  # continuously compounded, per year

    def __post_init__(self) -> None:
        if self.valuation_time.tzinfo is None:
            raise MarketDataError("market.valuation_time: must carry a timezone")
        for coin, px in self.index_usd.items():
            _finite_positive(px, f"market.index.{coin}")
        for sym, px in self.marks_usd.items():
            _finite_positive(px, f"market.marks.{sym}")
        for sym, vol in self.ivs.items():
            _finite_positive(vol, f"market.ivs.{sym}")
        if not math.isfinite(self.rate):
            raise MarketDataError("market.rate: must be finite")

    @classmethod
    def from_dict(
        cls, data: Mapping, valuation_time: datetime | str | None = None
    ) -> MarketSnapshot:
        if not isinstance(data, Mapping):
            raise MarketDataError("market: expected an object")
        vt = valuation_time if valuation_time is not None else data.get("valuation_time")
        if vt is None:
            raise MarketDataError("valuation_time: missing")
        if not isinstance(vt, datetime):
            vt = parse_time(str(vt), "valuation_time")
        for key in ("index", "marks", "ivs"):
            if key in data and not isinstance(data[key], Mapping):
                raise MarketDataError(f"market.{key}: expected an object")
        index = {
            str(k).upper(): _finite_positive(v, f"market.index.{k}")
            for k, v in data.get("index", {}).items()
        }
        marks = {
            str(k).upper(): _finite_positive(v, f"market.marks.{k}")
            for k, v in data.get("marks", {}).items()
        }
        ivs = {
            str(k).upper(): _finite_positive(v, f"market.ivs.{k}")
            for k, v in data.get("ivs", {}).items()
        }
        rate = data.get("rate", 0.0)
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise MarketDataError(f"market.rate: not a number ({rate!r})") from None
        if not math.isfinite(rate):
            raise MarketDataError("market.rate: must be finite")
        return cls(vt, index, marks, ivs, rate)

    def with_updates(
        self,
        *,
        valuation_time: datetime | None = None,
        index_usd: Mapping[str, float] | None = None,
        marks_usd: Mapping[str, float] | None = None,
        ivs: Mapping[str, float] | None = None,
        rate: float | None = None,
    ) -> MarketSnapshot:
        """A new snapshot with some prices replaced (a partial market update)."""
        return MarketSnapshot(
            valuation_time or self.valuation_time,
            {**self.index_usd, **(index_usd or {})},
            {**self.marks_usd, **(marks_usd or {})},
            {**self.ivs, **(ivs or {})},
            self.rate if rate is None else rate,
        )

    # ---- lookups used when building risk arrays -------------------------------------------

    def index(self, coin: str) -> float:
        try:
            return self.index_usd[coin]
        except KeyError:
            raise MarketDataError(f"market.index.{coin}: missing") from None

    def future_mark(self, inst: Instrument) -> float:
        """Mark of a future or perpetual; a perpetual without a mark trades at the index."""
        mark = self.marks_usd.get(inst.symbol)
        if mark is not None:
            return mark
        if inst.kind == Kind.PERPETUAL:
            return self.index(inst.underlying)
        raise MarketDataError(f"market.marks.{inst.symbol}: missing mark for future")

    @cached_property
    def _futures_by_expiry(self) -> dict[tuple[str, datetime, Settlement], float]:
        out: dict[tuple[str, datetime, Settlement], float] = {}
        for sym, mark in self.marks_usd.items():
            try:
                inst = parse_symbol(sym)
            except InstrumentError:
                continue
            if inst.kind == Kind.FUTURE and inst.expiry is not None:
                out[(inst.underlying, inst.expiry, inst.settlement)] = mark
        return out

    def forward(self, inst: Instrument, tte_years: float) -> float:
        """Forward for an option's expiry: the mark of the dated future of the same coin and
        expiry (same settlement preferred), else index * e^{rT}."""
        if inst.expiry is not None:
            by_expiry = self._futures_by_expiry
            other = Settlement.LINEAR if inst.is_inverse else Settlement.INVERSE
            for settlement in (inst.settlement, other):
                mark = by_expiry.get((inst.underlying, inst.expiry, settlement))
                if mark is not None:
                    return mark
        return self.index(inst.underlying) * math.exp(self.rate * max(tte_years, 0.0))

    def implied_vol(self, inst: Instrument) -> float:
        vol = self.ivs.get(inst.symbol)
        if vol is None:
            raise MarketDataError(f"market.ivs.{inst.symbol}: missing implied vol for option")
        return vol
