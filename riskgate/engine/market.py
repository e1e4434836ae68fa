"""Versioned market state: the instrument universe and its risk tables, built off the order
path and swapped in whole."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from riskgate.domain.instruments import Instrument, InstrumentError, Kind, parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.kernels import margin as mk
from riskgate.kernels.black76 import black76_price
from riskgate.models.base import ScenarioModel
from riskgate.models.risk_table import USD, RiskTable, build_table
from riskgate.models.rules import RulesParams, per_leg_margin


@dataclass(frozen=True, slots=True)
class Quote:
    """What limit checks need of one instrument."""

    mark: float  # quote currency (USD; coin for inverse options)
    notional_usd: float  # of one unit: multiplier x index
    usd_per_quote: float  # converts a price in quote currency to USD


@dataclass(eq=False)
class MarketState:
    version: int
    snapshot: MarketSnapshot
    model: ScenarioModel
    instruments: dict[str, Instrument]
    tables: dict[str, RiskTable]
    quotes: dict[str, Quote]
    rules_params: RulesParams
    received_ns: int = 0  # wall clock of its arrival (MarketApplied.received_ns)
    # (pool currency, symbol) -> (long linear, long quadratic, short linear, short quadratic)
    # coefficients of per-leg IM and MM: f(q) = lin * |q| + quad * q^2 on each side
    _rules_coef: dict[tuple[str, str], tuple[float, ...]] = field(default_factory=dict)
    # USD notional of one unit of each symbol at this market's marks (the pre-trade
    # controls read it for every order; filled on first use: a cache, not state)
    units_usd: dict[str, float] = field(default_factory=dict)

    @property
    def valuation_time(self) -> datetime:
        return self.snapshot.valuation_time

    def rules_coefficients(self, currency: str, symbol: str) -> tuple[float, ...]:
        """Per-leg standard IM/MM as a function of quantity, from the rules module itself.

        The Deribit standard formulas are linear in |q| per side except the futures size
        term, which is quadratic, so four evaluations pin them down exactly. They are in
        units of the pool state: for an inverse future or perpetual (units: USD of notional,
        ``q = N / (multiplier × mark)`` coin) the coin coefficients scaled by ``1 / u`` and
        ``1 / u²``, ``u = multiplier × mark``.
        """
        key = (currency, symbol)
        coef = self._rules_coef.get(key)
        if coef is None:
            inst = self.instruments[symbol]

            def f(q: float) -> tuple[float, float]:
                r = per_leg_margin([(inst, q)], self.snapshot, currency, self.rules_params)
                return r.initial_margin, r.maintenance_margin

            (i1, m1), (i2, m2) = f(1.0), f(2.0)
            (j1, n1), (j2, n2) = f(-1.0), f(-2.0)
            quad = lambda a, b: (b - 2.0 * a) / 2.0  # noqa: E731
            coef = (
                i1 - quad(i1, i2), quad(i1, i2), j1 - quad(j1, j2), quad(j1, j2),
                m1 - quad(m1, m2), quad(m1, m2), n1 - quad(n1, n2), quad(n1, n2),
            )  # fmt: skip
            if inst.sized_in_usd:
                u = inst.units_per_quantity(self.snapshot.future_mark(inst))
                coef = tuple(c / (u if k % 2 == 0 else u * u) for k, c in enumerate(coef))
            self._rules_coef[key] = coef
        return coef


def universe_from_snapshot(snapshot: MarketSnapshot) -> dict[str, Instrument]:
    """Every instrument the snapshot can price: spot per coin, futures and perpetuals with a
    mark, options with an implied vol; expired ones are left out."""
    out: dict[str, Instrument] = {}
    for coin in snapshot.index_usd:
        spot = parse_symbol(f"{coin}_USDC")
        out[spot.symbol] = spot
    for field_name, symbols in (("marks", snapshot.marks_usd), ("ivs", snapshot.ivs)):
        for sym in symbols:
            try:
                inst = parse_symbol(sym)
            except InstrumentError as exc:
                raise InstrumentError(f"market.{field_name}.{sym}: {exc}") from None
            if field_name == "ivs" and not inst.is_option:
                raise InstrumentError(f"market.ivs.{sym}: implied vols are for options only")
            if field_name == "marks" and inst.is_option:
                raise InstrumentError(f"market.marks.{sym}: options are priced from ivs")
            if inst.underlying not in snapshot.index_usd:
                raise InstrumentError(f"market.index.{inst.underlying}: missing (needed by {sym})")
            if inst.expiry is not None and inst.expiry <= snapshot.valuation_time:
                continue
            out[inst.symbol] = inst
    return out


def build_market_state(
    version: int,
    snapshot: MarketSnapshot,
    model: ScenarioModel,
    rules_params: RulesParams,
    extra: Mapping[str, Instrument] | None = None,
) -> MarketState:
    instruments = universe_from_snapshot(snapshot)
    if extra:
        for sym, inst in extra.items():
            instruments.setdefault(sym, inst)
    insts = list(instruments.values())
    tables = {USD: build_table(model, snapshot, insts, USD)}
    for coin in sorted(snapshot.index_usd):
        tables[coin] = build_table(model, snapshot, insts, coin)
    quotes: dict[str, Quote] = {}
    usd = tables[USD]
    for sym, inst in instruments.items():
        s = snapshot.index(inst.underlying)
        if inst.is_option:
            t = inst.tte_years(snapshot.valuation_time)
            fwd = snapshot.forward(inst, t)
            px = black76_price(
                fwd, inst.strike_usd, t, snapshot.implied_vol(inst), snapshot.rate,
                inst.kind == Kind.CALL,
            )  # fmt: skip
            mark, per_quote = (px / fwd, fwd) if inst.is_inverse else (px, 1.0)
        elif inst.kind == Kind.SPOT:
            mark, per_quote = s, 1.0
        else:
            mark, per_quote = snapshot.future_mark(inst), 1.0
        assert math.isfinite(mark)
        quotes[sym] = Quote(mark, inst.multiplier * s, per_quote)
        assert usd.attr[usd.row[sym], mk.A_MULT] == inst.multiplier
    return MarketState(version, snapshot, model, instruments, tables, quotes, rules_params)
