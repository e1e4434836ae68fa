"""The hand-worked SPAN example of issue 2, run through the margin kernels directly.

Risk arrays are given (P&L per scenario 1-16 of one unit long, already cover-weighted);
the risk matrix and the attribute block are built by hand, positions go into a pool state
with ``apply_change`` and ``margin_span`` aggregates. Every expected number is worked out
by hand in the comments.

Losses are -P&L. Scenario pairs for the volatility risk (same price move, opposite vol):
1-2, 3-4, ..., 13-14; the extremes 15 and 16 are their own pairs.
"""

from __future__ import annotations

import numpy as np
import pytest

from riskgate.kernels import margin as mk

# scenario:     1     2      3      4       5       6      7      8       9      10
#              11     12      13      14     15      16
FUTURE = [0, 0, 3330, 3330, -3330, -3330, 6670, 6670, -6670, -6670,
          10000, 10000, -10000, -10000, 7000, -7000]  # fmt: skip
CALL = [460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430,
        8060, 7640, -3380, -3990, 3130, -1500]  # fmt: skip
# A put with the arrays of (call - future), as put-call parity gives at the money:
# 460, -610, -690, -1600, 2060, 990, -1460, -2130, 4130, 3240, -1940, -2360, 6620, 6010,
# -3870, 5500
PUT = [c - f for c, f in zip(CALL, FUTURE, strict=True)]

FUT, CALL_ROW, PUT_ROW, FUT_TIER1, FUT_TIER2 = range(5)
N_CELLS = 16


def _tables() -> tuple[np.ndarray, np.ndarray]:
    risk = np.array([FUTURE, CALL, PUT, FUTURE, FUTURE], dtype=np.float64)
    attr = np.zeros((5, mk.N_ATTR))
    attr[:, mk.A_UND] = 0.0
    attr[:, mk.A_MULT] = 1.0
    attr[CALL_ROW, mk.A_CALL] = 1.0
    attr[PUT_ROW, mk.A_PUT] = 1.0
    # futures carry a delta of one coin per unit; tiers 0 / 1 / 2
    for row, tier in ((FUT, 0), (FUT_TIER1, 1), (FUT_TIER2, 2)):
        attr[row, mk.A_DELTA] = 1.0
        attr[row, mk.A_TIER] = float(tier)
    # the at-the-money options: futures-equivalent deltas +0.5 (call), -0.5 (put)
    attr[CALL_ROW, mk.A_DELTA] = 0.5
    attr[PUT_ROW, mk.A_DELTA] = -0.5
    return risk, attr


# gparams tail: time-risk scenarios 1 and 2 (cells 0, 1), then each cell's paired cell
SPLIT = [0.0, 1.0] + [float(c) for c in (1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 14, 15)]


def _margin(
    positions: dict[int, float],
    *,
    im_ratio: float = 1.0,
    pairs: list[tuple[int, int, float]] = (),
    som: float = 0.0,
    price: float = 1.0,
    psr: float = 0.1,
) -> np.ndarray:
    risk, attr = _tables()
    pnl = np.zeros((1, N_CELLS))
    aux = np.zeros((1, mk.N_AUX))
    for row, q in positions.items():
        mk.apply_change(pnl, aux, risk, attr, row, 0.0, q)
    g = [im_ratio, float(len(pairs))]
    for a, b, rate in pairs:
        g += [float(a), float(b), rate]
    g.append(0.0)  # no inter-commodity credits
    gparams = np.array(g + SPLIT)
    uparams = np.array([[som, 0.0, psr]])  # [SOM rate, delivery rate, price scan range]
    out = np.zeros((2, mk.N_OUT))
    mk.margin_span(pnl, aux, np.array([price]), gparams, uparams, out)
    return out


def test_long_call_scan_risk_is_3990_at_scenario_14() -> None:
    # losses of the long call = -P&L; the largest is 3,990 in scenario 14 (cell 13)
    out = _margin({CALL_ROW: 1.0})
    assert out[0, mk.O_WORST] == pytest.approx(3990.0, abs=1e-9)
    assert int(out[0, mk.O_CELL]) == 13
    assert out[0, mk.O_MM] == pytest.approx(3990.0, abs=1e-9)
    assert out[0, mk.O_IM] == pytest.approx(3990.0, abs=1e-9)  # ratio 1
    # pool row (last) repeats the single underlying
    assert out[1, mk.O_WORST] == pytest.approx(3990.0, abs=1e-9)
    assert int(out[1, mk.O_CELL]) == 13


