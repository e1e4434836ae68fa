"""Risk arrays: the weighted scenario P&L of one unit long of every instrument.

``risk[i, c]`` is the P&L of one unit of instrument ``i`` under scenario cell ``c`` in the
pool's currency, already multiplied by the cell's weight, so a portfolio's scenario P&L is
``sum_i q_i * risk[i, :]`` (per underlying). Scenario models supply the moves, weights and
shocked vols; this kernel only prices.

The delta of one unit, which the delta-based add-ons read, comes in two conventions:
- *index equivalent* (``futures_equivalent`` False): the USD delta divided by the index, so
  an option counts ``df N(d1) F / S`` and a linear future ``F / S`` coins of the index;
- *futures equivalent* (True, SPAN's): an option counts ``df N(d1)`` (``df (N(d1) - 1)`` for
  a put) futures on its own forward and a future or perpetual its coin quantity, whatever
  its expiry or settlement. An inverse future's unit is 1 USD of notional, whose coin
  equivalent at the mark is ``1 / F``: that is its delta in both conventions.

Units. One unit is one quantity (coin × multiplier) of every instrument except inverse
futures and perpetuals, whose unit is 1 USD of notional (their size is fixed in USD; see
:mod:`riskgate.domain.instruments`): under a move ``m`` of its mark ``F`` one USD of
notional pays ``1/F − 1/(F (1 + m)) = (1 − 1/(1 + m)) / F`` coin, converted at the scenario
index ``S (1 + m)`` in a USD pool.

Instrument kinds use the integer codes of :class:`riskgate.domain.instruments.Kind`.
"""

from __future__ import annotations

import numpy as np

from riskgate.kernels._jit import kernel
from riskgate.kernels.black76 import black76_greeks, black76_price

KIND_SPOT = 0
KIND_PERPETUAL = 1
KIND_FUTURE = 2
KIND_CALL = 3
KIND_PUT = 4


@kernel
def _option_value_pool(
    fwd_usd: float,
    strike_usd: float,
    tte_years: float,
    vol: float,
    rate: float,
    is_call: bool,
    inverse: bool,
    usd_pool: bool,
    index_usd: float,
) -> float:
    """Option value per coin of notional in the pool currency.

    Linear: Black-76 USD value. Inverse: USD value / forward (coin), and in a USD pool that
    coin amount is converted at the (scenario) index price.
    """
    usd = black76_price(fwd_usd, strike_usd, tte_years, vol, rate, is_call)
    if not inverse:
        return usd
    coin = usd / fwd_usd
    return coin * index_usd if usd_pool else coin


@kernel
def build_risk_table(
    kind: np.ndarray,  # int64[n]
    inverse: np.ndarray,  # bool[n]
    strike_usd: np.ndarray,  # float64[n]
    tte_years: np.ndarray,  # float64[n], now
    tte_scen_years: np.ndarray,  # float64[n], after the model's look-ahead (>= 0)
    fwd_usd: np.ndarray,  # float64[n], futures mark / option forward
    vol: np.ndarray,  # float64[n], current implied vol (options)
    vol_scen: np.ndarray,  # float64[n, C], shocked vol per cell (options)
    multiplier: np.ndarray,  # float64[n]
    und: np.ndarray,  # int64[n], row of the underlying
    index_usd: np.ndarray,  # float64[n_u]
    moves: np.ndarray,  # float64[n_u, C], price move for options
    d1_moves: np.ndarray,  # float64[n_u, C], price move for delta-one instruments
    opt_weight: np.ndarray,  # float64[n_u, C]
    d1_weight: np.ndarray,  # float64[n_u, C]
    usd_pool: bool,
    rate: float,
    futures_equivalent: bool,  # delta convention (module docstring)
    out_risk: np.ndarray,  # float64[n, C]
    out_value: np.ndarray,  # float64[n], value of one unit now, pool currency
    out_delta_coin: np.ndarray,  # float64[n], coin delta of one unit (module docstring)
) -> None:
    n = kind.shape[0]
    n_cells = moves.shape[1]
    for i in range(n):
        u = und[i]
        s = index_usd[u]
        k = kind[i]
        mult = multiplier[i]
        if k == KIND_CALL or k == KIND_PUT:
            is_call = k == KIND_CALL
            f = fwd_usd[i]
            v0 = _option_value_pool(
                f, strike_usd[i], tte_years[i], vol[i], rate, is_call, inverse[i], usd_pool, s
            )
            _, d_f, _, _, _ = black76_greeks(f, strike_usd[i], tte_years[i], vol[i], rate, is_call)
            out_value[i] = mult * v0
            out_delta_coin[i] = mult * d_f if futures_equivalent else mult * d_f * f / s
            for c in range(n_cells):
                m = moves[u, c]
                v1 = _option_value_pool(
                    f * (1.0 + m),
                    strike_usd[i],
                    tte_scen_years[i],
                    vol_scen[i, c],
                    rate,
                    is_call,
                    inverse[i],
                    usd_pool,
                    s * (1.0 + m),
                )
                out_risk[i, c] = mult * (v1 - v0) * opt_weight[u, c]
        elif k == KIND_SPOT:
            # A coin held (spot position or coin collateral): in a USD pool it is worth the
            # index; in its own coin pool it is one coin and never moves.
            out_delta_coin[i] = mult
            if usd_pool:
                out_value[i] = mult * s
                for c in range(n_cells):
                    out_risk[i, c] = mult * s * d1_moves[u, c] * d1_weight[u, c]
            else:
                out_value[i] = mult
                for c in range(n_cells):
                    out_risk[i, c] = 0.0
        else:
            # Futures and perpetuals: marked to market, so worth 0 now.
            out_value[i] = 0.0
            f = fwd_usd[i]
            if inverse[i]:
                # per 1 USD of notional (the multiplier is in the conversion to units)
                out_delta_coin[i] = 1.0 / f
                for c in range(n_cells):
                    m = d1_moves[u, c]
                    coin_pnl = (1.0 - 1.0 / (1.0 + m)) / f
                    pnl = coin_pnl * s * (1.0 + m) if usd_pool else coin_pnl
                    out_risk[i, c] = pnl * d1_weight[u, c]
            else:
                out_delta_coin[i] = mult if futures_equivalent else mult * f / s
                for c in range(n_cells):
                    out_risk[i, c] = mult * f * d1_moves[u, c] * d1_weight[u, c]
