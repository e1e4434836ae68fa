"""Black-76 kernels against independent references.

References used (never values produced by the code under test):
- QuantLib ``blackFormula`` (prices) and ``BlackCalculator`` (forward greeks);
- central finite differences of the plain-Python twin ``black76_price_py``;
- put-call parity, a published value and hand-worked edge cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.kernels.black76 import (
    black76_greeks,
    black76_greeks_array,
    black76_inverse_delta,
    black76_inverse_price,
    black76_price,
    black76_price_array,
    black76_price_py,
)

N_RANDOM = 1500
SEED = 20_240_601
RTOL = 1e-9
# Absolute floor for prices that are ~0 (deep OTM): a fraction of the forward.
PRICE_ATOL_PER_FWD = 1e-9

Inputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _random_inputs(n: int, seed: int) -> Inputs:
    """Forwards 100..200k, strikes 0.3x..3x, T 1 day..3 y, vol 0.05..3, rate -2%..10%."""
    rng = np.random.default_rng(seed)
    fwd = np.exp(rng.uniform(math.log(100.0), math.log(200_000.0), n))
    strike = fwd * np.exp(rng.uniform(math.log(0.3), math.log(3.0), n))
    tte = np.exp(rng.uniform(math.log(1.0 / 365.0), math.log(3.0), n))
    vol = np.exp(rng.uniform(math.log(0.05), math.log(3.0), n))
    rate = rng.uniform(-0.02, 0.1, n)
    is_call = rng.random(n) < 0.5
    return fwd, strike, tte, vol, rate, is_call


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    return _random_inputs(N_RANDOM, SEED)


def _rows(inp: Inputs):
    fwd, strike, tte, vol, rate, is_call = inp
    for i in range(fwd.shape[0]):
        yield (
            float(fwd[i]),
            float(strike[i]),
            float(tte[i]),
            float(vol[i]),
            float(rate[i]),
            bool(is_call[i]),
        )


def _ql_type(is_call: bool) -> int:
    return ql.Option.Call if is_call else ql.Option.Put


def _ql_price(f: float, k: float, t: float, vol: float, r: float, is_call: bool) -> float:
    return ql.blackFormula(_ql_type(is_call), k, f, vol * math.sqrt(t), math.exp(-r * t))


def _ql_greeks(
    f: float, k: float, t: float, vol: float, r: float, is_call: bool
) -> tuple[float, float, float, float, float]:
    """(price, dV/dF, d2V/dF2, dV/dvol, theta per year) from QuantLib's BlackCalculator.

    ``BlackCalculator.theta(spot, T)`` is -dV/dT holding r, q fixed; with spot == forward
    the forward does not drift with T, which is exactly the Black-76 theta on a fixed
    forward: r*V - 0.5*vol^2*F^2*gamma.
    """
    calc = ql.BlackCalculator(
        ql.PlainVanillaPayoff(_ql_type(is_call), k), f, vol * math.sqrt(t), math.exp(-r * t)
    )
    return (
        calc.value(),
        calc.deltaForward(),
        calc.gammaForward(),
        calc.vega(t),
        calc.theta(f, t),
    )


def _greek_scales(f: float, t: float, vol: float, r: float) -> tuple[float, ...]:
    """Natural magnitude of each output, used as an absolute floor for tolerances."""
    sd = vol * math.sqrt(t)
    return (
        f,  # price
        1.0,  # delta
        1.0 / (f * sd),  # gamma (max is ~0.4 / (F sd))
        f * math.sqrt(t),  # vega per 1.00 vol
        f * (vol / (2.0 * math.sqrt(t)) + abs(r)),  # theta per year
    )


def _err(got: float, ref: float, scale: float) -> float:
    """Error relative to the reference, with ``scale`` as the floor of the denominator."""
    return abs(got - ref) / max(abs(ref), scale)


# ---- 1. prices vs QuantLib -------------------------------------------------------------


@pytest.mark.parametrize("impl", [black76_price, black76_price_py], ids=["numba", "python"])
def test_price_matches_quantlib(inputs: Inputs, impl) -> None:
    for f, k, t, vol, r, is_call in _rows(inputs):
        ref = _ql_price(f, k, t, vol, r, is_call)
        got = impl(f, k, t, vol, r, is_call)
        assert math.isfinite(got)
        # relative error <= RTOL, or absolute error <= 1e-9 * F for prices that are ~0
        e = min(abs(got - ref) / abs(ref) if ref else math.inf, abs(got - ref) / f)
        assert e <= RTOL, (f, k, t, vol, r, is_call, got, ref)


def test_price_array_matches_quantlib(inputs: Inputs) -> None:
    fwd, strike, tte, vol, _, is_call = inputs
    # The array kernel takes one scalar rate: sweep a few rates over the whole vector.
    for r in (-0.02, -0.0037, 0.0, 0.031, 0.1):
        out = np.full(fwd.shape[0], np.nan)
        res = black76_price_array(fwd, strike, tte, vol, r, is_call, out)
        assert res is out or np.shares_memory(res, out)
        assert np.all(np.isfinite(out))
        for i in range(fwd.shape[0]):
            f = float(fwd[i])
            ref = _ql_price(f, float(strike[i]), float(tte[i]), float(vol[i]), r, bool(is_call[i]))
            assert abs(out[i] - ref) <= max(RTOL * abs(ref), PRICE_ATOL_PER_FWD * f), (i, r)


def test_price_array_empty() -> None:
    empty = np.empty(0)
    out = black76_price_array(empty, empty, empty, empty, 0.01, np.empty(0, dtype=bool), empty)
    assert out.shape == (0,)


# ---- 2. greeks vs QuantLib and vs finite differences of the twin ------------------------

GREEK_NAMES = ("price", "delta", "gamma", "vega", "theta")


def test_greeks_match_quantlib(inputs: Inputs) -> None:
    for f, k, t, vol, r, is_call in _rows(inputs):
        got = black76_greeks(f, k, t, vol, r, is_call)
        ref = _ql_greeks(f, k, t, vol, r, is_call)
        scales = _greek_scales(f, t, vol, r)
        for name, g, q, s in zip(GREEK_NAMES, got, ref, scales, strict=True):
            e = _err(g, q, 1e-3 * s)
            assert e <= 1e-9, (name, f, k, t, vol, r, is_call, g, q)


def test_greeks_array_matches_quantlib(inputs: Inputs) -> None:
    fwd, strike, tte, vol, _, is_call = inputs
    for r in (-0.02, 0.0, 0.07):
        out = np.full((fwd.shape[0], 5), np.nan)
        black76_greeks_array(fwd, strike, tte, vol, r, is_call, out)
        assert np.all(np.isfinite(out))
        for i in range(fwd.shape[0]):
            f, k, t, v, c = (
                float(fwd[i]),
                float(strike[i]),
                float(tte[i]),
                float(vol[i]),
                bool(is_call[i]),
            )
            ref = _ql_greeks(f, k, t, v, r, c)
            for j, s in enumerate(_greek_scales(f, t, v, r)):
                assert _err(out[i, j], ref[j], 1e-3 * s) <= 1e-9, (GREEK_NAMES[j], i, r)


# Error of the finite differences themselves, as a fraction of each greek's natural scale
# (observed on the seeded inputs: delta 1.5e-9, gamma 2.8e-7, vega 9e-10, theta 2.7e-9).
FD_TOL = {"delta": 1e-7, "gamma": 5e-6, "vega": 1e-7, "theta": 1e-7}


def _fd_greeks(f: float, k: float, t: float, vol: float, r: float, is_call: bool):
    """Central finite differences of the plain-Python twin (delta, gamma, vega, theta)."""
    px = black76_price_py
    sd = vol * math.sqrt(t)
    hf = 1e-4 * f * sd
    delta = (px(f + hf, k, t, vol, r, is_call) - px(f - hf, k, t, vol, r, is_call)) / (2 * hf)
    hg = 5e-4 * f * sd  # balances truncation (~h^2) against rounding (~eps/h^2)
    gamma = (
        px(f + hg, k, t, vol, r, is_call)
        - 2.0 * px(f, k, t, vol, r, is_call)
        + px(f - hg, k, t, vol, r, is_call)
    ) / (hg * hg)
    hv = 1e-5 * vol
    vega = (px(f, k, t, vol + hv, r, is_call) - px(f, k, t, vol - hv, r, is_call)) / (2 * hv)
    ht = 1e-5 * t
    # theta = -dV/dT with the forward held fixed; V includes the discount factor e^{-rT}
    theta = -(px(f, k, t + ht, vol, r, is_call) - px(f, k, t - ht, vol, r, is_call)) / (2 * ht)
    return delta, gamma, vega, theta


def test_greeks_match_finite_differences(inputs: Inputs) -> None:
    fwd, strike, tte, vol, _, is_call = inputs
    out = np.empty((fwd.shape[0], 5))
    for i, (f, k, t, v, r, c) in enumerate(_rows(inputs)):
        fd = _fd_greeks(f, k, t, v, r, c)
        scalar = black76_greeks(f, k, t, v, r, c)
        # the array kernel, one row at a time, so that each row keeps its own rate
        black76_greeks_array(
            fwd[i : i + 1],
            strike[i : i + 1],
            tte[i : i + 1],
            vol[i : i + 1],
            r,
            is_call[i : i + 1],
            out[i : i + 1],
        )
        scales = _greek_scales(f, t, v, r)[1:]
        for j, (name, ref, s) in enumerate(zip(GREEK_NAMES[1:], fd, scales, strict=True)):
            tol = FD_TOL[name]
            for got in (scalar[j + 1], out[i, j + 1]):
                # absolute error relative to the greek's natural scale
                e = abs(got - ref) / s
                assert e <= tol, (name, f, k, t, v, r, c, got, ref)


# ---- 3. put-call parity ------------------------------------------------------------------


@pytest.mark.parametrize("impl", [black76_price, black76_price_py], ids=["numba", "python"])
def test_put_call_parity(inputs: Inputs, impl) -> None:
    for f, k, t, vol, r, _ in _rows(inputs):
        df = math.exp(-r * t)
        lhs = impl(f, k, t, vol, r, True) - impl(f, k, t, vol, r, False)
        rhs = df * (f - k)
        # 1e-9 relative; tiny absolute floor for F ~ K where the right side is ~0
        assert abs(lhs - rhs) <= RTOL * abs(rhs) + 1e-12 * df * (f + k), (f, k, t, vol, r)


def test_put_call_parity_arrays(inputs: Inputs) -> None:
    fwd, strike, tte, vol, _, _ = inputs
    n = fwd.shape[0]
    r = 0.045
    calls = black76_price_array(fwd, strike, tte, vol, r, np.ones(n, bool), np.empty(n))
    puts = black76_price_array(fwd, strike, tte, vol, r, np.zeros(n, bool), np.empty(n))
    df = np.exp(-r * tte)
    rhs = df * (fwd - strike)
    assert np.all(np.abs(calls - puts - rhs) <= RTOL * np.abs(rhs) + 1e-12 * df * (fwd + strike))
    g_c = black76_greeks_array(fwd, strike, tte, vol, r, np.ones(n, bool), np.empty((n, 5)))
    g_p = black76_greeks_array(fwd, strike, tte, vol, r, np.zeros(n, bool), np.empty((n, 5)))
    # delta_C - delta_P = df; gamma and vega identical for calls and puts
    assert np.allclose(g_c[:, 1] - g_p[:, 1], df, rtol=0.0, atol=1e-12)
    assert np.allclose(g_c[:, 2], g_p[:, 2], rtol=1e-12, atol=0.0)
    assert np.allclose(g_c[:, 3], g_p[:, 3], rtol=1e-12, atol=0.0)
    # theta_C - theta_P = -d/dT[df (F - K)] = r df (F - K)
    assert np.allclose(g_c[:, 4] - g_p[:, 4], r * rhs, rtol=1e-9, atol=1e-12 * float(fwd.max()))


# ---- 4. published values -----------------------------------------------------------------


@pytest.mark.parametrize(
    "impl", [black76_price, black76_price_py, black76_price_array], ids=["numba", "python", "array"]
)
def test_published_value_atm(impl) -> None:
    # Black-76, F = K = 100, T = 0.5, r = 2 %, vol = 20 %: call = 5.5811067246
    if impl is black76_price_array:
        one = np.ones(1)
        got_c = impl(100 * one, 100 * one, 0.5 * one, 0.2 * one, 0.02, one > 0, np.empty(1))[0]
        got_p = impl(100 * one, 100 * one, 0.5 * one, 0.2 * one, 0.02, one < 0, np.empty(1))[0]
    else:
        got_c = impl(100.0, 100.0, 0.5, 0.2, 0.02, True)
        got_p = impl(100.0, 100.0, 0.5, 0.2, 0.02, False)
    assert abs(got_c - 5.5811067246) <= 1e-9
    assert abs(got_p - 5.5811067246) <= 1e-9  # parity at F = K


def test_published_value_hull_futures_put() -> None:
    # Hull, Options Futures and Other Derivatives: European put on a futures, F = K = 20,
    # r = 9 %, T = 4 months, vol = 25 %: price 1.12 (quoted to 2 decimals).
    assert abs(black76_price(20.0, 20.0, 4.0 / 12.0, 0.25, 0.09, False) - 1.12) <= 5e-3


# ---- 5. inverse (coin-settled) -------------------------------------------------------------


def test_inverse_price_and_delta(inputs: Inputs) -> None:
    for f, k, t, vol, r, c in _rows(inputs):
        ref_px = _ql_price(f, k, t, vol, r, c)
        got = black76_inverse_price(f, k, t, vol, r, c)
        assert abs(got - ref_px / f) <= max(RTOL * abs(ref_px / f), PRICE_ATOL_PER_FWD)

        got_d = black76_inverse_delta(f, k, t, vol, r, c)
        # analytic from QuantLib: d(V/F)/dF = delta/F - V/F^2
        q = _ql_greeks(f, k, t, vol, r, c)
        ref_d = q[1] / f - q[0] / (f * f)
        assert abs(got_d - ref_d) <= 1e-9 / f, (f, k, t, vol, r, c)
        # central finite difference of the twin price divided by the forward
        h = 1e-4 * f * vol * math.sqrt(t)
        fd = (
            black76_price_py(f + h, k, t, vol, r, c) / (f + h)
            - black76_price_py(f - h, k, t, vol, r, c) / (f - h)
        ) / (2 * h)
        assert abs(got_d - fd) <= 1e-6 / f, (f, k, t, vol, r, c, got_d, fd)


def test_inverse_hand_worked() -> None:
    # F = K = 100, T = 0.5, r = 2 %, vol = 20 %: 5.5811067246 USD -> 0.055811067246 coin
    assert abs(black76_inverse_price(100.0, 100.0, 0.5, 0.2, 0.02, True) - 0.055811067246) <= 1e-11
    # expired ITM call, F = 50 000, K = 40 000: 10 000 USD = 0.2 coin; d/dF = 1/F - V/F^2
    assert black76_inverse_price(50_000.0, 40_000.0, 0.0, 0.5, 0.05, True) == pytest.approx(
        0.2, rel=1e-15
    )
    assert black76_inverse_delta(50_000.0, 40_000.0, 0.0, 0.5, 0.05, True) == pytest.approx(
        1.0 / 50_000.0 - 10_000.0 / 50_000.0**2, rel=1e-12
    )


# ---- 6. edge cases ---------------------------------------------------------------------------

E_005 = 0.951229424500714  # exp(-0.05)
E_006 = 0.9417645335842487  # exp(-0.06)

# (F, K, T, vol, r, is_call, price, delta): hand-worked discounted intrinsic
EDGE_CASES = [
    # expired (T = 0, T < 0): no discounting, intrinsic value
    (120.0, 100.0, 0.0, 0.5, 0.05, True, 20.0, 1.0),
    (120.0, 100.0, 0.0, 0.5, 0.05, False, 0.0, 0.0),
    (80.0, 100.0, 0.0, 0.5, 0.05, False, 20.0, -1.0),
    (80.0, 100.0, 0.0, 0.5, 0.05, True, 0.0, 0.0),
    (80.0, 100.0, -0.25, 0.5, 0.05, False, 20.0, -1.0),
    (120.0, 100.0, -1.0, 0.0, -0.02, True, 20.0, 1.0),
    (100.0, 100.0, 0.0, 0.5, 0.05, True, 0.0, 0.0),
    # zero / negative vol with T > 0: discounted intrinsic
    (120.0, 100.0, 1.0, 0.0, 0.05, True, 20.0 * E_005, E_005),
    (120.0, 100.0, 1.0, 0.0, 0.05, False, 0.0, 0.0),
    (90.0, 100.0, 2.0, 0.0, 0.03, False, 10.0 * E_006, -E_006),
    (90.0, 100.0, 2.0, -0.2, 0.03, False, 10.0 * E_006, -E_006),
    (90.0, 100.0, 2.0, -0.2, 0.03, True, 0.0, 0.0),
    (60_000.0, 50_000.0, 1.0, 0.0, 0.05, True, 10_000.0 * E_005, E_005),
]


@pytest.mark.parametrize(("f", "k", "t", "vol", "r", "c", "price", "delta"), EDGE_CASES)
def test_edge_cases_discounted_intrinsic(f, k, t, vol, r, c, price, delta) -> None:
    tol = 1e-12 * f
    assert abs(black76_price(f, k, t, vol, r, c) - price) <= tol
    assert abs(black76_price_py(f, k, t, vol, r, c) - price) <= tol
    # QuantLib agrees for the T > 0, vol = 0 cases (stdDev = 0)
    if t > 0 and vol == 0:
        assert abs(_ql_price(f, k, t, vol, r, c) - price) <= tol
    p, d, g, v, th = black76_greeks(f, k, t, vol, r, c)
    assert abs(p - price) <= tol
    assert abs(d - delta) <= 1e-15
    assert g == 0.0
    assert v == 0.0
    if t <= 0.0 or price == 0.0:
        assert th == 0.0
    assert abs(black76_inverse_price(f, k, t, vol, r, c) - price / f) <= 1e-15
    one = np.ones(1)
    arr = black76_price_array(f * one, k * one, t * one, vol * one, r, np.array([c]), np.empty(1))
    assert abs(arr[0] - price) <= tol
    garr = black76_greeks_array(
        f * one, k * one, t * one, vol * one, r, np.array([c]), np.empty((1, 5))
    )
    assert abs(garr[0, 0] - price) <= tol
    assert abs(garr[0, 1] - delta) <= 1e-15


def test_theta_zero_vol_is_r_times_discounted_intrinsic() -> None:
    # F = 120, K = 100, T = 1, r = 5 %, vol = 0: V = 20 e^{-0.05}; theta = 0.05 * V
    expected = 0.05 * 20.0 * E_005  # 0.951229424500714
    _, _, _, _, theta_small_vol = black76_greeks(120.0, 100.0, 1.0, 1e-6, 0.05, True)
    assert abs(theta_small_vol - expected) <= 1e-9  # the limit vol -> 0+
    _, _, _, _, theta = black76_greeks(120.0, 100.0, 1.0, 0.0, 0.05, True)
    assert abs(theta - expected) <= 1e-9


def test_extremes_are_finite_and_bounded() -> None:
    f, kr, t, v = np.meshgrid(
        [100.0, 200_000.0],
        [1e-4, 0.01, 0.3, 1.0, 3.0, 100.0, 1e4],
        [1.0 / (365.0 * 24.0), 1.0 / 365.0, 3.0, 30.0],
        [1e-8, 0.05, 3.0, 20.0],
        indexing="ij",
    )
    f, t, v = f.ravel(), t.ravel(), v.ravel()
    k = f * kr.ravel()
    n = f.shape[0]
    for r in (-0.02, 0.1):
        df = np.exp(-r * t)
        for c in (True, False):
            flags = np.full(n, c)
            px = black76_price_array(f, k, t, v, r, flags, np.empty(n))
            g = black76_greeks_array(f, k, t, v, r, flags, np.empty((n, 5)))
            inv = np.array([black76_inverse_delta(f[i], k[i], t[i], v[i], r, c) for i in range(n)])
            assert np.all(np.isfinite(px))
            assert np.all(np.isfinite(g))
            assert np.all(np.isfinite(inv))
            tol = 1e-12 * (f + k)
            lower = np.maximum(df * ((f - k) if c else (k - f)), 0.0)
            upper = df * (f if c else k)
            assert np.all(px >= lower - tol)
            assert np.all(px <= upper + tol)
            assert np.array_equal(px, g[:, 0])
            assert np.all(np.abs(g[:, 1]) <= df + 1e-15)
            assert np.all(g[:, 2] >= 0.0)
            assert np.all(g[:, 3] >= 0.0)
            for i in range(n):
                py = black76_price_py(f[i], k[i], t[i], v[i], r, c)
                assert abs(py - px[i]) <= 1e-12 * (f[i] + k[i])


# ---- 7. property test --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    f=st.floats(100.0, 200_000.0),
    k_ratio=st.floats(0.3, 3.0),
    t=st.floats(1.0 / 365.0, 3.0),
    vol_lo=st.floats(0.05, 3.0),
    vol_step=st.floats(0.0, 2.0),
    r=st.floats(-0.02, 0.1),
    is_call=st.booleans(),
)
def test_price_bounds_and_monotone_in_vol(f, k_ratio, t, vol_lo, vol_step, r, is_call) -> None:
    k = f * k_ratio
    df = math.exp(-r * t)
    tol = 1e-12 * (f + k)
    lo = black76_price(f, k, t, vol_lo, r, is_call)
    hi = black76_price(f, k, t, vol_lo + vol_step, r, is_call)
    intrinsic = df * max((f - k) if is_call else (k - f), 0.0)
    cap = df * (f if is_call else k)
    for p in (lo, hi):
        assert intrinsic - tol <= p <= cap + tol
    assert hi >= lo - tol