def test_covered_write_scan_risk_is_6620_at_scenario_13() -> None:
    # long future + short call, P&L per scenario (future - call):
    #  -460, 610, 690, 1600, -2060, -990, 1460, 2130, -4130, -3240,
    #  1940, 2360, -6620, -6010, 3870, -5500  -> worst loss 6,620 in scenario 13 (cell 12)
    out = _margin({FUT: 1.0, CALL_ROW: -1.0})
    assert out[0, mk.O_WORST] == pytest.approx(6620.0, abs=1e-9)
    assert int(out[0, mk.O_CELL]) == 12
    assert out[1, mk.O_MM] == pytest.approx(6620.0, abs=1e-9)


def test_short_call_alone_is_scanned_at_scenario_11() -> None:
    # short call: loss = call P&L; largest is 8,060 in scenario 11 (cell 10)
    out = _margin({CALL_ROW: -1.0})
    assert out[0, mk.O_WORST] == pytest.approx(8060.0, abs=1e-9)
    assert int(out[0, mk.O_CELL]) == 10


def test_long_future_scan_ties_resolve_to_first_scenario() -> None:
    # long future: loss 10,000 in scenarios 13 and 14 -> the first, cell 12
    out = _margin({FUT: 2.0})
    assert out[0, mk.O_WORST] == pytest.approx(20000.0, abs=1e-9)
    assert int(out[0, mk.O_CELL]) == 12


def test_scan_risk_is_floored_at_zero() -> None:
    # scenario 1 and 2 of a future are 0, every other scenario of a long + short future
    # is 0 too: no loss anywhere -> scan risk 0, not negative
    out = _margin({FUT: 1.0, FUT_TIER2: -1.0})
    assert out[0, mk.O_WORST] == 0.0


def test_im_ratio_scales_maintenance() -> None:
    # MM = 6,620 (covered write); IM = 1.25 x 6,620 = 8,275
    out = _margin({FUT: 1.0, CALL_ROW: -1.0}, im_ratio=1.25)
    assert out[1, mk.O_MM] == pytest.approx(6620.0, abs=1e-9)
    assert out[1, mk.O_IM] == pytest.approx(8275.0, abs=1e-9)


@pytest.mark.parametrize(
    ("k", "price", "expected"),
    [
        # 3 short calls: scan = 3 x 8,060 = 24,180 (scenario 11);
        # SOM = 0.1 x 1,000 x 3 = 300 -> risk = max(24,180, 300) = 24,180
        (3.0, 1_000.0, 24_180.0),
        # same book, price 100,000: SOM = 0.1 x 100,000 x 3 = 30,000 > 24,180 -> 30,000
        (3.0, 100_000.0, 30_000.0),
        # 0.5 short calls: scan 4,030; SOM = 0.1 x 100,000 x 0.5 = 5,000 -> 5,000
        (0.5, 100_000.0, 5_000.0),
    ],
)
def test_short_option_minimum_on_short_calls(k: float, price: float, expected: float) -> None:
    out = _margin({CALL_ROW: -k}, som=0.1, price=price)
    assert out[0, mk.O_SPAN_SOM] == pytest.approx(0.1 * price * k, rel=1e-12)
    assert out[0, mk.O_MM] == pytest.approx(expected, rel=1e-12)
    assert out[1, mk.O_MM] == pytest.approx(expected, rel=1e-12)
    # scan risk is reported unchanged underneath the minimum
    assert out[0, mk.O_WORST] == pytest.approx(8060.0 * k, rel=1e-12)


def test_short_option_minimum_takes_the_larger_side() -> None:
    # 2 short calls and 5 short puts: SOM = 0.1 x 100,000 x max(2, 5) = 50,000.
    # Scan: P&L = -2 call - 5 put; scenario 13: -2(-3380) - 5(6620) = 6,760 - 33,100
    # = -26,340; scenario 14: 7,980 - 30,050 = -22,070; scenario 9: 5,080 - 20,650 =
    # -15,570 ... worst loss 26,340 (scenario 13) < 50,000 -> risk 50,000.
    out = _margin({CALL_ROW: -2.0, PUT_ROW: -5.0}, som=0.1, price=100_000.0)
    assert out[0, mk.O_WORST] == pytest.approx(26_340.0, rel=1e-12)
    assert int(out[0, mk.O_CELL]) == 12
    assert out[0, mk.O_SPAN_SOM] == pytest.approx(50_000.0, rel=1e-12)
    assert out[0, mk.O_MM] == pytest.approx(50_000.0, rel=1e-12)


