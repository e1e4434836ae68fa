"""OCC TIMS-style model: per coin, equidistant price points over +/- a price range.

TIMS (the Theoretical Intermarket Margining System OCC used before STANS) revalues every
position at equidistant price points across its class's range. Here:

- **scenarios**: per coin ``points_per_side`` price points up and as many down, at
  ``k / points_per_side x price_range`` (k = 1 .. points_per_side; 5 + 5 = 10 by default),
  each at implied vol up and down by ``vol_shift`` when ``vol_shifts`` is on (20 cells),
  else at unchanged vol (10 cells); values after ``look_ahead_days``, weights 1;
- **class group** = one coin: every instrument of the coin (options, futures, spot, coin
  collateral in a USD pool) offsets in full, its requirement the worst loss over its cells;
- **product groups** (``[[product_group]]``, e.g. BTC and ETH): the coins of a group move
  together, cell ``c`` of each coin's grid in one scenario; per scenario the group's loss
  is its coins' losses less ``offset`` x their gains, and the group's worst such loss
  (never more than its class groups' sum) replaces that sum. The difference, the
  ``product_offset``, is shared among the coins in proportion to their worst losses. Coins
  in no group are margined alone;
- **minimum charge**: ``short_option_minimum`` x index x every short option contract
  (calls and puts, in coin) of the coin; a coin's requirement is at least that.

Per coin ``MM = max(worst loss - product offset, short option minimum)``; ``IM = im_ratio x
MM``; the pool sums its coins. Add-ons: ``product_offset``, ``short_option_minimum``,
``risk`` (= MM). Parameters: ``riskgate/models/params/tims.toml``.
"""

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


@register("tims")
class TimsModel(ScenarioModel):
    addon_names = ("product_offset", "short_option_minimum", "risk")
    margin_kernel = staticmethod(mk.margin_tims)
    whatif_kernel = staticmethod(mk.whatif_tims)
    remargin_kernel = staticmethod(mk.remargin_tims)
    remargin_rows_kernel = staticmethod(book_rows.remargin_rows_tims)
    remargin_pool_kernel = staticmethod(book_rows.remargin_pool_tims)

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.im_ratio = _num(data, "im_ratio", "tims", minimum=1.0)
        self.look_ahead_years = _num(data, "look_ahead_days", "tims", minimum=0.0) / 365.0
        self.vol_floor = _num(data, "vol_floor", "tims", minimum=1e-6)
        self.stress_vol_floor = self.vol_floor
        points = data.get("points_per_side", 5)
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise ModelParamsError("tims.points_per_side: an integer >= 1")
        self.points_per_side = points
        shifts = data.get("vol_shifts", True)
        if not isinstance(shifts, bool):
            raise ModelParamsError("tims.vol_shifts: true or false")
        self.vol_shifts = shifts
        self.groups: list[tuple[tuple[str, ...], float]] = []
        seen: dict[str, int] = {}
        for k, group in enumerate(data.get("product_group", [])):
            where = f"tims.product_group[{k}]"
            coins = group.get("coins") if isinstance(group, Mapping) else None
            if (
                not isinstance(coins, list)
                or len(coins) < 2
                or not all(isinstance(c, str) and c for c in coins)
            ):
                raise ModelParamsError(f"{where}.coins: a list of at least two coins")
            offset = _num(group, "offset", where, minimum=0.0)
            if offset > 1.0:
                raise ModelParamsError(f"{where}.offset: a fraction of at most 1, got {offset!r}")
            for coin in coins:
                if coin.upper() in seen:
                    raise ModelParamsError(
                        f"{where}.coins: {coin} is already in product_group[{seen[coin.upper()]}]"
                    )
                seen[coin.upper()] = k
            self.groups.append((tuple(c.upper() for c in coins), offset))
        for where, table in _underlying_tables(self.data):
            _fall_fraction(table, "price_range", where)
            _num(table, "vol_shift", where, minimum=0.0)
            _num(table, "short_option_minimum", where, minimum=0.0)

    def _build_grid(self, coin: str) -> CoinGrid:
        rng = self.coin_param(coin, "price_range", minimum=0.0)
        n = self.points_per_side
        fractions = [-k / n for k in range(n, 0, -1)] + [k / n for k in range(1, n + 1)]
        vols = (VOL_UP, VOL_DOWN) if self.vol_shifts else (VOL_SAME,)
        moves = [f * rng for f in fractions for _ in vols]
        dirs = [d for _ in fractions for d in vols]
        mv = np.array(moves)
        w = np.ones(len(moves))
        return CoinGrid(mv, mv.copy(), w, w.copy(), np.array(dirs, dtype=np.int64))

    def scenario_vols(self, coin: str, vol: np.ndarray, dte_days: np.ndarray) -> np.ndarray:
        shift = self.coin_param(coin, "vol_shift", minimum=0.0)
        dirs = self.base_grid(coin).vol_dir.astype(np.float64)
        return np.maximum(vol[:, None] + dirs[None, :] * shift, self.vol_floor)

    def kernel_params(self, coins: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pos = {c: k for k, c in enumerate(coins)}
        u = np.zeros((len(coins), mk.N_TIMS_U))
        u[:, mk.TU_GROUP] = -1.0
        offsets: list[float] = []
        for members, offset in self.groups:
            present = [pos[c] for c in members if c in pos]
            if len(present) < 2:
                continue
            for row in present:
                u[row, mk.TU_GROUP] = float(len(offsets))
            offsets.append(offset)
        for k, coin in enumerate(coins):
            u[k, mk.TU_SOM] = self.coin_param(coin, "short_option_minimum", minimum=0.0)
        g = np.array([self.im_ratio, float(len(offsets)), *offsets], dtype=np.float64)
        return g, u

    def expiry_tier(self, dte_days: float) -> int:
        return 0

    def in_delivery(self, dte_days: float) -> bool:
        return False

    def roll_per_unit(self, coin: str, tte_years: float) -> float:
        return 0.0
