"""CME SPAN-style model: 16 scenarios per underlying plus SPAN's add-ons (docs/span.md)."""

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

# CME order: (fraction of the price scan range, vol direction); 15-16 are the extremes.
_SPAN_CELLS = [
    (0.0, VOL_UP), (0.0, VOL_DOWN),
    (1 / 3, VOL_UP), (1 / 3, VOL_DOWN), (-1 / 3, VOL_UP), (-1 / 3, VOL_DOWN),
    (2 / 3, VOL_UP), (2 / 3, VOL_DOWN), (-2 / 3, VOL_UP), (-2 / 3, VOL_DOWN),
    (1.0, VOL_UP), (1.0, VOL_DOWN), (-1.0, VOL_UP), (-1.0, VOL_DOWN),
]  # fmt: skip
# CME's split of the scan risk: the time risk reads the two unchanged-price scenarios, the
# volatility risk pairs each scenario with its opposite-vol twin (an extreme, whose vol is
# unchanged, is its own pair)
_TIME_CELLS = [k for k, (f, _) in enumerate(_SPAN_CELLS) if f == 0.0]
_PAIRED_CELLS = [
    next(j for j, (g, e) in enumerate(_SPAN_CELLS) if g == f and e == -d) for f, d in _SPAN_CELLS
] + [len(_SPAN_CELLS), len(_SPAN_CELLS) + 1]  # scenarios 15-16, the extremes