def test_long_options_do_not_count_towards_the_minimum() -> None:
    # long 4 calls, short 1 put: SOM = 0.1 x 1,000 x max(0, 1) = 100
    out = _margin({CALL_ROW: 4.0, PUT_ROW: -1.0}, som=0.1, price=1_000.0)
    assert out[0, mk.O_SPAN_SOM] == pytest.approx(100.0, rel=1e-12)


def test_unwinding_a_short_restores_the_minimum_exactly() -> None:
    # short 3 calls then buy back 3: no short calls remain, SOM 0
    risk, attr = _tables()
    pnl = np.zeros((1, N_CELLS))
    aux = np.zeros((1, mk.N_AUX))
    mk.apply_change(pnl, aux, risk, attr, CALL_ROW, 0.0, -3.0)
    assert aux[0, mk.X_SHORT_CALLS] == 3.0
    mk.apply_change(pnl, aux, risk, attr, CALL_ROW, -3.0, 1.0)  # flip to long 1
    assert aux[0, mk.X_SHORT_CALLS] == 0.0
    np.testing.assert_array_equal(pnl[0], np.array(CALL, dtype=float))


CAL_PAIRS = [(0, 1, 0.01), (1, 2, 0.01), (0, 2, 0.015)]


def test_calendar_spread_charge_on_a_riskless_looking_spread() -> None:
    # long 2 tier-0 futures, short 2 tier-1 futures: scanning moves both together, so the
    # scan risk is 0; the charge is 0.01 x matched delta 2 x price 50,000 = 1,000
    out = _margin({FUT: 2.0, FUT_TIER1: -2.0}, pairs=CAL_PAIRS, price=50_000.0)
    assert out[0, mk.O_WORST] == 0.0
    assert out[0, mk.O_SPAN_INTRA] == pytest.approx(1_000.0, rel=1e-12)
    assert out[0, mk.O_MM] == pytest.approx(1_000.0, rel=1e-12)


def test_calendar_spread_charge_adds_to_scan() -> None:
    # long 3 tier-0, short 2 tier-1: net 1 future -> scan 10,000 (scenario 13);
    # matched delta min(3, 2) = 2 -> 0.01 x 2 x 50,000 = 1,000; risk 11,000
    out = _margin({FUT: 3.0, FUT_TIER1: -2.0}, pairs=CAL_PAIRS, price=50_000.0)
    assert out[0, mk.O_WORST] == pytest.approx(10_000.0, rel=1e-12)
    assert out[0, mk.O_SPAN_INTRA] == pytest.approx(1_000.0, rel=1e-12)
    assert out[0, mk.O_MM] == pytest.approx(11_000.0, rel=1e-12)
    assert out[0, mk.O_IM] == pytest.approx(11_000.0, rel=1e-12)


def test_calendar_pairs_are_formed_in_priority_order() -> None:
    # tier deltas d0 = +1, d1 = -3, d2 = +2; pairs in order (0,1), (1,2), (0,2):
    #   (0,1): match 1 at 1 %  -> 0.01 x 1 x 10,000 = 100;  d0 = 0, d1 = -2
    #   (1,2): match 2 at 1 %  -> 0.01 x 2 x 10,000 = 200;  d1 = 0, d2 = 0
    #   (0,2): nothing left                                 -> total 300
    # Net delta 0 and identical arrays -> scan 0; risk 300.
    book = {FUT: 1.0, FUT_TIER1: -3.0, FUT_TIER2: 2.0}
    out = _margin(book, pairs=CAL_PAIRS, price=10_000.0)
    assert out[0, mk.O_WORST] == pytest.approx(0.0, abs=1e-9)
    assert out[0, mk.O_SPAN_INTRA] == pytest.approx(300.0, rel=1e-12)
    # The order matters: d0 = +2, d1 = -2, d2 = +2 with (1,2) at 1 % before (0,1) at 5 %:
    #   (1,2) matches 2 -> 0.01 x 2 x 10,000 = 200, d1 = 0; (0,1) has nothing left -> 200.
    # The opposite order: (0,1) matches 2 at 5 % -> 1,000, d1 = 0; (1,2) nothing -> 1,000.
    book = {FUT: 2.0, FUT_TIER1: -2.0, FUT_TIER2: 2.0}
    cheap_first = _margin(book, pairs=[(1, 2, 0.01), (0, 1, 0.05)], price=10_000.0)
    dear_first = _margin(book, pairs=[(0, 1, 0.05), (1, 2, 0.01)], price=10_000.0)
    assert cheap_first[0, mk.O_SPAN_INTRA] == pytest.approx(200.0, rel=1e-12)
    assert dear_first[0, mk.O_SPAN_INTRA] == pytest.approx(1_000.0, rel=1e-12)


