"""Embedded demo market and accounts: a realistic BTC/ETH venue to serve and benchmark.

Expiries follow the Deribit calendar (dailies, Friday weeklies, last-Friday monthlies and
quarterlies, 08:00 UTC); strikes are spread in log-moneyness around the forward; implied
vols follow a smile ``atm(T) + skew * x + curvature * x^2`` with ``x = ln(K / F)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from riskgate.domain.instruments import Instrument, format_expiry, parse_symbol
from riskgate.domain.market import MarketSnapshot

# coin -> (index USD, strike step USD, ATM vol short end, ATM vol slope per sqrt(year),
#          skew, curvature, annual futures basis)
DEMO_COINS: dict[str, tuple[float, float, float, float, float, float, float]] = {
    "BTC": (70_000.0, 500.0, 0.48, 0.06, -0.10, 0.35, 0.05),
    "ETH": (3_500.0, 25.0, 0.62, 0.05, -0.08, 0.30, 0.055),
}


def _last_friday(year: int, month: int) -> datetime:
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, 8, tzinfo=UTC)
    day = nxt - timedelta(days=1)
    while day.weekday() != 4:
        day -= timedelta(days=1)
    return day


def deribit_expiries(
    valuation_time: datetime, n_months: int = 3, n_quarters: int = 4
) -> list[datetime]:
    """Dailies (3), Friday weeklies (4), monthlies and quarterlies after ``valuation_time``."""
    base = valuation_time.astimezone(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    out: set[datetime] = set()
    day = base if base > valuation_time else base + timedelta(days=1)
    for k in range(3):
        out.add(day + timedelta(days=k))
    friday = day + timedelta(days=(4 - day.weekday()) % 7)
    for k in range(4):
        out.add(friday + timedelta(weeks=k))
    y, m = base.year, base.month
    months = 0
    quarters = 0
    while months < n_months or quarters < n_quarters:
        lf = _last_friday(y, m)
        if lf > valuation_time:
            if months < n_months:
                out.add(lf)
                months += 1
            elif m % 3 == 0:
                out.add(lf)
                quarters += 1
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return sorted(out)


@dataclass(frozen=True)
class DemoMarket:
    snapshot: MarketSnapshot
    instruments: list[Instrument]

    def symbols(self) -> list[str]:
        return [i.symbol for i in self.instruments]


def demo_market(
    valuation_time: datetime | None = None,
    coins: Sequence[str] = ("BTC", "ETH"),
    strikes_per_expiry: int = 21,
    linear_options: bool = True,
    inverse_options: bool = True,
    n_months: int = 3,
    n_quarters: int = 4,
) -> DemoMarket:
    """A full venue: spot, perpetuals, dated futures and call/put chains per coin."""
    vt = valuation_time or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    expiries = deribit_expiries(vt, n_months, n_quarters)
    index: dict[str, float] = {}
    marks: dict[str, float] = {}
    ivs: dict[str, float] = {}
    symbols: list[str] = []
    for coin in coins:
        spot, step, atm0, slope, skew, curv, basis = DEMO_COINS[coin]
        index[coin] = spot
        symbols += [f"{coin}_USDC", f"{coin}-PERPETUAL", f"{coin}_USDC-PERPETUAL"]
        marks[f"{coin}-PERPETUAL"] = round(spot * 1.0001, 2)
        marks[f"{coin}_USDC-PERPETUAL"] = round(spot * 1.0001, 2)
        for exp in expiries:
            t = (exp - vt).total_seconds() / (365.0 * 86400.0)
            fwd = spot * math.exp(basis * t)
            code = format_expiry(exp)
            if (exp - vt) > timedelta(days=7):  # dated futures for monthlies and quarterlies
                for head in (coin, f"{coin}_USDC"):
                    marks[f"{head}-{code}"] = round(fwd, 2)
                    symbols.append(f"{head}-{code}")
            atm = atm0 + slope * math.sqrt(t)
            width = 3.0 * atm * math.sqrt(max(t, 1.0 / 365.0))
            strikes = sorted(
                {
                    max(step, round(fwd * math.exp(x) / step) * step)
                    for x in np.linspace(-width, width, strikes_per_expiry)
                }
            )
            heads = ([coin] if inverse_options else []) + (
                [f"{coin}_USDC"] if linear_options else []
            )
            for k in strikes:
                x = math.log(k / fwd)
                vol = max(0.05, atm + skew * x + curv * x * x)
                for head in heads:
                    for cp in ("C", "P"):
                        sym = f"{head}-{code}-{int(k)}-{cp}"
                        ivs[sym] = round(vol, 6)
                        symbols.append(sym)
    snapshot = MarketSnapshot(vt, index, marks, ivs, 0.0)
    return DemoMarket(snapshot, [parse_symbol(s) for s in symbols])


def random_portfolio(
    market: DemoMarket, n_legs: int, rng: np.random.Generator, max_qty: float = 5.0
) -> dict[Instrument, float]:
    """``n_legs`` distinct instruments with random signed quantities (coin)."""
    insts = market.instruments
    n_legs = min(n_legs, len(insts))
    picks = rng.choice(len(insts), size=n_legs, replace=False)
    out: dict[Instrument, float] = {}
    for k in picks:
        q = float(np.round(rng.uniform(0.1, max_qty), 1)) * (1 if rng.random() < 0.5 else -1)
        out[insts[int(k)]] = q
    return out