@register("span")
class SpanModel(ScenarioModel):
    addon_names = ("intra_spread", "delivery", "inter_credit", "short_option_minimum", "risk")
    margin_kernel = staticmethod(mk.margin_span)
    whatif_kernel = staticmethod(mk.whatif_span)
    remargin_kernel = staticmethod(mk.remargin_span)
    remargin_rows_kernel = staticmethod(book_rows.remargin_rows_span)
    remargin_pool_kernel = staticmethod(book_rows.remargin_pool_span)
    # the calendar-spread, delivery and inter-commodity charges count futures equivalents
    futures_equivalent_deltas = True
    breakdown_columns = (
        ("net_delta", mk.O_SPAN_DELTA),
        ("time_risk", mk.O_SPAN_TIME),
        ("volatility_risk", mk.O_SPAN_VOL),
        ("price_risk", mk.O_SPAN_PRICE),
        ("weighted_price_risk", mk.O_SPAN_WPR),
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.im_ratio = _num(data, "im_ratio", "span", minimum=1.0)
        self.extreme_multiple = _num(data, "extreme_multiple", "span", minimum=0.0)
        self.cover_fraction = _num(data, "cover_fraction", "span", minimum=0.0)
        self.look_ahead_years = _num(data, "look_ahead_days", "span", minimum=0.0) / 365.0
        self.vol_floor = _num(data, "vol_floor", "span", minimum=1e-6)
        self.stress_vol_floor = self.vol_floor
        self.delivery_window_days = float(data.get("delivery_window_days", 0.0))
        bounds = data.get("tier_boundaries_days", [])
        if not isinstance(bounds, list) or len(bounds) + 1 > mk.MAX_TIERS:
            raise ModelParamsError(
                f"span.tier_boundaries_days: a list of at most {mk.MAX_TIERS - 1} numbers"
            )
        self.tier_bounds_days = sorted(float(b) for b in bounds)
        n_tiers = len(self.tier_bounds_days) + 1
        self.intra_pairs: list[tuple[int, int, float]] = []
        for k, pair in enumerate(data.get("intra_spread", [])):
            tiers = pair.get("tiers")
            if (
                not isinstance(tiers, list)
                or len(tiers) != 2
                or not all(isinstance(t, int) and 0 <= t < n_tiers for t in tiers)
            ):
                raise ModelParamsError(
                    f"span.intra_spread[{k}].tiers: two tier numbers < {n_tiers}"
                )
            rate = _num(pair, "rate", f"span.intra_spread[{k}]", minimum=0.0)
            self.intra_pairs.append((tiers[0], tiers[1], rate))
        self.inter: list[tuple[str, str, float, float, float]] = []
        for k, pair in enumerate(data.get("inter_credit", [])):
            legs, ratio = pair.get("legs"), pair.get("delta_ratio")
            if not (
                isinstance(legs, list)
                and len(legs) == 2
                and isinstance(ratio, list)
                and len(ratio) == 2
            ):
                raise ModelParamsError(
                    f"span.inter_credit[{k}]: legs and delta_ratio need two entries"
                )
            if not all(isinstance(r, int | float) and r > 0 for r in ratio):
                raise ModelParamsError(f"span.inter_credit[{k}].delta_ratio: positive numbers")
            rate = _num(pair, "rate", f"span.inter_credit[{k}]", minimum=0.0)
            self.inter.append((str(legs[0]), str(legs[1]), float(ratio[0]), float(ratio[1]), rate))
        self._check_scenario_prices()

    def _check_scenario_prices(self) -> None:
        """Every scenario must leave the price above zero. The largest fall is
        ``max(1, extreme_multiple) x price_scan_range``; checked for every table up front,
        so a bad file fails when it is loaded, not when a book first uses the coin."""
        for where, table in _underlying_tables(self.data):
            psr = _fall_fraction(table, "price_scan_range", where)
            fall = self.extreme_multiple * psr
            if fall >= 1.0:
                raise ModelParamsError(
                    f"span.extreme_multiple: {self.extreme_multiple!r} x {where}."
                    f"price_scan_range {psr!r} is a fall of {fall:.0%}, which puts the extreme "
                    "scenario's price at or below zero (the product must be < 1)"
                )

    def _build_grid(self, coin: str) -> CoinGrid:
        psr = self.coin_param(coin, "price_scan_range", minimum=0.0)
        self.coin_param(coin, "vol_scan_range", minimum=0.0)
        moves = [f * psr for f, _ in _SPAN_CELLS]
        dirs = [d for _, d in _SPAN_CELLS]
        weights = [1.0] * len(_SPAN_CELLS)
        for sign in (1.0, -1.0):
            moves.append(sign * self.extreme_multiple * psr)
            dirs.append(VOL_SAME)
            weights.append(self.cover_fraction)
        mv = np.array(moves)
        w = np.array(weights)
        return CoinGrid(mv, mv.copy(), w, w.copy(), np.array(dirs, dtype=np.int64))

    def scenario_vols(self, coin: str, vol: np.ndarray, dte_days: np.ndarray) -> np.ndarray:
        vsr = self.coin_param(coin, "vol_scan_range", minimum=0.0)
        dirs = self.base_grid(coin).vol_dir.astype(np.float64)
        return np.maximum(vol[:, None] + dirs[None, :] * vsr, self.vol_floor)

    def kernel_params(self, coins: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        g: list[float] = [self.im_ratio, float(len(self.intra_pairs))]
        for a, b, rate in self.intra_pairs:
            g += [float(a), float(b), rate]
        pos = {c: k for k, c in enumerate(coins)}
        inter = [p for p in self.inter if p[0] in pos and p[1] in pos]
        g.append(float(len(inter)))
        for a, b, ra, rb, rate in inter:
            g += [float(pos[a]), float(pos[b]), ra, rb, rate]
        g += [float(c) for c in _TIME_CELLS]
        g += [float(c) for c in _PAIRED_CELLS]
        # a stress cell pairs with itself (it has no opposite-vol twin), like an extreme
        g += [float(c) for c in range(len(_PAIRED_CELLS), self.n_cells)]
        u = np.zeros((len(coins), mk.N_SPAN_U))
        for k, coin in enumerate(coins):
            u[k, mk.SU_SOM] = self.coin_param(coin, "short_option_minimum", minimum=0.0)
            u[k, mk.SU_DELIVERY] = self.coin_param(coin, "delivery_rate", minimum=0.0)
            u[k, mk.SU_PSR] = self.coin_param(coin, "price_scan_range", minimum=0.0)
        return np.array(g, dtype=np.float64), u

    def expiry_tier(self, dte_days: float) -> int:
        for k, bound in enumerate(self.tier_bounds_days):
            if dte_days <= bound:
                return k
        return len(self.tier_bounds_days)

    def in_delivery(self, dte_days: float) -> bool:
        return 0.0 < dte_days <= self.delivery_window_days

    def roll_per_unit(self, coin: str, tte_years: float) -> float:
        return 0.0
