"""Market snapshot -> risk tables, one per pool currency.

A :class:`RiskTable` holds, for every instrument that can sit in a pool of that currency,
its risk-array row (weighted scenario P&L of one unit, pool currency) and the attributes
the add-ons need. Tables are immutable once built: a market update builds new ones and
swaps them in.

Coin collateral is a synthetic spot row named ``collateral:<COIN>``: in a USD pool it is worth
``(1 - haircut) x index`` and moves with the coin; in its own coin pool it never moves.

A row is per *unit* of its instrument: one quantity (coin × multiplier), except for inverse
futures and perpetuals, sized in USD, whose rows are per 1 USD of notional
(:mod:`riskgate.kernels.risk_arrays`). :func:`table_quantity` converts a coin quantity of a
snapshot's portfolio to units at the snapshot's mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from riskgate.domain.instruments import Instrument, InstrumentError, Kind, Settlement
from riskgate.domain.market import MarketSnapshot
from riskgate.kernels import margin as mk
from riskgate.kernels.risk_arrays import build_risk_table
from riskgate.models.base import CoinGrid, ScenarioModel

USD = "USD"
COLLATERAL_PREFIX = "collateral:"


def collateral_symbol(coin: str) -> str:
    return f"{COLLATERAL_PREFIX}{coin}"


def collateral_instrument(coin: str, haircut: float) -> Instrument:
    return Instrument(
        collateral_symbol(coin), Kind.SPOT, coin, Settlement.LINEAR, multiplier=1.0 - haircut
    )


@dataclass(frozen=True, eq=False)
class RiskTable:
    currency: str  # "USD" or a coin
    model: ScenarioModel
    snapshot: MarketSnapshot
    coins: tuple[str, ...]  # row order of per-underlying state
    instruments: tuple[Instrument, ...]
    row: Mapping[str, int]  # symbol -> row
    risk: np.ndarray  # [n, C] weighted scenario P&L of one unit
    attr: np.ndarray  # [n, N_ATTR]
    und_price: np.ndarray  # [n_u] price used by rate-of-price add-ons (index, or 1 in coin)
    gparams: np.ndarray
    uparams: np.ndarray
    grids: Mapping[str, CoinGrid] = field(repr=False)
    # [u][cell] -> (price move, vol move, every coin's move, stress scenario name or ""):
    # scenario names without work on the hot path. The coins' moves are ((coin, move), ...)
    # of each coin the cell moves together: every coin of a USD pool when the model sums
    # coins cell by cell, else u's.
    labels: tuple[tuple[tuple[float, str, tuple[tuple[str, float], ...], str], ...], ...] = field(
        default=(), repr=False
    )

    @property
    def usd_pool(self) -> bool:
        return self.currency == USD

    @property
    def n_cells(self) -> int:
        return int(self.risk.shape[1])

    def value(self, symbol: str) -> float:
        return float(self.attr[self.row[symbol], mk.A_VALUE])

    def cell_label(self, coin: str, cell: int) -> dict:
        return self.grids[coin].label(cell)


def table_quantity(inst: Instrument, quantity: float, snapshot: MarketSnapshot) -> float:
    """A position's quantity (coin × multiplier) in the units its risk-table row counts: for
    an inverse future or perpetual its USD notional at the snapshot's mark, else itself."""
    if inst.sized_in_usd:
        return inst.to_units(quantity, snapshot.future_mark(inst))
    return quantity


def _labels(
    model: ScenarioModel,
    grids: Mapping[str, CoinGrid],
    coins: Sequence[str],
    n_cells: int,
    usd_pool: bool,
) -> tuple:
    # only a USD pool holds several coins (a coin pool holds its own coin's instruments)
    shared = [
        tuple((c, float(grids[c].moves[k])) for c in coins) for k in range(n_cells)
    ] if model.pool_shares_cells and usd_pool else None  # fmt: skip
    return tuple(
        tuple(
            (
                float(grids[c].moves[k]),
                grids[c].vol_label(k),
                shared[k] if shared is not None else ((c, float(grids[c].moves[k])),),
                grids[c].name(k),
            )
            for k in range(n_cells)
        )
        for c in coins
    )


def pool_currency_of(inst: Instrument, segregated: bool) -> str:
    """Cross: everything in USD. Segregated: inverse in its coin, linear and spot in USD."""
    return inst.underlying if segregated and inst.is_inverse else USD


