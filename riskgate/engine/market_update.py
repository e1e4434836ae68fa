"""A market update, validated and built into a ``MarketApplied`` event off the order path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from riskgate.domain.instruments import InstrumentError
from riskgate.domain.market import MarketDataError, MarketSnapshot
from riskgate.engine.book import Account
from riskgate.engine.events import MarketApplied
from riskgate.engine.market import MarketState, build_market_state
from riskgate.engine.types import invalid, precondition
from riskgate.models.base import ScenarioModel
from riskgate.models.rules import RulesParams


def _upper(values: Mapping[str, float]) -> dict[str, float]:
    return {k.upper(): float(v) for k, v in values.items()}


def prepare(
    old: MarketState | None,
    model: ScenarioModel,
    rules_params: RulesParams,
    *,
    full_snapshot: bool,
    valuation_time: datetime | None,
    index_usd: Mapping[str, float],
    marks_usd: Mapping[str, float],
    ivs: Mapping[str, float],
    rate: float | None,
    received_ns: int = 0,
) -> tuple[MarketApplied, MarketState]:
    """The event and the market state it makes current (its risk tables built)."""
    if old is not None and valuation_time is not None and valuation_time < old.valuation_time:
        raise precondition(
            f"valuation_time: {valuation_time.isoformat()} is older than the "
            f"current {old.valuation_time.isoformat()}"
        )
    try:
        if full_snapshot or old is None:
            if valuation_time is None:
                raise invalid("valuation_time: required for a full snapshot")
            snap = MarketSnapshot(
                valuation_time, _upper(index_usd), _upper(marks_usd), _upper(ivs),
                0.0 if rate is None else float(rate),
            )  # fmt: skip
        else:
            snap = old.snapshot.with_updates(
                valuation_time=valuation_time,
                index_usd=_upper(index_usd),
                marks_usd=_upper(marks_usd),
                ivs=_upper(ivs),
                rate=rate,
            )
        version = 1 if old is None else old.version + 1
        new = build_market_state(version, snap, model, rules_params)
    except (MarketDataError, InstrumentError) as exc:
        raise invalid(str(exc)) from None
    new.received_ns = received_ns
    return MarketApplied(version, snap, received_ns), new


def held_symbols(accounts: Iterable[Account]) -> set[str]:
    """Every symbol an account holds or works (each account read under its lock)."""
    held: set[str] = set()
    for account in accounts:
        with account.lock:
            held.update(account.positions)
            held.update(o.symbol for o in account.orders.values() if o.status.is_working)
    return held


def check_priced(held: set[str], new: MarketState) -> None:
    missing = sorted(s for s in held if s not in new.instruments)
    if missing:
        raise precondition(
            f"market: {missing[0]} is held or worked by an account but cannot be "
            "priced by this update (missing data or expired); reconcile positions first"
        )