def test_same_sign_tiers_carry_no_calendar_charge() -> None:
    out = _margin({FUT: 1.0, FUT_TIER1: 2.0}, pairs=CAL_PAIRS, price=50_000.0)
    assert out[0, mk.O_SPAN_INTRA] == 0.0
    # scan: 3 long futures -> 30,000
    assert out[0, mk.O_MM] == pytest.approx(30_000.0, rel=1e-12)


# --------------------------------------------------------------------------- price risk split


def _split(out: np.ndarray) -> tuple[float, float, float, float, float]:
    row = out[0]
    cols = (mk.O_SPAN_DELTA, mk.O_SPAN_TIME, mk.O_SPAN_VOL, mk.O_SPAN_PRICE, mk.O_SPAN_WPR)
    return tuple(float(row[c]) for c in cols)


def test_long_call_split_of_the_scan_risk() -> None:
    # long call: worst loss 3,990 in scenario 14; its pair, scenario 13, loses 3,380.
    #   time risk = mean loss of scenarios 1, 2 = (-460 + 610) / 2 = 75
    #   volatility risk = (3,990 - 3,380) / 2 = 305
    #   price risk = 3,990 - 75 - 305 = 3,610; delta 0.5 -> 7,220 per delta
    #   cap = PSR 0.1 x price 100,000 = 10,000 -> weighted price risk 7,220
    out = _margin({CALL_ROW: 1.0}, price=100_000.0)
    assert _split(out) == pytest.approx((0.5, 75.0, 305.0, 3610.0, 7220.0), abs=1e-9)
    # at price 50,000 the cap is 0.1 x 50,000 = 5,000 < 7,220
    out = _margin({CALL_ROW: 1.0}, price=50_000.0)
    assert out[0, mk.O_SPAN_WPR] == pytest.approx(5000.0, abs=1e-9)
    # the pool row carries none of the per-underlying split
    assert out[1, mk.O_SPAN_PRICE] == 0.0 and out[1, mk.O_SPAN_WPR] == 0.0


def test_covered_write_split_gains_from_time() -> None:
    # long future + short call, losses (call - future):
    #   460, -610, -690, -1600, 2060, 990, -1460, -2130, 4130, 3240, -1940, -2360,
    #   6620, 6010, -3870, 5500 -> worst 6,620 in scenario 13, its pair 14 loses 6,010
    #   time risk = (460 - 610) / 2 = -75 (the short call gains from the day passing)
    #   volatility risk = (6,620 - 6,010) / 2 = 305
    #   price risk = 6,620 + 75 - 305 = 6,390; delta 1 - 0.5 = 0.5 -> 12,780 per delta,
    #   capped at 0.1 x 100,000 = 10,000
    out = _margin({FUT: 1.0, CALL_ROW: -1.0}, price=100_000.0)
    assert _split(out) == pytest.approx((0.5, -75.0, 305.0, 6390.0, 10_000.0), abs=1e-9)


def test_extreme_worst_scenario_is_its_own_pair() -> None:
    # long put, losses (future - call):
    #   -460, 610, 690, 1600, -2060, -990, 1460, 2130, -4130, -3240, 1940, 2360,
    #   -6620, -6010, 3870, -5500 -> worst 3,870 in scenario 15 (the extreme up move)
    #   time risk = (-460 + 610) / 2 = 75; volatility risk = (3,870 - 3,870) / 2 = 0
    #   price risk = 3,870 - 75 = 3,795; |delta| 0.5 -> 7,590 (cap 10,000)
    out = _margin({PUT_ROW: 1.0}, price=100_000.0)
    assert int(out[0, mk.O_CELL]) == 14
    assert _split(out) == pytest.approx((-0.5, 75.0, 0.0, 3795.0, 7590.0), abs=1e-9)


def test_no_loss_no_split() -> None:
    # long + short future in different tiers: no scenario loses, scan 0 -> nothing to
    # split, and with net delta 0 no weighted price risk either
    out = _margin({FUT: 1.0, FUT_TIER2: -1.0}, price=100_000.0)
    assert _split(out) == (0.0, 0.0, 0.0, 0.0, 0.0)