def build_table(
    model: ScenarioModel,
    snapshot: MarketSnapshot,
    instruments: Iterable[Instrument],
    currency: str,
    coins: Sequence[str] | None = None,
) -> RiskTable:
    """Risk table for ``currency`` ("USD" or a coin) over ``instruments``.

    Instruments that cannot live in that pool are skipped (linear ones in a coin pool).
    Raises ``MarketDataError`` / ``InstrumentError`` naming the missing or bad field.
    """
    usd_pool = currency == USD
    coin_list = tuple(sorted(coins if coins is not None else snapshot.index_usd))
    coin_pos = {c: k for k, c in enumerate(coin_list)}
    insts: list[Instrument] = []
    for inst in instruments:
        if not usd_pool and (inst.underlying != currency or not inst.is_inverse):
            continue
        if inst.underlying not in coin_pos:
            raise InstrumentError(
                f"market.index.{inst.underlying}: missing (needed by {inst.symbol})"
            )
        insts.append(inst)
    for coin in coin_list if usd_pool else (currency,):
        insts.append(collateral_instrument(coin, model.collateral_haircut(coin)))

    n, n_u = len(insts), len(coin_list)
    grids = {c: model.grid(c) for c in coin_list}
    n_cells = model.n_cells
    kind = np.empty(n, dtype=np.int64)
    inverse = np.zeros(n, dtype=np.bool_)
    strike = np.zeros(n)
    tte = np.zeros(n)
    fwd = np.zeros(n)
    vol = np.zeros(n)
    mult = np.empty(n)
    und = np.empty(n, dtype=np.int64)
    now = snapshot.valuation_time
    for i, inst in enumerate(insts):
        kind[i] = int(inst.kind)
        inverse[i] = inst.is_inverse
        strike[i] = inst.strike_usd
        mult[i] = inst.multiplier
        und[i] = coin_pos[inst.underlying]
        t = inst.tte_years(now)
        if inst.expiry is not None and t <= 0.0:
            raise InstrumentError(f"{inst.symbol}: expired at {inst.expiry.isoformat()}")
        tte[i] = t
        if inst.is_option:
            fwd[i] = snapshot.forward(inst, t)
            vol[i] = snapshot.implied_vol(inst)
        elif inst.kind in (Kind.FUTURE, Kind.PERPETUAL):
            fwd[i] = snapshot.future_mark(inst)
        else:
            fwd[i] = snapshot.index(inst.underlying)
    tte_scen = np.maximum(tte - model.look_ahead_years, 0.0)
    dte_days = tte * 365.0
    vol_scen = np.zeros((n, n_cells))
    for coin, k in coin_pos.items():
        sel = (und == k) & ((kind == Kind.CALL) | (kind == Kind.PUT))
        if sel.any():
            vol_scen[sel] = model.all_scenario_vols(coin, vol[sel], dte_days[sel])
    index_usd = np.array([snapshot.index(c) for c in coin_list])
    moves = np.stack([grids[c].moves for c in coin_list])
    d1_moves = np.stack([grids[c].d1_moves for c in coin_list])
    opt_w = np.stack([grids[c].opt_weight for c in coin_list])
    d1_w = np.stack([grids[c].d1_weight for c in coin_list])

    risk = np.zeros((n, n_cells))
    value = np.zeros(n)
    delta = np.zeros(n)
    build_risk_table(
        kind, inverse, strike, tte, tte_scen, fwd, vol, vol_scen, mult, und, index_usd,
        moves, d1_moves, opt_w, d1_w, usd_pool, snapshot.rate, model.futures_equivalent_deltas,
        risk, value, delta,
    )  # fmt: skip

    attr = np.zeros((n, mk.N_ATTR))
    attr[:, mk.A_UND] = und
    attr[:, mk.A_DELTA] = delta
    attr[:, mk.A_CALL] = kind == Kind.CALL
    attr[:, mk.A_PUT] = kind == Kind.PUT
    attr[:, mk.A_MULT] = mult
    attr[:, mk.A_VALUE] = value
    for i, inst in enumerate(insts):
        attr[i, mk.A_TIER] = model.expiry_tier(dte_days[i])
        attr[i, mk.A_DELIVERY] = float(
            inst.kind in (Kind.FUTURE, Kind.CALL, Kind.PUT) and model.in_delivery(dte_days[i])
        )
        if inst.kind in (Kind.FUTURE, Kind.PERPETUAL):
            per_coin = model.roll_per_unit(inst.underlying, tte[i])
            scale = index_usd[und[i]] if usd_pool else 1.0
            # per unit: its coin of notional (1 / mark for a USD of an inverse contract)
            coins = 1.0 / fwd[i] if inst.sized_in_usd else inst.multiplier
            attr[i, mk.A_ROLL] = per_coin * coins * scale
    und_price = index_usd.copy() if usd_pool else np.ones(n_u)
    gparams, uparams = model.kernel_params(coin_list)
    for a in (risk, attr, und_price, gparams, uparams):
        a.setflags(write=False)
    return RiskTable(
        currency=currency,
        model=model,
        snapshot=snapshot,
        coins=coin_list,
        instruments=tuple(insts),
        row={inst.symbol: i for i, inst in enumerate(insts)},
        risk=risk,
        attr=attr,
        und_price=und_price,
        gparams=gparams,
        uparams=uparams,
        grids=grids,
        labels=_labels(model, grids, coin_list, n_cells, usd_pool),
    )
