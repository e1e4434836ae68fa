"""riskgate's portfolio margin against a naive, independent plain-Python reference.

The reference (``tests/reference/naive_margin.py``) imports nothing from riskgate; it loops
over positions x scenario cells with its own Black-76. Its internals are first checked
against hand-worked numbers, then riskgate's ``compute_report`` is compared with it on
seeded random portfolios (BTC/ETH, inverse and linear options over several expiries,
futures, perpetuals, spot, coin and USD collateral, long and short, both pool modes, both
models, shipped and altered parameters).
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from pathlib import Path

import pytest
import QuantLib as ql

from tests.reference.naive_margin import (
    PARAMS_DIR,
    black76,
    deribit_shocked_vol,
    load_params,
    naive_margin,
    scan_risk,
)

RTOL = 1e-9
ATOL = 1e-6  # pool currency
N_RANDOM = 24  # per model
VALUATION = "2026-11-21T08:00:00Z"

# --------------------------------------------------------------------------- helpers


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(ATOL, RTOL * max(abs(a), abs(b)))


def _base(positions: dict, marks: dict | None = None, ivs: dict | None = None, **kw) -> dict:
    return {
        "valuation_time": kw.get("valuation_time", VALUATION),
        "pool": kw.get("pool", "cross"),
        "market": {
            "index": kw.get("index", {"BTC": 70000.0, "ETH": 3500.0}),
            "marks": marks or {},
            "ivs": ivs or {},
            "rate": kw.get("rate", 0.0),
        },
        "positions": positions,
        "collateral": kw.get("collateral", {"USD": 0.0}),
    }


def _pool(result: dict, ccy: str) -> dict:
    return result["pools"][ccy]


# --------------------------------------------------------------------------- the reference itself


def test_reference_black76_published_value() -> None:
    assert black76(100.0, 100.0, 0.5, 0.2, 0.02, True) == pytest.approx(5.5811067246, abs=1e-10)


def test_reference_black76_against_quantlib() -> None:
    rng = random.Random(7)
    for _ in range(200):
        f = rng.uniform(100.0, 100_000.0)
        k = f * rng.uniform(0.5, 2.0)
        t = rng.uniform(1.0 / 365.0, 2.0)
        vol = rng.uniform(0.05, 2.0)
        r = rng.uniform(-0.01, 0.08)
        for call in (True, False):
            ours = black76(f, k, t, vol, r, call)
            kind = ql.Option.Call if call else ql.Option.Put
            ref = ql.blackFormula(kind, k, f, vol * math.sqrt(t), math.exp(-r * t))
            assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9 * f)


def test_reference_deribit_long_linear_future() -> None:
    # worst cell: -16 % -> loss 0.16 F; roll shock max(0.075 T, 0.01) x S; MM = 0.8 IM
    f, s = 70350.0, 70000.0
    p = _base({"BTC_USDC-25DEC26": 1.0}, {"BTC_USDC-25DEC26": f}, collateral={"USD": 1000.0})
    pool = _pool(naive_margin(p, "deribit"), "USD")
    t = 34.0 / 365.0
    roll = max(0.075 * t, 0.01) * s
    assert pool["worst_case"] == pytest.approx(0.16 * f, rel=1e-12)
    assert pool["initial_margin"] == pytest.approx(0.16 * f + roll, rel=1e-12)
    assert pool["maintenance_margin"] == pytest.approx(0.8 * (0.16 * f + roll), rel=1e-12)
    assert pool["equity"] == 1000.0


def test_reference_deribit_inverse_future_coin_pool() -> None:
    # coin P&L 1 - 1/(1+s): worst at s = -0.16 is 1/0.84 - 1 BTC; perpetual roll 0.01 BTC
    p = _base({"BTC-PERPETUAL": 2.0}, pool="segregated", collateral={"BTC": 0.5})
    pool = _pool(naive_margin(p, "deribit"), "BTC")
    assert pool["worst_case"] == pytest.approx(2.0 * (1.0 / 0.84 - 1.0), rel=1e-12)
    assert pool["initial_margin"] == pytest.approx(2.0 * (1.0 / 0.84 - 1.0) + 2.0 * 0.01)
    assert pool["equity"] == 0.5


def test_reference_deribit_cross_coin_offset() -> None:
    # long 1 BTC linear future, short 1 ETH linear future, same cell index = same step:
    # cell 0: BTC -0.16 F_b, ETH +0.18 F_e scaled by pnl_offset 0.6; cell 24: ETH -0.18 F_e
    fb, fe = 70350.0, 3510.0
    p = _base(
        {"BTC_USDC-25DEC26": 1.0, "ETH_USDC-25DEC26": -1.0},
        {"BTC_USDC-25DEC26": fb, "ETH_USDC-25DEC26": fe},
    )
    pool = _pool(naive_margin(p, "deribit"), "USD")
    assert pool["worst_case"] == pytest.approx(max(0.16 * fb - 0.6 * 0.18 * fe, 0.18 * fe))


def test_reference_deribit_vol_shocks() -> None:
    params = load_params("deribit")
    cp = params["underlyings"]["BTC"]
    t30 = 30.0 / 365.0
    assert deribit_shocked_vol(params, cp, 0.6, t30, "up") == pytest.approx(0.9)
    assert deribit_shocked_vol(params, cp, 0.2, t30, "up") == pytest.approx(0.5)  # floor
    assert deribit_shocked_vol(params, cp, 0.6, t30, "down") == pytest.approx(0.45)
    t60 = 60.0 / 365.0
    assert deribit_shocked_vol(params, cp, 0.6, t60, "up") == pytest.approx(
        0.6 * (1 + 0.5 * 0.5**0.13)
    )
    t10 = 10.0 / 365.0
    assert deribit_shocked_vol(params, cp, 0.6, t10, "down") == pytest.approx(
        0.6 * (1 - 0.25 * 3.0**0.3)
    )


def test_reference_span_scan_of_issue_arrays() -> None:
    fut = [0, 0, 3330, 3330, -3330, -3330, 6670, 6670, -6670, -6670]
    fut += [10000, 10000, -10000, -10000, 7000, -7000]
    call = [460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430]
    call += [8060, 7640, -3380, -3990, 3130, -1500]
    assert scan_risk([float(x) for x in call]) == 3990.0
    assert scan_risk([float(f - c) for f, c in zip(fut, call, strict=True)]) == 6620.0


def test_reference_span_long_future() -> None:
    f = 70350.0
    p = _base({"BTC_USDC-25DEC26": 1.0}, {"BTC_USDC-25DEC26": f})
    pool = _pool(naive_margin(p, "span"), "USD")
    assert pool["worst_case"] == pytest.approx(0.12 * f, rel=1e-12)
    assert pool["maintenance_margin"] == pytest.approx(0.12 * f, rel=1e-12)
    assert pool["initial_margin"] == pytest.approx(1.1 * 0.12 * f, rel=1e-12)


def test_reference_span_calendar_spread() -> None:
    # short 27NOV26 (tier 0), long 25DEC26 (34 days, tier 1), linear: futures equivalents
    # -1 and +1 whatever the marks; scan = PSR |F1 - F0|; intra = 1 % x 1 x S = 700
    f0, f1 = 70100.0, 70400.0
    p = _base(
        {"BTC_USDC-27NOV26": -1.0, "BTC_USDC-25DEC26": 1.0},
        {"BTC_USDC-27NOV26": f0, "BTC_USDC-25DEC26": f1},
    )
    pool = _pool(naive_margin(p, "span"), "USD")
    coin = pool["details"]["per_coin"]["BTC"]
    assert coin["scan"] == pytest.approx(0.12 * (f1 - f0))
    assert coin["tier_deltas"] == [-1.0, 1.0, 0.0]
    assert coin["intra_spread"] == pytest.approx(0.01 * 70000.0)
    assert pool["maintenance_margin"] == pytest.approx(0.12 * (f1 - f0) + 0.01 * 70000.0)


def test_reference_span_short_option_minimum() -> None:
    # a far OTM short call: scan ~ 0, so the requirement is SOM = 0.005 x S x 1
    p = _base({"BTC_USDC-27NOV26-200000-C": -1.0}, ivs={"BTC_USDC-27NOV26-200000-C": 0.4})
    pool = _pool(naive_margin(p, "span"), "USD")
    assert pool["worst_case"] < 1e-6
    assert pool["maintenance_margin"] == pytest.approx(0.005 * 70000.0)


def test_reference_span_coin_pool_collateral_has_no_delta() -> None:
    # BTC pool: 1 BTC collateral never moves in coin, so it neither hedges the short
    # inverse future (tier 1) in the scan nor forms a calendar spread with it (no delta)
    p = _base(
        {"BTC-25DEC26": -1.0},
        {"BTC-25DEC26": 70300.0},
        pool="segregated",
        collateral={"BTC": 1.0},
    )
    pool = _pool(naive_margin(p, "span"), "BTC")
    coin = pool["details"]["per_coin"]["BTC"]
    assert coin["tier_deltas"] == [0.0, -1.0, 0.0]
    assert coin["intra_spread"] == 0.0
    # short inverse future loses 1 - 1/(1+s): +12 % beats +24 % x 0.35
    assert pool["maintenance_margin"] == pytest.approx(1.0 - 1.0 / 1.12, rel=1e-12)
    assert pool["equity"] == 1.0


def test_reference_cross_collateral_hedged_by_future() -> None:
    # 1 BTC collateral (moves like spot) against a short perpetual marked at the index
    p = _base({"BTC_USDC-PERPETUAL": -1.0}, collateral={"BTC": 1.0, "USD": 10.0})
    pool = _pool(naive_margin(p, "deribit"), "USD")
    assert pool["worst_case"] == pytest.approx(0.0, abs=1e-9)
    assert pool["initial_margin"] == pytest.approx(0.01 * 70000.0)
    assert pool["equity"] == pytest.approx(70010.0)


def test_reference_inverse_option_pools_consistent() -> None:
    # USD-pool P&L of an inverse option = coin value converted at S(1+m) minus coin value now
    # at S = (coin-pool P&L) x S(1+m) + (coin value now) x S m
    sym = "BTC-25DEC26-75000-C"
    p = _base({sym: -1.0}, ivs={sym: 0.55})
    cross = _pool(naive_margin(p, "deribit"), "USD")
    seg = _pool(naive_margin(dict(p, pool="segregated"), "deribit"), "BTC")
    coin_vec = seg["details"]["per_coin"]["BTC"]["vector"]
    usd_vec = cross["details"]["per_coin"]["BTC"]["vector"]
    moves = [-0.16 + 0.04 * (c // 3) for c in range(27)]
    for c in range(27):
        want = coin_vec[c] * 70000.0 * (1 + moves[c]) + seg["equity"] * 70000.0 * moves[c]
        assert usd_vec[c] == pytest.approx(want, rel=1e-12, abs=1e-9)
    assert cross["equity"] == pytest.approx(seg["equity"] * 70000.0, rel=1e-12)


# --------------------------------------------------------------------------- random portfolios

EXPIRIES = ["22NOV26", "27NOV26", "25DEC26", "29JAN27", "26MAR27", "25JUN27", "31DEC27"]
VALUATIONS = ["2026-11-21T08:00:00Z", "2026-11-21T14:30:00Z", "2026-11-20T23:59:59Z"]
STRIKE_STEP = {"BTC": 1000.0, "ETH": 50.0}
KINDS = ["inv_opt", "inv_opt", "lin_opt", "lin_opt", "inv_fut", "lin_fut"]
KINDS += ["inv_perp", "lin_perp", "spot"]


def random_portfolio(seed: int, pool: str) -> dict:
    rng = random.Random(seed)
    index = {
        "BTC": round(70000.0 * rng.uniform(0.85, 1.15), 2),
        "ETH": round(3500.0 * rng.uniform(0.85, 1.15), 2),
    }
    expiries = rng.sample(EXPIRIES, rng.randint(2, 4))
    marks: dict[str, float] = {}
    for coin, s in index.items():
        for prefix in (coin, f"{coin}_USDC"):
            for e in expiries:
                if rng.random() < 0.5:
                    marks[f"{prefix}-{e}"] = round(s * (1.0 + rng.uniform(-0.01, 0.04)), 2)
            if rng.random() < 0.5:
                marks[f"{prefix}-PERPETUAL"] = round(s * (1.0 + rng.uniform(-0.002, 0.002)), 2)
    positions: dict[str, float] = {}
    ivs: dict[str, float] = {}
    for _ in range(rng.randint(3, 10)):
        coin = rng.choice(["BTC", "BTC", "ETH"])
        kind = rng.choice(KINDS)
        e = rng.choice(expiries)
        s = index[coin]
        prefix = f"{coin}_USDC" if kind.startswith("lin") or kind == "spot" else coin
        if kind.endswith("opt"):
            step = STRIKE_STEP[coin]
            strike = max(step, round(s * rng.uniform(0.6, 1.6) / step) * step)
            sym = f"{prefix}-{e}-{int(strike)}-{rng.choice('CP')}"
            ivs[sym] = round(rng.uniform(0.3, 1.2), 4)
        elif kind.endswith("fut"):
            sym = f"{prefix}-{e}"
            marks.setdefault(sym, round(s * (1.0 + rng.uniform(-0.01, 0.04)), 2))
        elif kind.endswith("perp"):
            sym = f"{prefix}-PERPETUAL"
        else:
            sym = prefix
        positions[sym] = rng.choice([-1.0, 1.0]) * round(rng.uniform(0.1, 5.0), 1)
    collateral: dict[str, float] = {"USD": float(rng.randint(0, 50_000))}
    if rng.random() < 0.7:
        collateral["BTC"] = round(rng.uniform(0.0, 3.0), 3)
    if rng.random() < 0.5:
        collateral["ETH"] = round(rng.uniform(0.0, 30.0), 3)
    if rng.random() < 0.3:
        collateral["USDC"] = float(rng.randint(0, 20_000))
    return {
        "valuation_time": rng.choice(VALUATIONS),
        "pool": pool,
        "market": {
            "index": index,
            "marks": marks,
            "ivs": ivs,
            "rate": rng.choice([0.0, 0.0, 0.03]),
        },
        "positions": positions,
        "collateral": collateral,
    }


def _compare(portfolio: dict, model: str, params_path: Path | None = None) -> None:
    from riskgate.report import compute_report

    params = None
    if params_path is not None:
        with open(params_path, "rb") as fh:
            params = tomllib.load(fh)
    ref = naive_margin(portfolio, model, params=params)["pools"]
    got = compute_report(portfolio, model=model, params_path=params_path)["pools"]
    problems = []
    for ccy in sorted(set(ref) | set(got)):
        want = ref.get(ccy)
        if want is None:  # a pool riskgate shows that the reference does not: must be empty
            have = got[ccy]
            for v in (have["equity"], have["portfolio"]["initial_margin"]):
                if not _close(v, 0.0):
                    problems.append(f"{ccy}: pool missing from reference, riskgate {v}")
            continue
        if ccy not in got:
            for key in ("equity", "initial_margin"):
                if not _close(want[key], 0.0):
                    problems.append(f"{ccy}: pool missing from riskgate, reference {want[key]}")
            continue
        have = got[ccy]
        pairs = {
            "equity": have["equity"],
            "initial_margin": have["portfolio"]["initial_margin"],
            "maintenance_margin": have["portfolio"]["maintenance_margin"],
            "worst_case": have["portfolio"]["worst_case"],
        }
        for key, value in pairs.items():
            if not _close(value, want[key]):
                problems.append(f"{ccy}.{key}: riskgate {value!r} reference {want[key]!r}")
        if model == "span":
            problems += _compare_span_coins(ccy, have, want)
    assert not problems, "\n".join(problems) + "\n" + json.dumps(portfolio)


SPAN_ADD_ONS = ("intra_spread", "delivery", "inter_credit", "short_option_minimum", "risk")
SPAN_SPLIT = ("net_delta", "time_risk", "volatility_risk", "price_risk", "weighted_price_risk")


def _compare_span_coins(ccy: str, have: dict, want: dict) -> list[str]:
    """Per underlying: every SPAN add-on and each step of the weighted price risk."""
    problems = []
    ref_coins = want["details"]["per_coin"]
    for coin, ref in ref_coins.items():
        got = have["underlyings"].get(coin)
        if got is None:  # riskgate leaves out a coin with nothing at risk
            if not _close(ref["risk"], 0.0):
                problems.append(f"{ccy}.{coin}: missing from riskgate, risk {ref['risk']}")
            continue
        pm = got["portfolio"]
        pairs = [(k, pm["add_ons"][k], ref[k]) for k in SPAN_ADD_ONS]
        pairs += [(k, pm[k], ref[k]) for k in SPAN_SPLIT]
        pairs.append(("worst_case", pm["worst_case"], ref["scan"]))
        for key, value, expected in pairs:
            if not _close(value, expected):
                problems.append(f"{ccy}.{coin}.{key}: riskgate {value!r} reference {expected!r}")
    return problems


@pytest.mark.parametrize("model", ["deribit", "span"])
@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_random_portfolio_matches_reference(model: str, seed: int) -> None:
    pool = "cross" if seed % 2 == 0 else "segregated"
    _compare(random_portfolio(1000 * seed + 17, pool), model)


# --------------------------------------------------------------------------- altered parameters


def _override(text: str, changes: dict[tuple[str, str], str]) -> str:
    """Replace ``key = ...`` lines of a TOML text; section "" is the top level."""
    out = []
    section = ""
    done = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            section = stripped.strip("[]")
        elif stripped.startswith("[["):
            section = "array:" + stripped.strip("[]")
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
        if key is not None and (section, key) in changes and (section, key) not in done:
            line = f"{key} = {changes[(section, key)]}"
            done.add((section, key))
        out.append(line)
    missing = set(changes) - done
    assert not missing, missing
    return "\n".join(out) + "\n"


DERIBIT_CHANGES = {
    ("underlyings.BTC", "pnl_offset"): "0.3",
    ("underlyings.BTC", "delta_shock_rate"): "0.01",
    ("underlyings.ETH", "delta_shock_rate"): "0.02",
    ("underlyings.BTC", "collateral_haircut"): "0.1",
    ("underlyings.ETH", "collateral_haircut"): "0.05",
    ("underlyings.BTC", "extended_table_factor"): "0.7",
}
# the dampener is in pool currency; only meaningful in the USD pool
DERIBIT_DAMPENER = {("underlyings.BTC", "extended_dampener"): "300.0"}
SPAN_CHANGES = {
    ("", "extreme_multiple"): "3.0",
    ("", "cover_fraction"): "0.3",
    ("", "look_ahead_days"): "2.0",
    ("", "delivery_window_days"): "7.0",
    ("underlyings.BTC", "delivery_rate"): "0.02",
    ("underlyings.ETH", "delivery_rate"): "0.03",
    ("underlyings.BTC", "collateral_haircut"): "0.1",
    ("underlyings.ETH", "short_option_minimum"): "0.05",
}


# inter-commodity credit switched on (appended to the file: an array of tables)
SPAN_CREDIT = """
[[inter_credit]]
legs = ["BTC", "ETH"]
delta_ratio = [1.0, 15.0]
rate = 0.5
"""


@pytest.mark.parametrize(
    ("model", "changes", "pools", "extra"),
    [
        ("deribit", DERIBIT_CHANGES, ("cross", "segregated"), ""),
        ("deribit", {**DERIBIT_CHANGES, **DERIBIT_DAMPENER}, ("cross",), ""),
        ("span", SPAN_CHANGES, ("cross", "segregated"), ""),
        ("span", SPAN_CHANGES, ("cross",), SPAN_CREDIT),
    ],
    ids=["deribit-options", "deribit-dampener", "span-options", "span-credit"],
)
@pytest.mark.parametrize("seed", range(6))
def test_random_portfolio_altered_params(
    tmp_path: Path, model: str, changes: dict, pools: tuple, extra: str, seed: int
) -> None:
    path = tmp_path / f"{model}.toml"
    path.write_text(_override((PARAMS_DIR / f"{model}.toml").read_text(), changes) + extra)
    pool = pools[seed % len(pools)]
    size = 8.0 if DERIBIT_DAMPENER.keys() <= changes.keys() else 1.0
    _compare(_with_near_wings(random_portfolio(7919 * seed + 3, pool), size), model, path)


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_random_portfolio_with_credit_matches_reference(tmp_path: Path, seed: int) -> None:
    # shipped span parameters with the BTC/ETH credit on: about 4 books in 10 have
    # opposite net deltas and take it, most of them at the PSR x price cap
    path = tmp_path / "span.toml"
    path.write_text((PARAMS_DIR / "span.toml").read_text() + SPAN_CREDIT)
    pool = "cross" if seed % 2 == 0 else "segregated"
    _compare(random_portfolio(4099 * seed + 11, pool), "span", path)


def _with_near_wings(portfolio: dict, size: float = 1.0) -> dict:
    """Add legs that make the altered add-ons bite: short far-OTM wings (worst cells in the
    extended table, so the dampener matters; short option minimum) and a 27NOV26 future
    (inside the 7-day delivery window; its mark also serves the inverse option's forward
    when no inverse 27NOV26 future is marked)."""
    p = json.loads(json.dumps(portfolio))
    market, positions = p["market"], p["positions"]
    s_btc, s_eth = market["index"]["BTC"], market["index"]["ETH"]
    call = f"BTC-27NOV26-{int(round(1.3 * s_btc, -3))}-C"
    put = f"ETH_USDC-27NOV26-{int(round(0.7 * s_eth / 50.0) * 50)}-P"
    market["ivs"][call] = 0.9
    market["ivs"][put] = 1.1
    market["marks"].setdefault("BTC_USDC-27NOV26", round(1.002 * s_btc, 2))
    positions[call] = -1.5 * size
    positions[put] = -4.0 * size
    positions["BTC_USDC-27NOV26"] = 0.8
    return p
