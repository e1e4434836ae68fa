"""Margin comparison report: portfolio margin next to rules-based margin, per pool.

``compute_report`` is what ``riskgate margin`` prints; its dict is the ``--json`` output and
its keys are stable (see README "riskgate margin").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from riskgate.domain.instruments import Instrument
from riskgate.domain.portfolio import Portfolio, portfolio_from_dict
from riskgate.domain.units import plain
from riskgate.engine.attribution import AGGREGATION, TOP_LEGS, attribute
from riskgate.engine.state import PoolMargin, PoolState, PortfolioState, build_tables
from riskgate.kernels import margin as mk
from riskgate.models import load_model
from riskgate.models.base import ScenarioModel
from riskgate.models.risk_table import COLLATERAL_PREFIX
from riskgate.models.rules import RulesParams, load_rules_params, per_leg_margin, strategy_margin


def portfolio_state(portfolio: Portfolio, model: ScenarioModel) -> PortfolioState:
    """Build the incremental state of a portfolio, one position at a time."""
    tables = build_tables(
        model, portfolio.market, portfolio.instruments.values(), portfolio.segregated
    )
    state = PortfolioState(tables, portfolio.segregated)
    for ccy, amount in portfolio.collateral.items():
        state.set_collateral(ccy, amount)
    for symbol, qty in portfolio.positions.items():
        state.set_position(portfolio.instruments[symbol], qty)
    return state


def _efficiency(portfolio_im: float, rules_im: float) -> dict[str, float | None]:
    return {
        "rules_over_portfolio": (rules_im / portfolio_im) if portfolio_im > 0 else None,
        "saving": rules_im - portfolio_im,
        "saving_fraction": (1.0 - portfolio_im / rules_im) if rules_im > 0 else None,
    }


def _rules_block(
    legs: list[tuple[Instrument, float]], portfolio: Portfolio, ccy: str, params: RulesParams
) -> dict[str, Any]:
    per_leg = per_leg_margin(legs, portfolio.market, ccy, params)
    strategy = strategy_margin(legs, portfolio.market, ccy, params)
    return {
        "per_leg": {
            "initial_margin": per_leg.initial_margin,
            "maintenance_margin": per_leg.maintenance_margin,
            "legs": [
                {
                    "symbol": leg.symbol,
                    "quantity": leg.quantity,
                    "initial_margin": leg.initial_margin,
                    "maintenance_margin": leg.maintenance_margin,
                }
                for leg in per_leg.legs
            ],
        },
        "strategy": {
            "initial_margin": strategy.initial_margin,
            "maintenance_margin": strategy.maintenance_margin,
            "capped_at_per_leg": strategy.capped_at_per_leg,
            "strategies": [
                {
                    "name": s.name,
                    "legs": [list(leg) for leg in s.legs],
                    "initial_margin": s.initial_margin,
                }
                for s in strategy.strategies
            ],
        },
    }


def _breakdown(pool: PoolState) -> dict[str, dict[str, float]]:
    """The model's per-underlying breakdown figures (SPAN: net futures-equivalent delta and
    the time / volatility / price risk split behind the weighted price risk), by coin."""
    t = pool.table
    columns = t.model.breakdown_columns
    if not columns:
        return {}
    out = np.zeros((len(t.coins) + 1, mk.N_OUT))
    t.model.margin_kernel(pool.pnl, pool.aux, t.und_price, t.gparams, t.uparams, out)
    return {
        coin: {name: float(out[u, col]) for name, col in columns} for u, coin in enumerate(t.coins)
    }


def _attribution(pool: PoolState) -> list[dict[str, Any]]:
    """Each holding's P&L in the worst scenario, largest loss first, then the aggregation:
    the pnls sum to ``-worst_case`` (riskgate.engine.attribution)."""
    legs, aggregation, _ = attribute(pool.table, pool.qty, pool.margin_out())
    out: list[dict[str, Any]] = [
        {"symbol": leg.symbol, "quantity": leg.quantity, "pnl": leg.pnl} for leg in legs
    ]
    out.append({"symbol": AGGREGATION, "pnl": aggregation})
    return out


def _pool_block(
    pm: PoolMargin,
    attribution: list[dict[str, Any]],
    breakdown: Mapping[str, Mapping[str, float]],
    legs: list[tuple[Instrument, float]],
    portfolio: Portfolio,
    params: RulesParams,
) -> dict[str, Any]:
    rules = _rules_block(legs, portfolio, pm.currency, params)
    unders: dict[str, Any] = {}
    for coin, um in pm.underlyings.items():
        coin_legs = [(i, q) for i, q in legs if i.underlying == coin]
        if not coin_legs and um.worst_case == 0.0 and um.initial_margin == 0.0:
            continue
        coin_rules = _rules_block(coin_legs, portfolio, pm.currency, params)
        unders[coin] = {
            "portfolio": {
                "initial_margin": um.initial_margin,
                "maintenance_margin": um.maintenance_margin,
                "worst_case": um.worst_case,
                "worst_scenario": um.worst_scenario,
                "add_ons": um.add_ons,
                **breakdown.get(coin, {}),
            },
            "rules": coin_rules,
        }
    return {
        "currency": pm.currency,
        "equity": pm.equity,
        "net_option_value": pm.net_option_value,
        "portfolio": {
            "initial_margin": pm.initial_margin,
            "maintenance_margin": pm.maintenance_margin,
            "worst_case": pm.worst_case,
            "worst_scenario": pm.worst_scenario,
            "add_ons": pm.add_ons,
            "attribution": attribution,
        },
        "rules": rules,
        "capital_efficiency": {
            "vs_per_leg": _efficiency(pm.initial_margin, rules["per_leg"]["initial_margin"]),
            "vs_strategy": _efficiency(pm.initial_margin, rules["strategy"]["initial_margin"]),
        },
        "excess_equity": pm.equity - pm.initial_margin,
        "underlyings": unders,
    }


def compute_report(
    portfolio: Portfolio | Mapping[str, Any],
    model: str = "deribit",
    params_path: str | Path | None = None,
    rules_params_path: str | Path | None = None,
    stress_path: str | Path | None = None,
) -> dict[str, Any]:
    """Portfolio margin and both rules-based flavours for every pool of ``portfolio``
    (with ``stress_path``, the stress file's scenarios as extra cells of the model)."""
    if not isinstance(portfolio, Portfolio):
        portfolio = portfolio_from_dict(portfolio)
    scenario_model = load_model(model, params_path, stress_path)
    rules_params = load_rules_params(rules_params_path)
    state = portfolio_state(portfolio, scenario_model)
    pools: dict[str, Any] = {}
    for ccy, pool in sorted(state.pools.items()):
        # the rules take coin quantities: the portfolio's, not the state's units (an
        # inverse future's state holds its USD notional)
        legs = [
            (portfolio.instruments[s], portfolio.positions[s])
            for s in pool.qty
            if not s.startswith(COLLATERAL_PREFIX)
        ]
        pools[ccy] = _pool_block(
            pool.margin(), _attribution(pool), _breakdown(pool), legs, portfolio, rules_params
        )
    stress = scenario_model.stress
    return {
        "model": scenario_model.name,
        "stress": None
        if stress is None
        else {"file": stress.source, "digest": stress.digest, "scenarios": list(stress.names)},
        "pool_mode": portfolio.pool_mode,
        "valuation_time": portfolio.market.valuation_time.isoformat().replace("+00:00", "Z"),
        "pools": pools,
    }


# ---- text rendering -----------------------------------------------------------------------


def _fmt(x: float | None, ccy: str) -> str:
    if x is None:
        return "-"
    digits = 2 if ccy == "USD" else 6
    return f"{x:,.{digits}f}"


_BREAKDOWN_LABELS = {
    "net_delta": "net delta (futures eq.)",
    "time_risk": "time risk",
    "volatility_risk": "volatility risk",
    "price_risk": "price risk",
    "weighted_price_risk": "weighted price risk/delta",
}


def _breakdown_fmt(name: str, x: float, ccy: str) -> str:
    return f"{x:,.6f}" if name == "net_delta" else _fmt(x, ccy)


def _scenario_text(ws: Mapping[str, Any]) -> str:
    if not ws:
        return "-"
    pm = ws.get("price_move")
    if isinstance(pm, Mapping):
        moves = ", ".join(f"{c} {m:+.1%}" for c, m in pm.items())
    else:
        moves = f"{ws.get('underlying', '')} {pm:+.1%}".strip()
    name = f"stress scenario {ws['name']!r}, " if ws.get("name") else ""
    return f"{name}cell {ws['cell'] + 1}: {moves}, vol {ws.get('vol_move')}"


def _attribution_lines(attribution: list[Mapping[str, Any]], ccy: str) -> list[str]:
    """The legs that lose most in the worst scenario, the rest summed, the aggregation."""
    legs = [a for a in attribution if a["symbol"] != AGGREGATION]
    agg = next(a["pnl"] for a in attribution if a["symbol"] == AGGREGATION)
    lines = [f"  P&L in the worst scenario ({ccy}), largest loss first:"]
    for a in legs[:TOP_LEGS]:
        lines.append(f"    {_fmt(a['pnl'], ccy):>16}  {a['symbol']} ({plain(a['quantity'], 10)})")
    rest = legs[TOP_LEGS:]
    if rest:
        total = sum(a["pnl"] for a in rest)
        lines.append(f"    {_fmt(total, ccy):>16}  {len(rest)} other legs")
    if abs(agg) > 1e-9 * (1.0 + sum(abs(a["pnl"]) for a in legs)):
        lines.append(f"    {_fmt(agg, ccy):>16}  aggregation (the model's offsets of gains)")
    return lines


def render_text(report: Mapping[str, Any]) -> str:
    lines: list[str] = []
    stress = report.get("stress")
    with_stress = f" + {len(stress['scenarios'])} stress scenarios" if stress else ""
    lines.append(
        f"riskgate margin · model {report['model']}{with_stress} · pools {report['pool_mode']} · "
        f"valuation {report['valuation_time']}"
    )
    for ccy, pool in report["pools"].items():
        coins = list(pool["underlyings"])
        cols = ["pool total", *coins]
        lines.append("")
        lines.append(f"Pool {ccy}  (amounts in {ccy})")

        def row(label: str, values: list[str]) -> str:
            return f"  {label:<28}" + "".join(f"{v:>16}" for v in values)

        lines.append(row("", cols))
        lines.append(row("equity", [_fmt(pool["equity"], ccy)] + [""] * len(coins)))
        pblocks = [pool["portfolio"]] + [pool["underlyings"][c]["portfolio"] for c in coins]
        rblocks = [pool["rules"]] + [pool["underlyings"][c]["rules"] for c in coins]
        lines.append(row("portfolio IM", [_fmt(b["initial_margin"], ccy) for b in pblocks]))
        lines.append(row("portfolio MM", [_fmt(b["maintenance_margin"], ccy) for b in pblocks]))
        lines.append(row("  worst case (scan risk)", [_fmt(b["worst_case"], ccy) for b in pblocks]))
        for name in pool["portfolio"]["add_ons"]:
            lines.append(row(f"  {name}", [_fmt(b["add_ons"][name], ccy) for b in pblocks]))
        # per-underlying breakdown (SPAN's weighted price risk); no pool total
        for name in _BREAKDOWN_LABELS:
            if coins and name in pblocks[1]:
                cells = [_breakdown_fmt(name, b[name], ccy) for b in pblocks[1:]]
                lines.append(row(f"  {_BREAKDOWN_LABELS[name]}", ["", *cells]))
        lines.append(
            row("per-leg standard IM", [_fmt(b["per_leg"]["initial_margin"], ccy) for b in rblocks])
        )
        lines.append(
            row("strategy-based IM", [_fmt(b["strategy"]["initial_margin"], ccy) for b in rblocks])
        )
        lines.append(f"  worst scenario: {_scenario_text(pool['portfolio']['worst_scenario'])}")
        for coin in coins:
            ws = pool["underlyings"][coin]["portfolio"]["worst_scenario"]
            lines.append(f"    {coin}: {_scenario_text({**ws, 'underlying': coin})}")
        lines += _attribution_lines(pool["portfolio"]["attribution"], ccy)
        eff = pool["capital_efficiency"]
        for label, key in (("per-leg", "vs_per_leg"), ("strategy", "vs_strategy")):
            e = eff[key]
            if e["rules_over_portfolio"] is None:
                lines.append(f"  capital efficiency vs {label}: portfolio IM is zero")
            else:
                saving, fraction = e["saving"], e["saving_fraction"] or 0.0
                effect = (
                    f"portfolio margin saves {_fmt(saving, ccy)} {ccy}, {fraction:.0%}"
                    if saving >= 0
                    else f"portfolio margin costs {_fmt(-saving, ccy)} {ccy} more, "
                    f"{-fraction:.0%} of the {label} margin"
                )
                lines.append(
                    f"  capital efficiency vs {label}: {e['rules_over_portfolio']:.2f}x ({effect})"
                )
        strategies = pool["rules"]["strategy"]["strategies"]
        if strategies:
            lines.append("  strategies recognised:")
            for s in strategies:
                legs = ", ".join(
                    f"{'-' if q < 0 else '+'}{plain(abs(q), 10)} {sym}" for sym, q in s["legs"]
                )
                lines.append(f"    {s['name']:<16} {legs}  IM {_fmt(s['initial_margin'], ccy)}")
        if pool["rules"]["strategy"]["capped_at_per_leg"]:
            lines.append("  (strategy-based IM capped at the per-leg standard sum)")
        lines.append(
            f"  excess equity over portfolio IM: {_fmt(pool['excess_equity'], ccy)}"
            f"   net option value: {_fmt(pool['net_option_value'], ccy)}"
        )
    return "\n".join(lines)
