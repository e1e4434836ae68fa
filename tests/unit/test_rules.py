"""Rules-based margin (docs/architecture.md §5): hand-worked examples.

Every expected number is worked out by hand in the comments (S = BTC index = 10,000 USD
unless stated). Option marks are given through ``option_marks_usd`` so the premia are round
numbers; one test prices from the snapshot with an implied vol found by root-finding.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy.optimize import brentq

from riskgate.domain.instruments import Instrument, Kind, Settlement, parse_symbol
from riskgate.domain.market import MarketSnapshot
from riskgate.kernels.black76 import black76_price_py
from riskgate.models.rules import (
    RulesParamsError,
    load_rules_params,
    per_leg_margin,
    strategy_margin,
)

VALUATION_TIME = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
NEAR = "25DEC26"
FAR = "26MAR27"
PARAMS = load_rules_params()
SNAP = MarketSnapshot(
    valuation_time=VALUATION_TIME,
    index_usd={"BTC": 10_000.0, "ETH": 500.0},
    marks_usd={"BTC-PERPETUAL": 10_000.0, "BTC-25DEC26": 10_100.0, "ETH-PERPETUAL": 500.0},
)


def pos(symbol: str, quantity: float) -> tuple[Instrument, float]:
    return parse_symbol(symbol), quantity


def per_leg(positions, marks=None, pool="USD", snapshot=SNAP):
    return per_leg_margin(positions, snapshot, pool, PARAMS, option_marks_usd=marks)


def strategy(positions, marks=None, pool="USD", snapshot=SNAP):
    return strategy_margin(positions, snapshot, pool, PARAMS, option_marks_usd=marks)


def names(result) -> list[str]:
    return sorted(s.name for s in result.strategies)


# ---- per-leg standard (Deribit standard margin) ---------------------------------------------


def test_deribit_short_call_hand_worked():
    # K=9,000 call, S=10,000, mark 0.025 BTC = 250 USD. OTM = max(9,000 − 10,000, 0) = 0
    # IM = max(0.15 − 0, 0.10)·10,000 + 250 = 1,750; MM = 0.075·10,000 + 250 = 1,000.
    # (A mark of 250 is below the call's intrinsic 1,000: Deribit's published example is not
    # arbitrage-free, hence the mark override.)
    sym = f"BTC-{NEAR}-9000-C"
    res = per_leg([pos(sym, -1.0)], {sym: 250.0})
    assert res.initial_margin == pytest.approx(1_750.0, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(1_000.0, rel=1e-12)
    assert res.legs[0].symbol == sym and res.legs[0].quantity == -1.0


def test_deribit_short_put_hand_worked():
    # K=9,000 put, S=10,000, mark 250. OTM = 1,000 → max(0.15 − 0.10, 0.10) = 0.10
    # IM = 0.10·10,000 + 250 = 1,250; MM = max(0.075, 0.075·0.025)·10,000 + 250 = 1,000.
    sym = f"BTC-{NEAR}-9000-P"
    res = per_leg([pos(sym, -1.0)], {sym: 250.0})
    assert res.initial_margin == pytest.approx(1_250.0, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(1_000.0, rel=1e-12)


def test_short_put_priced_from_snapshot_with_root_found_vol():
    # Same put priced by Black-76 from the snapshot: the vol is chosen (by root-finding on an
    # independent Black-76 twin, forward = index at rate 0: no FAR future in the snapshot)
    # so that the mark is 250 USD.
    sym = f"BTC-{FAR}-9000-P"
    inst = parse_symbol(sym)
    tte_years = inst.tte_years(VALUATION_TIME)
    vol = brentq(
        lambda v: black76_price_py(10_000.0, 9_000.0, tte_years, v, 0.0, False) - 250.0,
        0.05,
        5.0,
        xtol=1e-14,
    )
    snap = SNAP.with_updates(ivs={sym: vol})
    res = per_leg_margin([(inst, -2.0)], snap, "USD", PARAMS)
    assert res.initial_margin == pytest.approx(2 * 1_250.0, rel=1e-9)
    assert res.maintenance_margin == pytest.approx(2 * 1_000.0, rel=1e-9)


def test_short_put_initial_margin_floored_at_maintenance():
    # Deep ITM put K=40,000, mark 30,000 (3 BTC). IM = 0.15·10,000 + 30,000 = 31,500;
    # MM = max(0.075, 0.075·3)·10,000 + 30,000 = 2,250 + 30,000 = 32,250 → IM = 32,250.
    sym = f"BTC-{NEAR}-40000-P"
    res = per_leg([pos(sym, -1.0)], {sym: 30_000.0})
    assert res.maintenance_margin == pytest.approx(32_250.0, rel=1e-12)
    assert res.initial_margin == pytest.approx(32_250.0, rel=1e-12)


def test_short_call_far_out_of_the_money_uses_minimum_rate():
    # K=13,000 call, mark 40: OTM = 3,000 → max(0.15 − 0.30, 0.10) = 0.10 → IM = 1,040.
    sym = f"BTC-{NEAR}-13000-C"
    res = per_leg([pos(sym, -1.0)], {sym: 40.0})
    assert res.initial_margin == pytest.approx(1_040.0, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(790.0, rel=1e-12)  # 750 + 40


def test_long_option_pays_its_premium():
    # 2 long calls at 250 → IM = MM = 500.
    sym = f"BTC-{NEAR}-9000-C"
    res = per_leg([pos(sym, 2.0)], {sym: 250.0})
    assert res.initial_margin == pytest.approx(500.0, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(500.0, rel=1e-12)


@pytest.mark.parametrize("quantity", [25.0, -25.0])
def test_btc_futures_25_btc_rate_is_2_125_percent(quantity):
    # 25 BTC: IM rate 2 % + 0.005 %·25 = 2.125 %; MM rate 1 % + 0.125 % = 1.125 %.
    # Notional 25 × 10,000 = 250,000 → IM 5,312.5, MM 2,812.5.
    res = per_leg([pos("BTC-PERPETUAL", quantity)])
    assert res.initial_margin == pytest.approx(5_312.5, rel=1e-12)
    assert res.initial_margin / 250_000.0 == pytest.approx(0.02125, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(2_812.5, rel=1e-12)


def test_dated_future_uses_its_own_mark():
    # 4 BTC of BTC-25DEC26 at 10,100: rate 2 % + 0.02 % = 2.02 % of 40,400 = 816.08.
    res = per_leg([pos(f"BTC-{NEAR}", 4.0)])
    assert res.initial_margin == pytest.approx(816.08, rel=1e-12)


def test_eth_futures_size_term():
    # 100 ETH at 500: IM rate 2 % + 0.0004 %·100 = 2.04 % of 50,000 = 1,020; MM 1.04 % = 520.
    res = per_leg([pos("ETH-PERPETUAL", -100.0)])
    assert res.initial_margin == pytest.approx(1_020.0, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(520.0, rel=1e-12)


def test_spot_long_is_free_short_is_charged_like_a_perpetual():
    # long 3 BTC spot: 0. Short 3 BTC: rate 2 % + 0.015 % = 2.015 % of 30,000 = 604.5;
    # MM 1.015 % of 30,000 = 304.5.
    assert per_leg([pos("BTC_USDC", 3.0)]).initial_margin == 0.0
    short = per_leg([pos("BTC_USDC", -3.0)])
    assert short.initial_margin == pytest.approx(604.5, rel=1e-12)
    assert short.maintenance_margin == pytest.approx(304.5, rel=1e-12)


def test_multiplier_scales_size_in_coin():
    # 2 contracts × multiplier 10 = 20 BTC perpetual: rate 2 % + 0.1 % = 2.1 % of 200,000 = 4,200.
    inst = Instrument("BTC-PERPETUAL", Kind.PERPETUAL, "BTC", Settlement.INVERSE, multiplier=10.0)
    res = per_leg_margin([(inst, 2.0)], SNAP, "USD", PARAMS)
    assert res.initial_margin == pytest.approx(4_200.0, rel=1e-12)
    assert res.legs[0].quantity == 2.0


def test_portfolio_per_leg_is_sum_of_single_legs():
    marks = {f"BTC-{NEAR}-9000-C": 1_200.0, f"BTC-{NEAR}-11000-P": 1_300.0}
    positions = [
        pos(f"BTC-{NEAR}-9000-C", -1.5),
        pos(f"BTC-{NEAR}-11000-P", 0.7),
        pos("BTC-PERPETUAL", 3.0),
        pos("ETH-PERPETUAL", -40.0),
        pos("BTC_USDC", -0.5),
    ]
    whole = per_leg(positions, marks)
    singles = [per_leg([p], marks) for p in positions]
    assert whole.initial_margin == pytest.approx(sum(s.initial_margin for s in singles), rel=1e-12)
    assert whole.maintenance_margin == pytest.approx(
        sum(s.maintenance_margin for s in singles), rel=1e-12
    )
    assert [leg.symbol for leg in whole.legs] == [p[0].symbol for p in positions]
    # hand check of the total: short call 1.5·(1,500 + 1,200) = 4,050; long put 0.7·1,300 =
    # 910; perp (2 % + 0.015 %)·30,000 = 604.5; ETH perp (2 % + 0.016 %)·20,000 = 403.2;
    # short spot (2 % + 0.0025 %)·5,000 = 100.125 → 6,067.825
    assert whole.initial_margin == pytest.approx(6_067.825, rel=1e-12)


def test_same_symbol_is_netted():
    # +30 and −5 BTC-PERPETUAL is one 25 BTC position (rate 2.125 %), not two legs.
    res = per_leg([pos("BTC-PERPETUAL", 30.0), pos("BTC-PERPETUAL", -5.0)])
    assert res.initial_margin == pytest.approx(5_312.5, rel=1e-12)
    assert len(res.legs) == 1


def test_coin_pool_is_usd_divided_by_index():
    # short call 1,750 USD → 0.175 BTC in a BTC pool; ETH perpetual 1,020 USD → 2.04 ETH.
    sym = f"BTC-{NEAR}-9000-C"
    res = per_leg([pos(sym, -1.0)], {sym: 250.0}, pool="BTC")
    assert res.initial_margin == pytest.approx(0.175, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(0.1, rel=1e-12)
    eth = per_leg([pos("ETH-PERPETUAL", -100.0)], pool="ETH")
    assert eth.initial_margin == pytest.approx(2.04, rel=1e-12)
    strat = strategy([pos(sym, -1.0)], {sym: 250.0}, pool="BTC")
    assert strat.initial_margin == pytest.approx(0.175, rel=1e-12)  # capped at per-leg


def test_usdc_pool_is_usd():
    res = per_leg([pos("BTC-PERPETUAL", 25.0)], pool="USDC")
    assert res.initial_margin == pytest.approx(5_312.5, rel=1e-12)


def test_bad_quantity_is_rejected():
    with pytest.raises(ValueError, match="BTC-PERPETUAL"):
        per_leg([pos("BTC-PERPETUAL", math.nan)])


def test_missing_implied_vol_names_the_field():
    with pytest.raises(ValueError, match=rf"market.ivs.BTC-{NEAR}-9000-C"):
        per_leg([pos(f"BTC-{NEAR}-9000-C", -1.0)])


# ---- strategy-based --------------------------------------------------------------------------

# Premia used below (USD per BTC), expiry NEAR unless stated:
#   9000P 250, 8500P 100, 11000C 200, 12000C 80, 10000C 400 / 500, 10000P 400, 9000C 1,200
# Naked strategy requirement = premium + max(0.20·10,000 − OTM, 0.10·10,000).

P9000, P8500 = f"BTC-{NEAR}-9000-P", f"BTC-{NEAR}-8500-P"
C11000, C12000 = f"BTC-{NEAR}-11000-C", f"BTC-{NEAR}-12000-C"
MARKS = {P9000: 250.0, P8500: 100.0, C11000: 200.0, C12000: 80.0}


def test_vertical_put_credit_spread_costs_width_minus_credit():
    # short 9000P (250), long 8500P (100): width 500, credit 150 → 350.
    # per-leg: short put 0.10·10,000 + 250 = 1,250, long put 100 → 1,350.
    res = strategy([pos(P9000, -1.0), pos(P8500, 1.0)], MARKS)
    assert res.initial_margin == pytest.approx(350.0, rel=1e-9)
    assert names(res) == ["vertical_spread"]
    assert not res.capped_at_per_leg
    (spread,) = res.strategies
    assert dict(spread.legs) == pytest.approx({P9000: -1.0, P8500: 1.0})
    assert spread.units == pytest.approx(1.0)
    # MM = IM × per-leg MM / per-leg IM = 350 × (1,000 + 100) / 1,350
    assert res.maintenance_margin == pytest.approx(350.0 * 1_100.0 / 1_350.0, rel=1e-9)


def test_vertical_call_credit_and_debit_spreads():
    # credit: short 11000C (200), long 12000C (80): width 1,000 − credit 120 = 880
    credit = strategy([pos(C11000, -1.0), pos(C12000, 1.0)], MARKS)
    assert credit.initial_margin == pytest.approx(880.0, rel=1e-9)
    # debit: long 11000C (200), short 12000C (80): the debit 120
    debit = strategy([pos(C11000, 1.0), pos(C12000, -1.0)], MARKS)
    assert debit.initial_margin == pytest.approx(120.0, rel=1e-9)
    assert names(debit) == ["vertical_spread"]


def test_iron_condor_is_max_width_minus_net_credit():
    # put spread 9000/8500 (width 500) + call spread 11000/12000 (width 1,000); net credit
    # 250 − 100 + 200 − 80 = 270 → 1,000 − 270 = 730 < 350 + 880 = 1,230 (two verticals).
    positions = [pos(P9000, -1.0), pos(P8500, 1.0), pos(C11000, -1.0), pos(C12000, 1.0)]
    res = strategy(positions, MARKS)
    assert res.initial_margin == pytest.approx(730.0, rel=1e-9)
    assert res.initial_margin < 350.0 + 880.0
    assert names(res) == ["iron_condor"]
    assert dict(res.strategies[0].legs) == pytest.approx(
        {P9000: -1.0, P8500: 1.0, C11000: -1.0, C12000: 1.0}
    )
    # per-leg: 1,250 + 100 + (0.10·10,000 + 200) + 80 = 2,630
    assert per_leg(positions, MARKS).initial_margin == pytest.approx(2_630.0, rel=1e-12)


def test_iron_condor_scales_with_fractional_quantities():
    positions = [pos(P9000, -0.4), pos(P8500, 0.4), pos(C11000, -0.4), pos(C12000, 0.4)]
    assert strategy(positions, MARKS).initial_margin == pytest.approx(0.4 * 730.0, rel=1e-9)


def test_covered_call_against_spot_costs_the_premium():
    # long 1 BTC spot + short 11000C (200) → 200; per-leg 0 + 1,200.
    res = strategy([pos("BTC_USDC", 1.0), pos(C11000, -1.0)], MARKS)
    assert res.initial_margin == pytest.approx(200.0, rel=1e-9)
    assert names(res) == ["covered_call"]


def test_covered_call_against_perpetual_adds_the_future_margin():
    # perpetual 1 BTC IM = (2 % + 0.005 %)·10,000 = 200.5 → 200 + 200.5 = 400.5
    res = strategy([pos("BTC-PERPETUAL", 1.0), pos(C11000, -1.0)], MARKS)
    assert res.initial_margin == pytest.approx(400.5, rel=1e-9)
    assert names(res) == ["covered_call"]


def test_covered_call_half_covered():
    # 0.5 BTC spot against 1 short 11000C: 0.5 covered (0.5·200 = 100) + 0.5 naked
    # (0.5·(200 + max(2,000 − 1,000, 1,000)) = 600) → 700 < per-leg 1,200.
    res = strategy([pos("BTC_USDC", 0.5), pos(C11000, -1.0)], MARKS)
    assert res.initial_margin == pytest.approx(700.0, rel=1e-9)
    assert names(res) == ["covered_call", "naked_short"]


def test_future_expiring_before_the_call_does_not_cover_it():
    # BTC-25DEC26 expires before the FAR call: no pairing. Future 1 BTC at 10,100:
    # (2 % + 0.005 %)·10,100 = 202.505; naked 11000C (FAR, 300): 300 + 1,000 = 1,300;
    # LP 1,502.505 vs per-leg 202.505 + 1,000 + 300 = 1,502.505: equal, not capped.
    far_call = f"BTC-{FAR}-11000-C"
    res = strategy([pos(f"BTC-{NEAR}", 1.0), pos(far_call, -1.0)], {far_call: 300.0})
    assert names(res) == ["future", "naked_short"]
    assert res.initial_margin == pytest.approx(1_502.505, rel=1e-9)


def test_covered_put_against_short_perpetual():
    # short perp 1 BTC (200.5) + short 9000P (250) → 450.5; per-leg 200.5 + 1,250 = 1,450.5.
    res = strategy([pos("BTC-PERPETUAL", -1.0), pos(P9000, -1.0)], MARKS)
    assert res.initial_margin == pytest.approx(450.5, rel=1e-9)
    assert names(res) == ["covered_put"]


def test_straddle_larger_naked_side_plus_other_premium():
    # short 10000C (400) + short 10000P (400): each naked 400 + 2,000 = 2,400 → 2,400 + 400
    # = 2,800; per-leg 2 × (1,500 + 400) = 3,800.
    c, p = f"BTC-{NEAR}-10000-C", f"BTC-{NEAR}-10000-P"
    res = strategy([pos(c, -1.0), pos(p, -1.0)], {c: 400.0, p: 400.0})
    assert res.initial_margin == pytest.approx(2_800.0, rel=1e-9)
    assert names(res) == ["straddle"]


def test_strangle_larger_naked_side_plus_other_premium():
    # short 11000C: naked 200 + max(2,000 − 1,000, 1,000) = 1,200; short 9000P: 250 + 1,000
    # = 1,250 (larger) → 1,250 + 200 = 1,450; per-leg 1,200 + 1,250 = 2,450.
    res = strategy([pos(C11000, -1.0), pos(P9000, -1.0)], MARKS)
    assert res.initial_margin == pytest.approx(1_450.0, rel=1e-9)
    assert names(res) == ["strangle"]


def test_calendar_debit():
    # short NEAR 10000C (300), long FAR 10000C (500): debit 200.
    near, far = f"BTC-{NEAR}-10000-C", f"BTC-{FAR}-10000-C"
    res = strategy([pos(near, -1.0), pos(far, 1.0)], {near: 300.0, far: 500.0})
    assert res.initial_margin == pytest.approx(200.0, rel=1e-9)
    assert names(res) == ["calendar"]


def test_put_calendar_and_diagonal_with_strike_against():
    # put calendar: short NEAR 10000P (350), long FAR 10500P (800): long strike better → 450.
    near_p, far_p = f"BTC-{NEAR}-10000-P", f"BTC-{FAR}-10500-P"
    res = strategy([pos(near_p, -1.0), pos(far_p, 1.0)], {near_p: 350.0, far_p: 800.0})
    assert res.initial_margin == pytest.approx(450.0, rel=1e-9)
    # call diagonal with the long at a worse strike: short NEAR 10000C (300), long FAR
    # 10500C (350): 50 + (10,500 − 10,000) = 550; per-leg 1,800 + 350 = 2,150.
    near_c, far_c = f"BTC-{NEAR}-10000-C", f"BTC-{FAR}-10500-C"
    res = strategy([pos(near_c, -1.0), pos(far_c, 1.0)], {near_c: 300.0, far_c: 350.0})
    assert res.initial_margin == pytest.approx(550.0, rel=1e-9)
    assert names(res) == ["diagonal"]


def test_butterfly_beats_two_verticals():
    # long 9000C (1,200), short 2 × 10000C (500), long 11000C (150): V = 1,200 − 1,000 + 150
    # = 350, min payoff 0 → 350. As two verticals: debit 700 + (1,000 − 350) = 1,350.
    c9, c10, c11 = (f"BTC-{NEAR}-{k}-C" for k in (9000, 10000, 11000))
    marks = {c9: 1_200.0, c10: 500.0, c11: 150.0}
    res = strategy([pos(c9, 1.0), pos(c10, -2.0), pos(c11, 1.0)], marks)
    assert res.initial_margin == pytest.approx(350.0, rel=1e-9)
    assert names(res) == ["butterfly"]
    assert dict(res.strategies[0].legs) == pytest.approx({c9: 1.0, c10: -2.0, c11: 1.0})


def test_lp_picks_the_cheaper_of_two_competing_pairings():
    # long 1 BTC spot, short 10000C (400), long 10500C (250), short 11000C (100), one expiry.
    # P1: covered(spot, 10000C) 400 + debit vertical (long 10500C, short 11000C) 150 = 550
    # P2: covered(spot, 11000C) 100 + credit vertical (short 10000C, long 10500C):
    #     width 500 − credit 150 = 350 → 450
    # P3: ½ short butterfly 10000/10500/11000 (V = 0, min payoff −500 → 500/unit) = 250
    #     + ½ covered 10000C (200) + ½ covered 11000C (50) = 500
    # A greedy "cover the richest call first" gives P1; the LP must give P2 = 450.
    c10, c105, c11 = (f"BTC-{NEAR}-{k}-C" for k in (10000, 10500, 11000))
    marks = {c10: 400.0, c105: 250.0, c11: 100.0}
    positions = [pos("BTC_USDC", 1.0), pos(c10, -1.0), pos(c105, 1.0), pos(c11, -1.0)]
    res = strategy(positions, marks)
    assert res.initial_margin == pytest.approx(450.0, rel=1e-9)
    assert names(res) == ["covered_call", "vertical_spread"]
    by_name = {s.name: dict(s.legs) for s in res.strategies}
    assert by_name["covered_call"] == pytest.approx({"BTC_USDC": 1.0, c11: -1.0})
    assert by_name["vertical_spread"] == pytest.approx({c10: -1.0, c105: 1.0})
    # per-leg: 1,500 + 400 = 1,900; 250; 0.10·10,000 + 100 = 1,100; spot 0 → 3,250
    assert per_leg(positions, marks).initial_margin == pytest.approx(3_250.0, rel=1e-12)


def test_naked_at_the_money_call_is_capped_at_per_leg():
    # naked strategy charge 400 + 2,000 = 2,400 > per-leg 1,500 + 400 = 1,900 → 1,900,
    # MM = 1,900 × (750 + 400) / 1,900 = 1,150.
    c = f"BTC-{NEAR}-10000-C"
    res = strategy([pos(c, -1.0)], {c: 400.0})
    assert res.capped_at_per_leg
    assert res.initial_margin == pytest.approx(1_900.0, rel=1e-12)
    assert res.maintenance_margin == pytest.approx(1_150.0, rel=1e-12)
    assert names(res) == ["naked_short"]
    assert res.strategies[0].initial_margin == pytest.approx(2_400.0, rel=1e-12)


def test_cap_is_per_underlying():
    # BTC: naked ATM call capped at 1,900. ETH (S = 500): covered call, long 1 ETH spot +
    # short ETH 550C (20) → 20 (per-leg 0.10·500 + 20 = 70). Total 1,920.
    c, e = f"BTC-{NEAR}-10000-C", f"ETH-{NEAR}-550-C"
    res = strategy([pos(c, -1.0), pos("ETH_USDC", 1.0), pos(e, -1.0)], {c: 400.0, e: 20.0})
    assert res.initial_margin == pytest.approx(1_920.0, rel=1e-12)
    assert res.capped_at_per_leg


def test_strategies_do_not_pair_across_underlyings():
    # long ETH spot cannot cover a BTC call: BTC 11000C stays naked (capped at per-leg 1,200).
    res = strategy([pos("ETH_USDC", 20.0), pos(C11000, -1.0)], MARKS)
    assert "covered_call" not in names(res)
    assert res.initial_margin == pytest.approx(1_200.0, rel=1e-12)


def test_empty_portfolio_is_zero():
    for fn in (per_leg, strategy):
        res = fn([])
        assert (res.initial_margin, res.maintenance_margin, res.legs) == (0.0, 0.0, ())


def test_multi_leg_cap_zero_falls_back_to_two_leg_strategies():
    # with no 3/4-leg candidates allowed the iron condor book pairs as two verticals:
    # 350 + 880 = 1,230 (instead of 730).
    params = dataclasses.replace(PARAMS, max_multi_leg_candidates=0)
    positions = [pos(P9000, -1.0), pos(P8500, 1.0), pos(C11000, -1.0), pos(C12000, 1.0)]
    res = strategy_margin(positions, SNAP, "USD", params, option_marks_usd=MARKS)
    assert res.initial_margin == pytest.approx(1_230.0, rel=1e-9)
    assert names(res) == ["vertical_spread", "vertical_spread"]


# ---- parameters ------------------------------------------------------------------------------


def test_packaged_params():
    assert PARAMS.short_option_im_base_rate == 0.15
    assert PARAMS.futures_rates("btc").size_rate_per_coin == 0.00005
    assert PARAMS.futures_rates("ETH").size_rate_per_coin == 0.000004
    assert PARAMS.futures_rates("SOL") == PARAMS.futures_default
    assert PARAMS.naked_short_base_rate == 0.20


def test_user_params_overlay_the_defaults(tmp_path: Path):
    path = tmp_path / "rules.toml"
    path.write_text(
        "[strategy]\nnaked_base_rate = 0.25\n[per_leg.futures.SOL]\nsize_rate_per_coin = 0.001\n"
    )
    params = load_rules_params(path)
    assert params.naked_short_base_rate == 0.25
    assert params.short_option_im_base_rate == 0.15
    sol = params.futures_rates("SOL")
    assert (sol.im_rate, sol.mm_rate, sol.size_rate_per_coin) == (0.02, 0.01, 0.001)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[strategy]\nnaked_base_rat = 0.2\n", "strategy.naked_base_rat"),
        ("[per_leg.short_option]\nim_min_rate = -0.1\n", "per_leg.short_option.im_min_rate"),
        ("[per_leg.futures.BTC]\nim_rate = 'x'\n", "per_leg.futures.BTC.im_rate"),
        ("[strategy]\nmax_multi_leg_candidates = 1.5\n", "strategy.max_multi_leg_candidates"),
    ],
)
def test_bad_params_name_the_key(tmp_path: Path, text: str, key: str):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesParamsError, match=key.replace(".", r"\.")):
        load_rules_params(path)
