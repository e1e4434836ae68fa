"""Deribit portfolio margin: 9 x 3 grid plus extended moves (docs/architecture.md §4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from riskgate.kernels import book_rows
from riskgate.kernels import margin as mk
from riskgate.models.base import (
    VOL_DOWN,
    VOL_SAME,
    VOL_UP,
    CoinGrid,
    ModelParamsError,
    ScenarioModel,
    _fall_fraction,
    _num,
    _underlying_tables,
    register,
)

_MIN_DTE_DAYS = 1.0 / 1440.0  # one minute: keeps (30/DTE)^p finite at expiry


@register("deribit")
class DeribitModel(ScenarioModel):
    addon_names = ("roll_shock", "delta_shock", "risk_matrix_margin")
    margin_kernel = staticmethod(mk.margin_deribit)
    whatif_kernel = staticmethod(mk.whatif_deribit)
    remargin_kernel = staticmethod(mk.remargin_deribit)
    remargin_rows_kernel = staticmethod(book_rows.remargin_rows_deribit)
    remargin_pool_kernel = staticmethod(book_rows.remargin_pool_deribit)
    look_ahead_years = 0.0
    pool_shares_cells = True

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.mm_factor = _num(data, "mm_factor", "deribit", minimum=0.0)
        steps = data.get("price_steps", 9)
        if not isinstance(steps, int) or steps < 3 or steps % 2 == 0:
            raise ModelParamsError("deribit.price_steps: an odd integer >= 3 (includes 0)")
        self.price_steps = steps
        ext = data.get("extended_moves", [])
        if not isinstance(ext, list) or not all(
            isinstance(m, int | float) and m != 0 and m > -1 for m in ext
        ):
            raise ModelParamsError(
                "deribit.extended_moves: non-zero moves greater than -1 (a fall of 100% or "
                "more puts the scenario price at or below zero)"
            )
        self.extended_moves = [float(m) for m in ext]
        for where, table in _underlying_tables(self.data):
            _fall_fraction(table, "price_range", where)
        self.switch_days = _num(data, "vega_power_switch_days", "deribit", minimum=0.0)
        self.short_power = _num(data, "short_term_vega_power", "deribit", minimum=0.0)
        self.long_power = _num(data, "long_term_vega_power", "deribit", minimum=0.0)

    @property
    def first_extended_cell(self) -> int:
        return 3 * self.price_steps

    def _build_grid(self, coin: str) -> CoinGrid:
        rng = self.coin_param(coin, "price_range", minimum=0.0)
        factor = self.coin_param(coin, "extended_table_factor", minimum=0.0)
        moves, d1, ow, dw, dirs = [], [], [], [], []
        for m in np.linspace(-rng, rng, self.price_steps):
            for d in (VOL_UP, VOL_SAME, VOL_DOWN):
                moves.append(float(m))
                d1.append(float(m))
                ow.append(1.0)
                dw.append(1.0)
                dirs.append(d)
        for m in self.extended_moves:
            moves.append(m)
            # delta-one P&L is taken, unweighted, at the edge move of the same sign
            d1.append(rng if m > 0 else -rng)
            ow.append(factor * rng / abs(m))
            dw.append(1.0)
            dirs.append(VOL_UP)
        return CoinGrid(np.array(moves), np.array(d1), np.array(ow), np.array(dw), np.array(dirs))

    def scenario_vols(self, coin: str, vol: np.ndarray, dte_days: np.ndarray) -> np.ndarray:
        up = self.coin_param(coin, "vol_range_up", minimum=0.0)
        down = self.coin_param(coin, "vol_range_down", minimum=0.0)
        min_up = self.coin_param(coin, "min_vol_for_shock_up", minimum=0.0)
        dte = np.maximum(dte_days, _MIN_DTE_DAYS)
        power = np.where(dte < self.switch_days, self.short_power, self.long_power)
        scale = (30.0 / dte) ** power
        vol_up = np.maximum(vol * (1.0 + up * scale), min_up)
        vol_down = np.maximum(vol * (1.0 - down * scale), 0.0)
        dirs = self.base_grid(coin).vol_dir
        out = np.empty((vol.shape[0], dirs.shape[0]))
        out[:, dirs == VOL_UP] = vol_up[:, None]
        out[:, dirs == VOL_SAME] = vol[:, None]
        out[:, dirs == VOL_DOWN] = vol_down[:, None]
        return out

    def kernel_params(self, coins: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        # the extended cells' dampener stops at the stress cells (they follow the table)
        g = np.array([self.mm_factor, float(self.first_extended_cell), float(self.n_base_cells)])
        u = np.zeros((len(coins), mk.N_DBT_U))
        for k, coin in enumerate(coins):
            u[k, mk.DU_OFFSET] = self.coin_param(coin, "pnl_offset", minimum=0.0)
            u[k, mk.DU_DAMPENER] = self.coin_param(coin, "extended_dampener", minimum=0.0)
            u[k, mk.DU_DELTA_SHOCK] = self.coin_param(coin, "delta_shock_rate", minimum=0.0)
        return g, u

    def expiry_tier(self, dte_days: float) -> int:
        return 0

    def in_delivery(self, dte_days: float) -> bool:
        return False

    def roll_per_unit(self, coin: str, tte_years: float) -> float:
        amr = self.coin_param(coin, "annualised_move_risk", minimum=0.0)
        floor = self.coin_param(coin, "min_annualised_move", minimum=0.0)
        return max(amr * max(tte_years, 0.0), floor)
