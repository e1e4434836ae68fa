"""The two reproducers of the SPAN futures-equivalent and weighted-price-risk change, worked
by hand.

Every expected number below is arithmetic on the inputs written out in the comments (the
packaged ``span`` parameters: BTC price scan range 12 %, ETH 15 %, tiers <= 30 / <= 90 /
beyond days, calendar rates 1 %, 1 %, 1.5 %, extreme 2 x PSR at 35 %, IM = 1.1 x MM). Both
riskgate (``compute_report``) and the independent reference in ``tests/reference`` must
produce them.
"""

from __future__ import annotations

import pytest

from riskgate.report import compute_report
from tests.reference.naive_margin import naive_margin


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
