"""Full revaluation: reprice every position under every scenario and aggregate from scratch.

This is the reference the incremental state must equal and the baseline the benchmark
compares against. It shares the pricing and margin kernels with the incremental path but
not the aggregation: positions are summed with a dense matrix product and the add-on
aggregates are rebuilt with numpy, never with ``apply_change``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from riskgate.domain.instruments import USD_LIKE, Instrument
from riskgate.domain.market import MarketSnapshot
from riskgate.engine.state import PoolMargin, read_margin
from riskgate.kernels import margin as mk
from riskgate.models.base import ScenarioModel
from riskgate.models.risk_table import (
    USD,
    build_table,
    collateral_symbol,
    pool_currency_of,
    table_quantity,
)


def _aggregate(table, symbols: list[str], qty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.array([table.row[s] for s in symbols], dtype=np.int64)
    risk = table.risk[rows]
    attr = table.attr[rows]
    n_u = len(table.coins)
    und = attr[:, mk.A_UND].astype(np.int64)
    onehot = np.zeros((len(symbols), n_u))
    onehot[np.arange(len(symbols)), und] = 1.0
    pnl = (onehot * qty[:, None]).T @ risk
    aux = np.zeros((n_u, mk.N_AUX))
    delta = qty * attr[:, mk.A_DELTA]
    short = np.maximum(-qty, 0.0) * attr[:, mk.A_MULT]
    per_inst = {
        mk.X_DELTA: delta,
        mk.X_SHORT_CALLS: short * attr[:, mk.A_CALL],
        mk.X_SHORT_PUTS: short * attr[:, mk.A_PUT],
        mk.X_ROLL: np.abs(qty) * attr[:, mk.A_ROLL],
        mk.X_DELIVERY: delta * attr[:, mk.A_DELIVERY],
        mk.X_VALUE: qty * attr[:, mk.A_VALUE],
    }
    for col, values in per_inst.items():
        np.add.at(aux[:, col], und, values)
    tiers = attr[:, mk.A_TIER].astype(np.int64)
    for t in range(mk.MAX_TIERS):
        np.add.at(aux[:, mk.X_TIER0 + t], und, delta * (tiers == t))
    return pnl, aux


def full_revaluation(
    model: ScenarioModel,
    snapshot: MarketSnapshot,
    positions: Mapping[Instrument, float],
    collateral: Mapping[str, float],
    segregated: bool,
) -> dict[str, PoolMargin]:
    """Margin of every pool, computed from nothing but the inputs. Quantities are in coin ×
    multiplier; an inverse future's or perpetual's is its USD notional's coin equivalent at
    the snapshot's mark."""
    holdings: dict[str, dict[str, float]] = {}
    instruments: dict[str, list[Instrument]] = {}
    cash: dict[str, float] = {}
    for inst, q_coin in positions.items():
        q = table_quantity(inst, q_coin, snapshot)
        ccy = pool_currency_of(inst, segregated)
        holdings.setdefault(ccy, {})[inst.symbol] = holdings.get(ccy, {}).get(inst.symbol, 0.0) + q
        instruments.setdefault(ccy, []).append(inst)
    for ccy, amount in collateral.items():
        code = ccy.upper()
        if code in USD_LIKE:
            cash[USD] = cash.get(USD, 0.0) + amount
        elif segregated:  # a coin in its own pool is cash: it never moves in coin terms
            cash[code] = cash.get(code, 0.0) + amount
        else:
            pool = code if segregated else USD
            holdings.setdefault(pool, {})[collateral_symbol(code)] = amount
            instruments.setdefault(pool, [])
    for pool in cash:
        holdings.setdefault(pool, {})
        instruments.setdefault(pool, [])
    out_by_pool: dict[str, PoolMargin] = {}
    for ccy in sorted(holdings):
        table = build_table(model, snapshot, instruments[ccy], ccy)
        symbols = list(holdings[ccy])
        qty = np.array([holdings[ccy][s] for s in symbols], dtype=np.float64)
        if symbols:
            pnl, aux = _aggregate(table, symbols, qty)
        else:
            pnl = np.zeros((len(table.coins), table.n_cells))
            aux = np.zeros((len(table.coins), mk.N_AUX))
        out = np.zeros((len(table.coins) + 1, mk.N_OUT))
        model.margin_kernel(pnl, aux, table.und_price, table.gparams, table.uparams, out)
        equity = cash.get(ccy, 0.0) + float(aux[:, mk.X_VALUE].sum())
        is_option = np.array(
            [table.instruments[table.row[s]].is_option for s in symbols], dtype=bool
        )
        nov = (
            float((qty * table.attr[[table.row[s] for s in symbols], mk.A_VALUE])[is_option].sum())
            if symbols
            else 0.0
        )
        active = (pnl != 0.0).any(axis=1) | (aux != 0.0).any(axis=1)
        out_by_pool[ccy] = read_margin(table, out, equity, nov, active)
    return out_by_pool
