"""Market-data guards: an UpdateMarket request checked against the market it would replace,
before the engine sees it (fail closed on nonsense data).

:func:`check_update` is pure: the request, the current snapshot (None before the first
market) and the limits in, a list of :class:`Problem` out, each naming its field.

- *Hard* problems are never valid data and are always refused: a non-finite or
  non-positive price or vol, a value outside the ranges the pricing can take (prices
  outside [1e-8, 1e12] USD, vols outside [1e-4, 100], ``|rate|`` above 10), a full
  snapshot without index prices.
- *Soft* problems are implausible but possible in a real dislocation, and pass when the
  request sets ``override_guards`` (the call is then audited with the flag): an index
  moving more than ``max_index_move`` from the current one, a spot/perpetual/future mark
  more than ``max_mark_deviation`` from its coin's index, a vol outside
  [``min_iv``, ``max_iv``], a rate outside [``min_rate``, ``max_rate``].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from riskgate.domain.instruments import InstrumentError, parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.domain.units import plain
from riskgate.server.validate import clip
from riskgate.v1 import riskgate_pb2 as pb

__all__ = ["GuardLimits", "Problem", "check_update", "refusal"]

PRICE_RANGE = (1e-8, 1e12)  # USD
IV_RANGE = (1e-4, 100.0)
MAX_ABS_RATE = 10.0


@dataclass(frozen=True)
class GuardLimits:
    max_index_move: float = 0.25
    max_mark_deviation: float = 0.5
    min_iv: float = 0.01
    max_iv: float = 5.0
    min_rate: float = -0.5
    max_rate: float = 1.0

    @classmethod
    def from_settings(cls, s: Any) -> GuardLimits:
        return cls(
            s.max_index_move, s.max_mark_deviation, s.min_iv, s.max_iv, s.min_rate, s.max_rate
        )


@dataclass(frozen=True)
class Problem:
    field: str  # e.g. "index_usd[BTC]", "rate"
    message: str  # starts with the field
    overridable: bool


def _hard(field: str, value: float, lo: float, hi: float, unit: str) -> Problem | None:
    if not math.isfinite(value) or value <= 0.0:
        return Problem(field, f"{field}: must be finite and positive, got {value!r}", False)
    if not lo <= value <= hi:
        return Problem(field, f"{field}: {value:g}{unit} is outside [{lo:g}, {hi:g}]", False)
    return None


def _coin(symbol: str) -> str | None:
    try:
        return parse_symbol(symbol.upper()).underlying
    except (InstrumentError, ValueError):
        return None  # the engine names a malformed symbol


def check_update(
    req: pb.UpdateMarketRequest, current: MarketSnapshot | None, limits: GuardLimits
) -> list[Problem]:
    """Every problem of ``req`` as an update of ``current``, hard ones first."""
    hard: list[Problem] = []
    soft: list[Problem] = []
    full = req.full_snapshot or current is None
    if full and not req.index_usd:
        hard.append(Problem("index_usd", "index_usd: a full snapshot needs index prices", False))
    old_index = {} if current is None else current.index_usd
    index: dict[str, float] = {} if full else dict(old_index)
    lo, hi = PRICE_RANGE
    for coin, px in req.index_usd.items():
        field = f"index_usd[{clip(coin)}]"
        p = _hard(field, px, lo, hi, " USD")
        if p is not None:
            hard.append(p)
            continue
        index[coin.upper()] = px
        old = old_index.get(coin.upper())
        if old:
            move = px / old - 1.0
            if abs(move) > limits.max_index_move:
                soft.append(Problem(field, (
                    f"{field}: {plain(px)} moves {move:+.1%} from {plain(old)} "
                    f"(max_index_move {limits.max_index_move:g})"
                ), True))  # fmt: skip
    for symbol, px in req.marks_usd.items():
        field = f"marks_usd[{clip(symbol)}]"
        p = _hard(field, px, lo, hi, " USD")
        if p is not None:
            hard.append(p)
            continue
        coin = _coin(symbol)
        ref = index.get(coin) if coin else None
        if ref:
            dev = px / ref - 1.0
            if abs(dev) > limits.max_mark_deviation:
                soft.append(Problem(field, (
                    f"{field}: {plain(px)} is {dev:+.1%} from the {coin} index {plain(ref)} "
                    f"(max_mark_deviation {limits.max_mark_deviation:g})"
                ), True))  # fmt: skip
    for symbol, iv in req.ivs.items():
        field = f"ivs[{clip(symbol)}]"
        p = _hard(field, iv, *IV_RANGE, "")
        if p is not None:
            hard.append(p)
        elif not limits.min_iv <= iv <= limits.max_iv:
            soft.append(Problem(field, (
                f"{field}: {iv:g} is outside [min_iv {limits.min_iv:g}, max_iv {limits.max_iv:g}]"
            ), True))  # fmt: skip
    if req.HasField("rate"):
        r = req.rate
        if not math.isfinite(r) or abs(r) > MAX_ABS_RATE:
            hard.append(
                Problem(
                    "rate", f"rate: {r!r} is outside [-{MAX_ABS_RATE:g}, {MAX_ABS_RATE:g}]", False
                )
            )
        elif not limits.min_rate <= r <= limits.max_rate:
            soft.append(Problem("rate", (
                f"rate: {r:g} is outside [min_rate {limits.min_rate:g}, "
                f"max_rate {limits.max_rate:g}]"
            ), True))  # fmt: skip
    return hard + soft


def refusal(problems: list[Problem], override: bool) -> str | None:
    """The INVALID_ARGUMENT message for ``problems``, or None if the update may proceed
    (no problems, or only soft ones with ``override``)."""
    if not problems or (override and not any(not p.overridable for p in problems)):
        return None
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    hint = "; set override_guards to apply it anyway" if first.overridable else ""
    return first.message + more + hint
