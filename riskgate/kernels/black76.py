"""Black-76 on the forward: price and greeks, linear (USD) and inverse (coin).

Units:
- ``fwd_usd``, ``strike_usd``: USD per coin; ``tte_years``: years (365-day);
  ``vol``: annualised, 1.0 = 100 %; ``rate``: continuously compounded per year.
- price: USD per coin of notional (linear); inverse price = linear price / forward, in coin.
- delta: dV/dF (unitless); gamma: d2V/dF2 (per USD); vega: dV/dvol per 1.00 of vol
  (divide by 100 for per vol point); theta: dV/dt per year of calendar time (= -dV/dT).
A non-positive time or vol prices at discounted intrinsic value.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from riskgate.kernels._jit import kernel

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@kernel
def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


@kernel
def _npdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@kernel
def black76_price(
    fwd_usd: float, strike_usd: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """Discounted Black-76 price in USD per coin."""
    df = math.exp(-rate * tte_years) if tte_years > 0.0 else 1.0
    if tte_years <= 0.0 or vol <= 0.0:
        intrinsic = fwd_usd - strike_usd if is_call else strike_usd - fwd_usd
        return df * max(intrinsic, 0.0)
    sd = vol * math.sqrt(tte_years)
    d1 = (math.log(fwd_usd / strike_usd) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if is_call:
        return df * (fwd_usd * _ncdf(d1) - strike_usd * _ncdf(d2))
    return df * (strike_usd * _ncdf(-d2) - fwd_usd * _ncdf(-d1))


@kernel
def black76_greeks(
    fwd_usd: float, strike_usd: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> tuple[float, float, float, float, float]:
    """(price, delta, gamma, vega, theta) in the units of the module docstring."""
    if tte_years <= 0.0 or vol <= 0.0:
        price = black76_price(fwd_usd, strike_usd, tte_years, vol, rate, is_call)
        df = math.exp(-rate * tte_years) if tte_years > 0.0 else 1.0
        itm = fwd_usd > strike_usd if is_call else fwd_usd < strike_usd
        delta = (df if is_call else -df) if itm else 0.0
        # only the discount factor still decays before expiry
        theta = rate * price if tte_years > 0.0 else 0.0
        return price, delta, 0.0, 0.0, theta
    df = math.exp(-rate * tte_years)
    sqrt_t = math.sqrt(tte_years)
    sd = vol * sqrt_t
    d1 = (math.log(fwd_usd / strike_usd) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    pdf_d1 = _npdf(d1)
    if is_call:
        price = df * (fwd_usd * _ncdf(d1) - strike_usd * _ncdf(d2))
        delta = df * _ncdf(d1)
    else:
        price = df * (strike_usd * _ncdf(-d2) - fwd_usd * _ncdf(-d1))
        delta = -df * _ncdf(-d1)
    gamma = df * pdf_d1 / (fwd_usd * sd)
    vega = df * fwd_usd * pdf_d1 * sqrt_t
    # V = e^{-rT} B(T): dV/dT = -rV + e^{-rT} dB/dT, and theta = -dV/dT
    theta = -(df * fwd_usd * pdf_d1 * vol / (2.0 * sqrt_t)) + rate * price
    return price, delta, gamma, vega, theta


@kernel
def black76_inverse_price(
    fwd_usd: float, strike_usd: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """Coin-settled option value in coin: the USD value divided by the forward."""
    return black76_price(fwd_usd, strike_usd, tte_years, vol, rate, is_call) / fwd_usd


@kernel
def black76_inverse_delta(
    fwd_usd: float, strike_usd: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """d(coin value)/dF, per USD: delta/F - V/F^2."""
    price, delta, _, _, _ = black76_greeks(fwd_usd, strike_usd, tte_years, vol, rate, is_call)
    return delta / fwd_usd - price / (fwd_usd * fwd_usd)


@kernel
def black76_price_array(
    fwd_usd: np.ndarray,
    strike_usd: np.ndarray,
    tte_years: np.ndarray,
    vol: np.ndarray,
    rate: float,
    is_call: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Vectorised price into ``out`` (USD per coin)."""
    for i in range(fwd_usd.shape[0]):
        out[i] = black76_price(fwd_usd[i], strike_usd[i], tte_years[i], vol[i], rate, is_call[i])
    return out


@kernel
def black76_greeks_array(
    fwd_usd: np.ndarray,
    strike_usd: np.ndarray,
    tte_years: np.ndarray,
    vol: np.ndarray,
    rate: float,
    is_call: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Vectorised greeks into ``out[n, 5]``: price, delta, gamma, vega, theta."""
    for i in range(fwd_usd.shape[0]):
        p, d, g, v, t = black76_greeks(
            fwd_usd[i], strike_usd[i], tte_years[i], vol[i], rate, is_call[i]
        )
        out[i, 0] = p
        out[i, 1] = d
        out[i, 2] = g
        out[i, 3] = v
        out[i, 4] = t
    return out


# ---- plain-Python twin (independent code path: statistics.NormalDist) -------------------

_N = NormalDist()


def black76_price_py(
    fwd_usd: float, strike_usd: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """Twin of :func:`black76_price` without numba or erfc, for tests."""
    df = math.exp(-rate * max(tte_years, 0.0))
    if tte_years <= 0.0 or vol <= 0.0:
        return df * max((fwd_usd - strike_usd) if is_call else (strike_usd - fwd_usd), 0.0)
    sd = vol * math.sqrt(tte_years)
    d1 = math.log(fwd_usd / strike_usd) / sd + sd / 2.0
    d2 = d1 - sd
    sign = 1.0 if is_call else -1.0
    return df * sign * (fwd_usd * _N.cdf(sign * d1) - strike_usd * _N.cdf(sign * d2))
