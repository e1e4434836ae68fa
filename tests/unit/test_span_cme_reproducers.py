"""The two reproducers of the SPAN futures-equivalent and weighted-price-risk change, worked
by hand.

Every expected number below is arithmetic on the inputs written out in the comments (the
packaged ``span`` parameters: BTC price scan range 12 %, ETH 15 %, tiers <= 30 / <= 90 /
beyond days, calendar rates 1 %, 1 %, 1.5 %, extreme 2 x PSR at 35 %, IM = 1.1 x MM). Both
riskgate (``compute_report``) and the independent reference in ``tests/reference`` must
produce them.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest

from riskgate.report import compute_report
from tests.reference.naive_margin import black76, naive_margin


def _span(portfolio: dict) -> tuple[dict, dict]:
    """(riskgate's USD pool, the reference's USD pool) under the packaged span model."""
    got = compute_report(portfolio, model="span")["pools"]["USD"]
    ref = naive_margin(portfolio, "span")["pools"]["USD"]
    return got, ref


# --------------------------------------------------------------------------- calendar spread

CALENDAR = {
    "valuation_time": "2026-12-24T08:00:00Z",
    "pool": "cross",
    "market": {
        "index": {"BTC": 70000.0},
        "marks": {"BTC_USDC-25DEC26": 70050.0, "BTC_USDC-26MAR27": 71400.0},
        "ivs": {},
        "rate": 0.0,
    },
    "positions": {"BTC_USDC-25DEC26": 1.0, "BTC_USDC-26MAR27": -1.0},
    "collateral": {"USD": 0.0},
}


def test_calendar_spread_counts_futures_equivalents() -> None:
    # 25DEC26 expires in 1 day -> tier 0; 26MAR27 in 92 days -> tier 2 (beyond 90).
    # Futures equivalents: +1 (tier 0) and -1 (tier 2), whatever the marks.
    # Pairs in order: (0,1) and (1,2) find an empty tier 1; (0,2) at 1.5 % matches 1:
    #   intra = 0.015 x 1 x 70,000 (index) = 1,050.00
    # (Index equivalents would count 70,050 / 70,000 = 1.000714 against 71,400 / 70,000,
    #  match 1.000714 and charge 0.015 x 70,050 = 1,050.75.)
    # Scan: P&L = 70,050 m - 71,400 m = -1,350 m; the worst is m = +12 %: 1,350 x 0.12 =
    #   162.00 (the extreme +24 % x 0.35 cover is 1,350 x 0.24 x 0.35 = 113.40).
    # MM = 162 + 1,050 = 1,212.00; IM = 1.1 x 1,212 = 1,333.20.
    got, ref = _span(CALENDAR)
    btc = got["underlyings"]["BTC"]["portfolio"]
    assert btc["add_ons"]["intra_spread"] == pytest.approx(1050.00, abs=1e-9)
    assert btc["worst_case"] == pytest.approx(162.00, abs=1e-9)
    assert got["portfolio"]["maintenance_margin"] == pytest.approx(1212.00, abs=1e-9)
    assert got["portfolio"]["initial_margin"] == pytest.approx(1333.20, abs=1e-9)
    coin = ref["details"]["per_coin"]["BTC"]
    assert coin["tier_deltas"] == [1.0, 0.0, -1.0]
    assert coin["intra_spread"] == pytest.approx(1050.00, abs=1e-9)
    assert coin["scan"] == pytest.approx(162.00, abs=1e-9)
    assert ref["maintenance_margin"] == pytest.approx(1212.00, abs=1e-9)


# --------------------------------------------------------------------------- inter-commodity

CREDIT_TOML = """
[[inter_credit]]
legs = ["BTC", "ETH"]
delta_ratio = [1.0, 15.0]
rate = 0.3
"""
PARAMS = Path(__file__).resolve().parents[2] / "riskgate" / "models" / "params" / "span.toml"
STRADDLE_C = "ETH_USDC-25DEC26-3500-C"
STRADDLE_P = "ETH_USDC-25DEC26-3500-P"
CROSS_BOOK = {
    "valuation_time": "2026-11-21T08:00:00Z",
    "pool": "cross",
    "market": {
        "index": {"BTC": 70000.0, "ETH": 3500.0},
        "marks": {},  # perpetuals at the index; the 25DEC26 forward is the index (rate 0)
        "ivs": {STRADDLE_C: 0.62, STRADDLE_P: 0.62},
        "rate": 0.0,
    },
    "positions": {
        "BTC_USDC-PERPETUAL": 1.0,
        "ETH_USDC-PERPETUAL": -15.0,
        STRADDLE_C: -10.0,
        STRADDLE_P: -10.0,
    },
    "collateral": {"USD": 0.0},
}


def _eth_losses() -> list[float]:
    """ETH scenario losses of the book, from the inputs alone: short 15 perpetuals lose
    15 x 3,500 x m; the short straddle loses 10 x (straddle after the day - now); the
    extremes (+-30 %, vol unchanged) count 35 %."""
    s, k, vol, vsr = 3500.0, 3500.0, 0.62, 0.12
    t_now, t_next = 34.0 / 365.0, 33.0 / 365.0
    now = black76(s, k, t_now, vol, 0.0, True) + black76(s, k, t_now, vol, 0.0, False)
    moves = [0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3]
    cells = [
        (m / 3.0 * 0.15, vol + (vsr if c % 2 == 0 else -vsr), 1.0) for c, m in enumerate(moves)
    ]
    cells += [(0.30, vol, 0.35), (-0.30, vol, 0.35)]
    losses = []
    for m, v, w in cells:
        f = s * (1.0 + m)
        later = black76(f, k, t_next, v, 0.0, True) + black76(f, k, t_next, v, 0.0, False)
        losses.append(w * (15.0 * s * m + 10.0 * (later - now)))
    return losses


def test_inter_commodity_credit_uses_cme_weighted_price_risk(tmp_path: Path) -> None:
    # BTC, long 1 perpetual: loss 70,000 x 0.12 = 8,400 in scenarios 13 and 14 (-12 %);
    #   time risk 0 (no loss at an unchanged price), worst scenario 13, its pair 14 loses
    #   the same -> volatility risk 0; price risk 8,400; futures-equivalent delta +1 ->
    #   8,400 per delta, exactly the cap 0.12 x 70,000.
    # ETH, short 15 perpetuals and 10 short 3,500 straddles (34 days, 62 %):
    #   worst: scenario 11 (+15 %, vol up), loss 10,530.09; its pair, scenario 12 (+15 %,
    #   vol down), loses 8,919.83 -> volatility risk (10,530.09 - 8,919.83) / 2 = 805.13;
    #   time risk: scenarios 1 and 2 lose (-78.79 average) -> the day's decay is a gain;
    #   price risk = 10,530.09 + 78.79 - 805.13 = 9,803.75.
    #   Delta: d1 = 0.5 x 0.62 x sqrt(34/365) = 0.094615, N(d1) = 0.537689; the straddle
    #   is N(d1) + (N(d1) - 1) = 0.075378 futures -> net -15 - 10 x 0.075378 = -15.753785.
    #   Weighted price risk 9,803.75 / 15.753785 = 622.31 per delta, capped at
    #   0.15 x 3,500 = 525.00.
    # Credit: opposite deltas; spreads = min(1 / 1, 15.753785 / 15) = 1;
    #   BTC: 0.3 x 1 x 1 x 8,400 = 2,520.00;  ETH: 0.3 x 1 x 15 x 525 = 2,362.50
    #   (uncapped 0.3 x 15 x 622.31 = 2,800.40; the former whole-scan-per-delta reading
    #   gave 0.3 x 15 x 10,530.09 / 15.753785 = 3,007.87).
    # Risk: BTC 8,400 - 2,520 = 5,880.00; ETH max(10,530.09 - 2,362.50, SOM 0.005 x
    #   3,500 x 10 = 175) = 8,167.59; MM = 14,047.59; IM = 1.1 x MM = 15,452.35.
    losses = _eth_losses()
    scan = max(losses)
    worst = losses.index(scan)
    assert worst == 10  # scenario 11
    time_risk = (losses[0] + losses[1]) / 2.0
    vol_risk = (losses[10] - losses[11]) / 2.0
    price_risk = scan - time_risk - vol_risk
    n_d1 = 0.5 * math.erfc(-(0.5 * 0.62 * math.sqrt(34.0 / 365.0)) / math.sqrt(2.0))
    delta = -15.0 - 10.0 * (2.0 * n_d1 - 1.0)
    wpr = min(price_risk / abs(delta), 0.15 * 3500.0)
    eth_credit = 0.3 * min(1.0, abs(delta) / 15.0) * 15.0 * wpr
    for have, want in (
        (scan, 10530.09),
        (losses[11], 8919.83),
        (time_risk, -78.79),
        (vol_risk, 805.13),
        (price_risk, 9803.75),
        (delta, -15.753785),
        (price_risk / abs(delta), 622.31),
        (wpr, 525.00),
        (eth_credit, 2362.50),
    ):
        assert have == pytest.approx(want, abs=5e-3 if abs(want) > 1 else 5e-7)

    params = tmp_path / "span.toml"
    params.write_text(PARAMS.read_text() + CREDIT_TOML)
    pool = compute_report(CROSS_BOOK, model="span", params_path=params)["pools"]["USD"]
    btc = pool["underlyings"]["BTC"]["portfolio"]
    eth = pool["underlyings"]["ETH"]["portfolio"]
    assert btc["add_ons"]["inter_credit"] == pytest.approx(2520.00, abs=1e-9)
    assert btc["weighted_price_risk"] == pytest.approx(8400.00, abs=1e-9)
    assert eth["add_ons"]["inter_credit"] == pytest.approx(eth_credit, abs=1e-9)
    assert eth["add_ons"]["inter_credit"] == pytest.approx(2362.50, abs=1e-9)
    assert eth["worst_case"] == pytest.approx(scan, rel=1e-12)
    assert eth["time_risk"] == pytest.approx(time_risk, rel=1e-9)
    assert eth["volatility_risk"] == pytest.approx(vol_risk, rel=1e-9)
    assert eth["price_risk"] == pytest.approx(price_risk, rel=1e-9)
    assert eth["net_delta"] == pytest.approx(delta, rel=1e-12)
    assert eth["weighted_price_risk"] == pytest.approx(525.00, abs=1e-9)
    assert eth["add_ons"]["risk"] == pytest.approx(scan - 2362.50, rel=1e-12)
    assert pool["portfolio"]["maintenance_margin"] == pytest.approx(14047.59, abs=5e-3)
    assert pool["portfolio"]["initial_margin"] == pytest.approx(15452.35, abs=5e-3)

    with open(params, "rb") as fh:
        ref = naive_margin(CROSS_BOOK, "span", params=tomllib.load(fh))["pools"]["USD"]
    coins = ref["details"]["per_coin"]
    assert coins["BTC"]["inter_credit"] == pytest.approx(2520.00, abs=1e-9)
    assert coins["ETH"]["inter_credit"] == pytest.approx(2362.50, abs=1e-9)
    assert coins["ETH"]["price_risk"] == pytest.approx(price_risk, rel=1e-9)
    assert ref["maintenance_margin"] == pytest.approx(14047.59, abs=5e-3)


def test_uncapped_weighted_price_risk_sets_the_credit(tmp_path: Path) -> None:
    # Buy the straddles instead: their gamma now gains on the +15 % move, the price risk
    # per delta falls below the cap 0.15 x 3,500 = 525 and sets the credit,
    # rate x spreads x 15 x (price risk / |delta|), every step recomputed here from the
    # reported split.
    book = json.loads(json.dumps(CROSS_BOOK))
    book["positions"].update({STRADDLE_C: 10.0, STRADDLE_P: 10.0})
    params = tmp_path / "span.toml"
    params.write_text(PARAMS.read_text() + CREDIT_TOML)
    pool = compute_report(book, model="span", params_path=params)["pools"]["USD"]
    eth = pool["underlyings"]["ETH"]["portfolio"]
    split = eth["worst_case"] - eth["time_risk"] - eth["volatility_risk"]
    assert eth["price_risk"] == pytest.approx(split, rel=1e-12)
    wpr = eth["price_risk"] / abs(eth["net_delta"])
    assert 0.0 < wpr < 0.15 * 3500.0
    assert eth["weighted_price_risk"] == pytest.approx(wpr, rel=1e-12)
    spreads = min(1.0, abs(eth["net_delta"]) / 15.0)
    credit = 0.3 * spreads * 15.0 * wpr
    assert eth["add_ons"]["inter_credit"] == pytest.approx(credit, rel=1e-12)
    with open(params, "rb") as fh:
        ref = naive_margin(book, "span", params=tomllib.load(fh))["pools"]["USD"]
    assert ref["details"]["per_coin"]["ETH"]["inter_credit"] == pytest.approx(credit, rel=1e-9)
