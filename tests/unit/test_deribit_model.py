"""The packaged ``deribit`` model against hand-worked numbers (docs/architecture.md §4).

Grid layout, term-scaled vol shocks, option risk rows against a Black-76 written here with
scipy, delta-one books whose worst case, roll shock and margin can be worked out on paper,
the ETH ``pnl_offset`` in the cross pool and ``MM = 0.8 x IM``.

Market used throughout unless stated: valuation 2026-11-21 08:00 UTC, BTC index 70,000,
ETH index 3,500, rate 0. 25DEC26 is 34 days out, 6DEC26 15 days, 20JAN27 60 days,
26MAR27 125 days.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from riskgate.domain.instruments import parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.models import load_model
from riskgate.models.base import VOL_DOWN, VOL_SAME, VOL_UP
from riskgate.models.risk_table import build_table
from riskgate.report import compute_report

VT = datetime(2026, 11, 21, 8, tzinfo=UTC)
S_BTC = 70_000.0
S_ETH = 3_500.0
MODEL = load_model("deribit")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BTC_MOVES = [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16]
ETH_MOVES = [-0.18, -0.135, -0.09, -0.045, 0.0, 0.045, 0.09, 0.135, 0.18]
EXTENDED = [-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]


def _report(
    positions: dict,
    *,
    pool: str = "cross",
    marks: dict | None = None,
    ivs: dict | None = None,
    collateral: dict | None = None,
) -> dict:
    return compute_report(
        {
            "valuation_time": "2026-11-21T08:00:00Z",
            "pool": pool,
            "market": {
                "index": {"BTC": S_BTC, "ETH": S_ETH},
                "marks": marks or {},
                "ivs": ivs or {},
                "rate": 0.0,
            },
            "positions": positions,
            "collateral": collateral or {"USD": 0.0},
        },
        model="deribit",
    )


def _b76(f: float, k: float, t: float, vol: float, call: bool) -> float:
    """Undiscounted (r = 0) Black-76 in USD; intrinsic at zero vol."""
    if vol <= 0.0:
        return max(f - k, 0.0) if call else max(k - f, 0.0)
    sd = vol * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if call:
        return f * norm.cdf(d1) - k * norm.cdf(d2)
    return k * norm.cdf(-d2) - f * norm.cdf(-d1)


# --------------------------------------------------------------------------- grid


def test_grid_has_35_cells_in_documented_order() -> None:
    for coin, moves, rng in (("BTC", BTC_MOVES, 0.16), ("ETH", ETH_MOVES, 0.18)):
        g = MODEL.grid(coin)
        assert len(g.moves) == 35
        exp_moves = [m for m in moves for _ in range(3)] + EXTENDED
        exp_dirs = [VOL_UP, VOL_SAME, VOL_DOWN] * 9 + [VOL_UP] * 8
        np.testing.assert_allclose(g.moves, exp_moves, rtol=0, atol=1e-15)
        assert [int(d) for d in g.vol_dir] == exp_dirs
        # delta-one instruments: same moves in the grid, the edge move of the same sign in
        # the extended cells, never weighted
        exp_d1 = [m for m in moves for _ in range(3)] + [-rng if m < 0 else rng for m in EXTENDED]
        np.testing.assert_allclose(g.d1_moves, exp_d1, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(g.d1_weight, np.ones(35))
        # options: weight 1 in the grid, factor (1.0) x range / |move| in the extended cells
        # BTC: -66 % -> 0.16/0.66 = 0.242424..., +500 % -> 0.16/5 = 0.032
        exp_w = [1.0] * 27 + [rng / abs(m) for m in EXTENDED]
        np.testing.assert_allclose(g.opt_weight, exp_w, rtol=1e-15)
    assert MODEL.n_cells == 35
    assert MODEL.grid("BTC").opt_weight[27] == pytest.approx(0.16 / 0.66)
    assert MODEL.grid("BTC").opt_weight[34] == pytest.approx(0.032)


def test_cell_labels() -> None:
    g = MODEL.grid("BTC")
    assert g.label(0) == {"cell": 0, "price_move": -0.16, "vol_move": "up"}
    assert g.label(13)["price_move"] == pytest.approx(0.0)
    assert g.label(13)["vol_move"] == "unchanged"
    assert g.label(26) == {"cell": 26, "price_move": pytest.approx(0.16), "vol_move": "down"}
    assert g.label(34) == {"cell": 34, "price_move": 5.0, "vol_move": "up"}


# --------------------------------------------------------------------------- vol shocks


def _shocks(coin: str, vol: float, dte: float) -> tuple[float, float, float]:
    out = MODEL.scenario_vols(coin, np.array([vol]), np.array([dte]))[0]
    return out[0], out[1], out[2]  # cell 0 up, cell 1 unchanged, cell 2 down


def test_vol_shock_short_dated_btc() -> None:
    # DTE 15 < 30: p = 0.3, (30/15)^0.3 = 2^0.3 = 1.231144413
    #   up   = 0.5 x (1 + 0.5 x 1.231144413)  = 0.807786103
    #   down = 0.5 x (1 - 0.25 x 1.231144413) = 0.346106948
    up, same, down = _shocks("BTC", 0.5, 15.0)
    assert up == pytest.approx(0.5 * (1 + 0.5 * 2**0.3), rel=1e-14)
    assert up == pytest.approx(0.807786103, abs=1e-9)
    assert down == pytest.approx(0.5 * (1 - 0.25 * 2**0.3), rel=1e-14)
    assert down == pytest.approx(0.346106948, abs=1e-9)
    assert same == 0.5


def test_vol_shock_long_dated_btc_uses_p_013() -> None:
    # DTE 60 > 30: p = 0.13, (30/60)^0.13 = 0.5^0.13 = 0.913831... ;
    #   up = 0.5 x (1 + 0.5 x 0.913831) = 0.728458, down = 0.5 x (1 - 0.25 x 0.913831)
    #      = 0.385771
    up, _, down = _shocks("BTC", 0.5, 60.0)
    assert up == pytest.approx(0.5 * (1 + 0.5 * 0.5**0.13), rel=1e-14)
    assert up == pytest.approx(0.728458, abs=1e-6)
    assert down == pytest.approx(0.5 * (1 - 0.25 * 0.5**0.13), rel=1e-14)
    assert down == pytest.approx(0.385771, abs=1e-6)


def test_vol_shock_up_floor_binds_for_low_vol() -> None:
    # sigma 0.2, DTE 60: 0.2 x 1.456916 = 0.291383 < min_vol_for_shock_up 0.5 -> 0.5;
    # down: 0.2 x (1 - 0.25 x 0.913831) = 0.154308 (no floor but 0)
    up, same, down = _shocks("BTC", 0.2, 60.0)
    assert up == 0.5
    assert same == 0.2
    assert down == pytest.approx(0.2 * (1 - 0.25 * 0.5**0.13), rel=1e-14)


def test_vol_shock_eth_uses_its_own_up_range() -> None:
    # ETH vol_range_up 0.4: sigma 0.8, DTE 15: up = 0.8 x (1 + 0.4 x 2^0.3) = 1.193966
    up, _, down = _shocks("ETH", 0.8, 15.0)
    assert up == pytest.approx(0.8 * (1 + 0.4 * 2**0.3), rel=1e-14)
    assert down == pytest.approx(0.8 * (1 - 0.25 * 2**0.3), rel=1e-14)


def test_vol_shock_down_floored_at_zero_near_expiry() -> None:
    # DTE 0.01 day: (30/0.01)^0.3 = 3000^0.3 = 11.06 -> 1 - 0.25 x 11.06 < 0 -> 0
    _, _, down = _shocks("BTC", 0.5, 0.01)
    assert 1 - 0.25 * (30 / 0.01) ** 0.3 < 0
    assert down == 0.0


# --------------------------------------------------------------------------- option rows


@pytest.mark.parametrize("symbol", ["BTC_USDC-6DEC26-72000-C", "BTC_USDC-20JAN27-65000-P"])
def test_linear_option_risk_row_matches_black76(symbol: str) -> None:
    inst = parse_symbol(symbol)
    vol = 0.55
    snap = MarketSnapshot(VT, {"BTC": S_BTC, "ETH": S_ETH}, {}, {symbol: vol}, 0.0)
    table = build_table(MODEL, snap, [inst], "USD")
    row = table.risk[table.row[symbol]]
    t = inst.tte_years(VT)
    dte = t * 365.0
    p = 0.3 if dte < 30 else 0.13
    scale = (30.0 / dte) ** p
    vols = {
        VOL_UP: max(vol * (1 + 0.5 * scale), 0.5),
        VOL_SAME: vol,
        VOL_DOWN: max(vol * (1 - 0.25 * scale), 0.0),
    }
    call = inst.kind.name == "CALL"
    k = inst.strike_usd
    f = S_BTC  # no future of that expiry, rate 0: forward = index
    v0 = _b76(f, k, t, vol, call)
    cells = [(m, d, 1.0) for m in BTC_MOVES for d in (VOL_UP, VOL_SAME, VOL_DOWN)]
    cells += [(m, VOL_UP, 0.16 / abs(m)) for m in EXTENDED]
    expected = [(_b76(f * (1 + m), k, t, vols[d], call) - v0) * w for m, d, w in cells]
    np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-7)
    assert table.value(symbol) == pytest.approx(v0, rel=1e-12)


def test_inverse_option_risk_row_in_coin_pool() -> None:
    # coin value = USD value / forward in the same scenario; forward = the 25DEC26 mark
    sym = "BTC-25DEC26-70000-P"
    inst = parse_symbol(sym)
    f, vol = 70_260.0, 0.52
    snap = MarketSnapshot(VT, {"BTC": S_BTC}, {"BTC-25DEC26": f}, {sym: vol}, 0.0)
    table = build_table(MODEL, snap, [inst], "BTC")
    row = table.risk[table.row[sym]]
    t = 34.0 / 365.0
    scale = (30.0 / 34.0) ** 0.13  # 34 days > 30: p = 0.13
    vup = max(vol * (1 + 0.5 * scale), 0.5)
    vdn = vol * (1 - 0.25 * scale)
    v0 = _b76(f, 70_000.0, t, vol, False) / f
    for cell, m, v in ((0, -0.16, vup), (2, -0.16, vdn), (13, 0.0, vol), (25, 0.16, vol)):
        fs = f * (1 + m)
        assert row[cell] == pytest.approx(_b76(fs, 70_000.0, t, v, False) / fs - v0, rel=1e-9)
    # extended -66 %, vol up, weight 0.16/0.66
    fs = f * 0.34
    exp = (_b76(fs, 70_000.0, t, vup, False) / fs - v0) * 0.16 / 0.66
    assert row[27] == pytest.approx(exp, rel=1e-9)


# --------------------------------------------------------------------------- delta one


def test_long_linear_future_alone() -> None:
    # q = 2 BTC_USDC-25DEC26 at F = 70,260.
    # worst case = 0.16 x 70,260 x 2 = 22,483.2 at -16 % (first such cell: 0, vol up);
    # extended cells take the P&L at -16 % / +16 %: nothing new.
    # roll: T = 34/365 = 0.093151 -> 0.075 T = 0.006986 < 0.01 -> floor 0.01;
    #   0.01 x |2| x index 70,000 = 1,400
    # IM = 22,483.2 + 1,400 = 23,883.2; MM = 0.8 x IM = 19,106.56
    rep = _report({"BTC_USDC-25DEC26": 2}, marks={"BTC_USDC-25DEC26": 70_260.0})
    pm = rep["pools"]["USD"]["portfolio"]
    assert pm["worst_case"] == pytest.approx(22_483.2, rel=1e-12)
    assert pm["worst_scenario"]["cell"] == 0
    assert pm["worst_scenario"]["price_move"]["BTC"] == pytest.approx(-0.16)
    assert pm["add_ons"]["roll_shock"] == pytest.approx(1_400.0, rel=1e-12)
    assert pm["initial_margin"] == pytest.approx(23_883.2, rel=1e-12)
    assert pm["maintenance_margin"] == pytest.approx(19_106.56, rel=1e-12)
    assert list(rep["pools"]) == ["USD"]


def test_extended_cells_add_nothing_for_delta_one() -> None:
    syms = ["BTC_USDC-25DEC26", "BTC-25DEC26", "BTC_USDC-PERPETUAL", "BTC-PERPETUAL", "BTC_USDC"]
    snap = MarketSnapshot(
        VT, {"BTC": S_BTC}, {"BTC_USDC-25DEC26": 70_260.0, "BTC-25DEC26": 70_260.0}, {}, 0.0
    )
    for ccy in ("USD", "BTC"):
        insts = [parse_symbol(s) for s in syms]
        table = build_table(MODEL, snap, insts, ccy)
        for sym in table.row:
            row = table.risk[table.row[sym]]
            np.testing.assert_array_equal(row[27:29], [row[0], row[0]])  # -66 %, -33 %
            np.testing.assert_array_equal(row[29:], [row[24]] * 6)  # +50 % .. +500 %
            # and the extended values are within the grid's range
            assert row.min() == row[:27].min() and row.max() == row[:27].max()


def test_short_linear_future_worst_at_plus_16() -> None:
    # short 3 at F = 70,260: loss 0.16 x 70,260 x 3 = 33,724.8 at +16 % (cell 24, vol up)
    rep = _report({"BTC_USDC-25DEC26": -3}, marks={"BTC_USDC-25DEC26": 70_260.0})
    pm = rep["pools"]["USD"]["portfolio"]
    assert pm["worst_case"] == pytest.approx(33_724.8, rel=1e-12)
    assert pm["worst_scenario"]["cell"] == 24
    assert pm["worst_scenario"]["price_move"]["BTC"] == pytest.approx(0.16)
    # roll is on |q|: 0.01 x 3 x 70,000 = 2,100
    assert pm["add_ons"]["roll_shock"] == pytest.approx(2_100.0, rel=1e-12)


def test_inverse_perpetual_in_its_coin_pool() -> None:
    # long q = 5 BTC-PERPETUAL, segregated -> BTC pool, P&L in coin q (1 - 1/(1+s)):
    #   s = -0.16: 5 x (1 - 1/0.84) = 5 x (-0.190476190) = -0.952380952 BTC  (the worst)
    #   s = +0.16: 5 x (1 - 1/1.16) = +0.689655 BTC (a gain)
    # roll: perpetual T = 0 -> floor 0.01 x |5| = 0.05 BTC (coin pool: no price factor)
    # IM = 0.952380952 + 0.05 = 1.002380952 BTC; MM = 0.8019047619
    rep = _report({"BTC-PERPETUAL": 5}, pool="segregated", collateral={"BTC": 1.0})
    assert list(rep["pools"]) == ["BTC"]
    pool = rep["pools"]["BTC"]
    assert pool["currency"] == "BTC"
    pm = pool["portfolio"]
    assert pm["worst_case"] == pytest.approx(5 * (1 / 0.84 - 1), rel=1e-12)
    assert pm["worst_case"] == pytest.approx(0.952380952, abs=1e-9)
    assert pm["worst_scenario"]["price_move"]["BTC"] == pytest.approx(-0.16)
    assert pm["add_ons"]["roll_shock"] == pytest.approx(0.05, rel=1e-12)
    assert pm["initial_margin"] == pytest.approx(1.002380952, abs=1e-9)
    assert pm["maintenance_margin"] == pytest.approx(0.8 * 1.002380952, abs=1e-9)
    # equity: 1 BTC of collateral, the perpetual is marked to market (worth 0)
    assert pool["equity"] == pytest.approx(1.0, abs=1e-15)


def test_short_inverse_perpetual_in_its_coin_pool() -> None:
    # short 5: worst at +16 %: -5 x (1 - 1/1.16) = -0.689655172 BTC -> worst 0.689655172
    rep = _report({"BTC-PERPETUAL": -5}, pool="segregated", collateral={"BTC": 1.0})
    pm = rep["pools"]["BTC"]["portfolio"]
    assert pm["worst_case"] == pytest.approx(5 * (1 - 1 / 1.16), rel=1e-12)
    assert pm["worst_scenario"]["price_move"]["BTC"] == pytest.approx(0.16)


def test_inverse_perpetual_in_the_cross_pool_is_linear_in_usd() -> None:
    # coin P&L (1 - 1/(1+s)) converted at S(1+s): S s per coin -> long 1 worst 0.16 x 70,000
    # = 11,200 USD; roll 0.01 x 70,000 = 700
    rep = _report({"BTC-PERPETUAL": 1})
    pm = rep["pools"]["USD"]["portfolio"]
    assert pm["worst_case"] == pytest.approx(11_200.0, rel=1e-12)
    assert pm["add_ons"]["roll_shock"] == pytest.approx(700.0, rel=1e-12)
    assert pm["initial_margin"] == pytest.approx(11_900.0, rel=1e-12)


def test_roll_shock_long_dated_future() -> None:
    # BTC_USDC-26MAR27: T = 125/365 = 0.342466; 0.075 x T = 0.025685 > 0.01 ->
    # per unit 0.075 x 125/365 x 70,000 = 1,797.945...; |q| = 4 -> 7,191.78
    mark = 70_960.0
    rep = _report({"BTC_USDC-26MAR27": -4}, marks={"BTC_USDC-26MAR27": mark})
    pm = rep["pools"]["USD"]["portfolio"]
    assert pm["add_ons"]["roll_shock"] == pytest.approx(4 * 0.075 * 125 / 365 * S_BTC, rel=1e-12)
    assert pm["add_ons"]["roll_shock"] == pytest.approx(7_191.78, abs=0.01)
    assert pm["worst_case"] == pytest.approx(0.16 * mark * 4, rel=1e-12)


def test_roll_shock_eth_and_coin_pool() -> None:
    # ETH-20JAN27 (inverse) in the ETH pool: T = 60/365 = 0.164384; 0.05 T = 0.008219 >
    # 0.005 -> 2 x 0.008219 = 0.016438 ETH
    rep = _report(
        {"ETH-20JAN27": 2},
        pool="segregated",
        marks={"ETH-20JAN27": 3_520.0},
        collateral={"ETH": 1.0},
    )
    pm = rep["pools"]["ETH"]["portfolio"]
    assert pm["add_ons"]["roll_shock"] == pytest.approx(2 * 0.05 * 60 / 365, rel=1e-12)
    # worst: 2 x (1 - 1/0.82) = -0.43902439 ETH at -18 %
    assert pm["worst_case"] == pytest.approx(2 * (1 / 0.82 - 1), rel=1e-12)


def test_spot_and_options_carry_no_roll_shock() -> None:
    rep = _report(
        {"BTC_USDC": 1, "BTC_USDC-25DEC26-80000-C": -1},
        ivs={"BTC_USDC-25DEC26-80000-C": 0.5},
    )
    assert rep["pools"]["USD"]["portfolio"]["add_ons"]["roll_shock"] == 0.0


# --------------------------------------------------------------------------- pnl_offset


def test_eth_gain_offsets_btc_loss_by_60_percent_in_cross_pool() -> None:
    # long 1 BTC_USDC-PERPETUAL, short 10 ETH_USDC-PERPETUAL (marks = index).
    # cell k of the 9 moves: BTC P&L 70,000 x mB, ETH P&L -35,000 x mE
    #   k=0 (-16 % / -18 %): BTC -11,200; ETH +6,300 -> x 0.6 = 3,780; sum -7,420
    #   k=1: -8,400 + 0.6 x 4,725 = -5,565;  k=2: -3,710; k=3: -1,855; k=4: 0
    #   k=5: BTC +2,800 x 0 (BTC offset 0) - 1,575 = -1,575; ... k=8: 0 - 6,300 = -6,300
    #   extended cells repeat k=0 / k=8 for delta-one.
    # worst 7,420 at cell 0; with a full offset it would be 4,900, without any 11,200.
    # roll: 0.01 x 1 x 70,000 + 0.005 x 10 x 3,500 = 700 + 175 = 875
    # IM = 8,295; MM = 6,636
    rep = _report({"BTC_USDC-PERPETUAL": 1, "ETH_USDC-PERPETUAL": -10})
    pool = rep["pools"]["USD"]
    pm = pool["portfolio"]
    assert pm["worst_case"] == pytest.approx(7_420.0, rel=1e-12)
    assert pm["worst_scenario"]["cell"] == 0
    assert pm["worst_scenario"]["price_move"] == {
        "BTC": pytest.approx(-0.16),
        "ETH": pytest.approx(-0.18),
    }
    assert pm["add_ons"]["roll_shock"] == pytest.approx(875.0, rel=1e-12)
    assert pm["initial_margin"] == pytest.approx(8_295.0, rel=1e-12)
    assert pm["maintenance_margin"] == pytest.approx(6_636.0, rel=1e-12)
    # per underlying, each coin alone: BTC 11,200 (at -16 %), ETH 6,300 (at +18 %)
    und = pool["underlyings"]
    assert und["BTC"]["portfolio"]["worst_case"] == pytest.approx(11_200.0, rel=1e-12)
    assert und["ETH"]["portfolio"]["worst_case"] == pytest.approx(6_300.0, rel=1e-12)


def test_btc_gain_does_not_offset_eth_loss() -> None:
    # mirror: short 1 BTC, long 10 ETH perps: at k=0 BTC gains 11,200 x 0 = 0, ETH loses
    # 6,300 -> -6,300; at k=8 BTC loses 11,200, ETH gains 6,300 x 0.6 = 3,780 -> -7,420.
    rep = _report({"BTC_USDC-PERPETUAL": -1, "ETH_USDC-PERPETUAL": 10})
    pm = rep["pools"]["USD"]["portfolio"]
    assert pm["worst_case"] == pytest.approx(7_420.0, rel=1e-12)
    assert pm["worst_scenario"]["cell"] == 24  # +16 % / +18 %, vol up
    # BTC alone hedged by ETH only: ETH-only long 10 -> worst 6,300 at -18 %
    rep = _report({"ETH_USDC-PERPETUAL": 10})
    assert rep["pools"]["USD"]["portfolio"]["worst_case"] == pytest.approx(6_300.0, rel=1e-12)


def test_segregated_coin_pools_do_not_offset_each_other() -> None:
    # inverse perps: long 1 BTC in the BTC pool, short 10 ETH in the ETH pool.
    # BTC pool: worst 1/0.84 - 1 = 0.190476 BTC; ETH pool: worst 10 (1 - 1/1.18) =
    # 1.525424 ETH at +18 %. No cross offset between pools.
    rep = _report(
        {"BTC-PERPETUAL": 1, "ETH-PERPETUAL": -10},
        pool="segregated",
        collateral={"BTC": 1.0, "ETH": 10.0},
    )
    assert sorted(rep["pools"]) == ["BTC", "ETH"]
    btc = rep["pools"]["BTC"]["portfolio"]
    eth = rep["pools"]["ETH"]["portfolio"]
    assert btc["worst_case"] == pytest.approx(1 / 0.84 - 1, rel=1e-12)
    assert eth["worst_case"] == pytest.approx(10 * (1 - 1 / 1.18), rel=1e-12)
    assert eth["worst_scenario"]["price_move"]["ETH"] == pytest.approx(0.18)
    assert btc["add_ons"]["roll_shock"] == pytest.approx(0.01, rel=1e-12)
    assert eth["add_ons"]["roll_shock"] == pytest.approx(0.05, rel=1e-12)


def test_coin_collateral_in_cross_pool_moves_with_its_coin() -> None:
    # 2 BTC of collateral in the cross pool, nothing else: equity 140,000 USD and a
    # worst case of 2 x 70,000 x 0.16 = 22,400 at -16 % (haircut 0); no roll shock
    rep = _report({}, collateral={"BTC": 2.0, "USD": 1_000.0})
    pool = rep["pools"]["USD"]
    assert pool["equity"] == pytest.approx(141_000.0, rel=1e-12)
    assert pool["portfolio"]["worst_case"] == pytest.approx(22_400.0, rel=1e-12)
    assert pool["portfolio"]["add_ons"]["roll_shock"] == 0.0


# --------------------------------------------------------------------------- MM = 0.8 IM


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_maintenance_is_080_of_initial(name: str) -> None:
    import json

    rep = compute_report(json.loads((EXAMPLES / name).read_text()), model="deribit")
    assert rep["pools"]
    for pool in rep["pools"].values():
        pm = pool["portfolio"]
        assert pm["initial_margin"] > 0.0
        assert pm["maintenance_margin"] == pytest.approx(0.8 * pm["initial_margin"], rel=1e-12)
        # no open orders, delta shock off: IM = risk-matrix margin = worst + roll
        assert pm["initial_margin"] == pytest.approx(
            pm["worst_case"] + pm["add_ons"]["roll_shock"], rel=1e-12
        )
        assert pm["add_ons"]["delta_shock"] == 0.0
        for und in pool["underlyings"].values():
            u = und["portfolio"]
            assert u["maintenance_margin"] == pytest.approx(0.8 * u["initial_margin"], rel=1e-12)
