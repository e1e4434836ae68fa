"""The ``tims`` model (OCC TIMS style): hand-worked books, the product-group offset both
ways, the short-option minimum, the engine's order path, and the naive reference.

Shipped parameters: BTC price range 15 %, ETH 20 %, 5 points each way (k/5 of the range),
vol +/- 10 / 12 points, BTC and ETH in one product group with a 50 % offset, short option
minimum 0.5 % of the index per short contract. Linear perpetuals at marks = index make the
arithmetic exact: one unit long pays ``F x move`` in every cell (vol does not matter).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from riskgate.engine.types import MarginMethod, OrderRequest, Side
from riskgate.models import ModelParamsError, load_model, model_names
from riskgate.report import compute_report
from tests.reference.engine_market import RULES, SNAP
from tests.reference.naive_margin import PARAMS_DIR, naive_margin
from tests.unit.test_margin_vs_naive import random_portfolio

BTC, ETH = "BTC_USDC-PERPETUAL", "ETH_USDC-PERPETUAL"


def book(positions: dict, ivs: dict | None = None, marks: dict | None = None, **kw) -> dict:
    return {
        "valuation_time": "2026-11-21T08:00:00Z",
        "pool": kw.get("pool", "cross"),
        "market": {
            "index": {"BTC": 70_000.0, "ETH": 3_500.0},
            "marks": {BTC: 70_000.0, ETH: 3_500.0, **(marks or {})},
            "ivs": ivs or {},
            "rate": 0.0,
        },
        "positions": positions,
        "collateral": kw.get("collateral", {"USD": 0.0}),
    }


def usd_pool(positions: dict, **kw) -> dict:
    return compute_report(book(positions, **kw), model="tims")["pools"]["USD"]


def test_registered_with_its_grid():
    assert "tims" in model_names()
    model = load_model("tims")
    grid = model.grid("BTC")
    # 10 equidistant price points, each at vol up and down: 20 cells
    moves = [-0.15, -0.12, -0.09, -0.06, -0.03, 0.03, 0.06, 0.09, 0.12, 0.15]
    np.testing.assert_allclose(grid.moves, np.repeat(moves, 2), rtol=1e-15)
    assert list(grid.vol_dir[:2]) == [1, -1]
    assert model.n_cells == 20
    np.testing.assert_allclose(load_model("tims").grid("ETH").moves[-1], 0.20)


def test_hand_worked_class_groups_without_offset():
    # long 1 BTC perpetual at 70,000: the points pay 70,000 x (k/5 x 15 %) = 2,100 k;
    # worst at -15 %: 10,500. Long 10 ETH perpetuals at 3,500: 35,000 x (k/5 x 20 %) =
    # 1,400 k, worst at -20 %: 7,000. Both lose at the same scenario (k = -5), so the
    # product group's worst is 10,500 + 7,000 = 17,500: no offset. MM = IM = 17,500.
    pool = usd_pool({BTC: 1.0, ETH: 10.0})
    pm = pool["portfolio"]
    assert pm["worst_case"] == pytest.approx(17_500.0, rel=1e-12)
    assert pm["add_ons"]["product_offset"] == pytest.approx(0.0, abs=1e-9)
    assert pm["maintenance_margin"] == pytest.approx(17_500.0, rel=1e-12)
    assert pm["initial_margin"] == pytest.approx(17_500.0, rel=1e-12)
    assert pool["underlyings"]["BTC"]["portfolio"]["add_ons"]["risk"] == pytest.approx(10_500.0)
    assert pm["worst_scenario"]["price_move"] == pytest.approx(-0.15)


def test_product_offset_when_btc_loses():
    # long 1 BTC (2,100 k) against short 10 ETH (-1,400 k). Scenario k < 0: BTC loses
    # 2,100 |k|, ETH gains 1,400 |k|, half of which offsets: 1,400 |k| -> 7,000 at k = -5.
    # Scenario k > 0: ETH loses 1,400 k, BTC's gain offsets 1,050 k: 350 k -> 1,750.
    # Group worst 7,000 against class groups 10,500 + 7,000 = 17,500: offset 10,500, shared
    # 10,500 x 10,500 / 17,500 = 6,300 (BTC) and 10,500 x 7,000 / 17,500 = 4,200 (ETH):
    # BTC 4,200, ETH 2,800, MM 7,000.
    pool = usd_pool({BTC: 1.0, ETH: -10.0})
    pm = pool["portfolio"]
    assert pm["worst_case"] == pytest.approx(17_500.0, rel=1e-12)
    assert pm["add_ons"]["product_offset"] == pytest.approx(10_500.0, rel=1e-12)
    assert pm["maintenance_margin"] == pytest.approx(7_000.0, rel=1e-12)
    coins = {c: u["portfolio"]["add_ons"] for c, u in pool["underlyings"].items()}
    assert coins["BTC"]["product_offset"] == pytest.approx(6_300.0, rel=1e-12)
    assert coins["BTC"]["risk"] == pytest.approx(4_200.0, rel=1e-12)
    assert coins["ETH"]["product_offset"] == pytest.approx(4_200.0, rel=1e-12)
    assert coins["ETH"]["risk"] == pytest.approx(2_800.0, rel=1e-12)


def test_product_offset_when_eth_loses():
    # long 1 BTC (2,100 k) against short 40 ETH (-5,600 k). k > 0: ETH loses 5,600 k, half
    # of BTC's 2,100 k offsets it: 4,550 k -> 22,750 at k = 5; k < 0: BTC loses 2,100 |k|
    # against half of ETH's 5,600 |k| gain: no loss. Class groups 10,500 + 28,000 = 38,500,
    # offset 15,750: BTC's share 15,750 x 10,500 / 38,500 = 4,295.45, ETH's 11,454.55.
    pool = usd_pool({BTC: 1.0, ETH: -40.0})
    pm = pool["portfolio"]
    assert pm["maintenance_margin"] == pytest.approx(22_750.0, rel=1e-12)
    assert pm["add_ons"]["product_offset"] == pytest.approx(15_750.0, rel=1e-12)
    coins = {c: u["portfolio"]["add_ons"] for c, u in pool["underlyings"].items()}
    assert coins["BTC"]["product_offset"] == pytest.approx(15_750.0 * 10_500 / 38_500)
    assert coins["ETH"]["risk"] == pytest.approx(28_000.0 - 15_750.0 * 28_000 / 38_500)
    assert pm["worst_scenario"]["underlying"] == "ETH"


def test_no_product_group_no_offset(tmp_path: Path):
    text = (PARAMS_DIR / "tims.toml").read_text().replace("offset = 0.5", "offset = 0.0")
    (tmp_path / "t.toml").write_text(text)
    # offset 0: per scenario only losses count; the hedge still never loses on both legs
    # in one scenario: max(10,500, 7,000) = 10,500
    rep = compute_report(
        book({BTC: 1.0, ETH: -10.0}), model="tims", params_path=tmp_path / "t.toml"
    )
    assert rep["pools"]["USD"]["portfolio"]["maintenance_margin"] == pytest.approx(10_500.0)
    # without the group each coin stands alone: 17,500
    alone = text.replace('coins = ["BTC", "ETH"]', 'coins = ["BTC", "SOL"]')
    (tmp_path / "a.toml").write_text(alone)
    rep = compute_report(
        book({BTC: 1.0, ETH: -10.0}), model="tims", params_path=tmp_path / "a.toml"
    )
    assert rep["pools"]["USD"]["portfolio"]["maintenance_margin"] == pytest.approx(17_500.0)


def test_short_option_minimum_binds():
    # short 10 puts at 40,000 and short 5 calls at 110,000, 13 days out at 50 % vol: even at
    # -15 % with vol +10 (59,500) the put is more than 5 standard deviations out of the
    # money, so the scan loss is tiny; the minimum is 0.5 % x 70,000 x (10 + 5) = 5,250.
    put, call = "BTC_USDC-4DEC26-40000-P", "BTC_USDC-4DEC26-110000-C"
    pool = usd_pool(
        {put: -10.0, call: -5.0},
        ivs={put: 0.5, call: 0.5},
        marks={"BTC_USDC-4DEC26": 70_000.0},
    )
    pm = pool["portfolio"]
    assert pm["worst_case"] < 100.0
    assert pm["add_ons"]["short_option_minimum"] == pytest.approx(5_250.0, rel=1e-12)
    assert pm["maintenance_margin"] == pytest.approx(5_250.0, rel=1e-12)


def test_bad_parameters_name_the_key(tmp_path: Path):
    base = (PARAMS_DIR / "tims.toml").read_text()
    for old, new, key in (
        ("offset = 0.5", "offset = 1.5", "offset"),
        ("price_range = 0.15", "price_range = 1.0", "price_range"),
        ("points_per_side = 5", "points_per_side = 0", "points_per_side"),
    ):
        (tmp_path / "p.toml").write_text(base.replace(old, new))
        with pytest.raises(ModelParamsError, match=key):
            load_model("tims", tmp_path / "p.toml")


def test_engine_decides_with_tims():
    from riskgate.engine.engine import EngineConfig, RiskEngine

    eng = RiskEngine(load_model("tims"), RULES, EngineConfig(decision_budget_ns=10**10))
    eng.warm_up()  # compiles the tims kernels
    eng.load_snapshot(SNAP)
    eng.upsert_account("A", collateral={"USD": 20_000.0}, margin_method=MarginMethod.PORTFOLIO)
    # long 1 BTC_USDC-PERPETUAL at the demo mark 70,007: 10,501.05 at -15 %
    d = eng.check_order(OrderRequest("A", "o1", BTC, Side.BUY, 1.0, 70_007.0))
    assert d.accepted
    assert d.initial_margin_after == pytest.approx(0.15 * SNAP.marks_usd[BTC], rel=1e-12)
    # a second one does not fit in 20,000
    assert not eng.check_order(OrderRequest("A", "o2", BTC, Side.BUY, 1.0, 70_007.0)).accepted
    # a market update re-margins the reservation: 0.15 x 71,000 = 10,650
    eng.update_market(
        full_snapshot=False, valuation_time=None, index_usd={}, marks_usd={BTC: 71_000.0}, ivs={}
    )
    assert eng.account_view("A").initial_margin_usd == pytest.approx(10_650.0, rel=1e-12)


# --------------------------------------------------------------------------- the reference


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1e-6, 1e-9 * max(abs(a), abs(b)))


@pytest.mark.parametrize("seed", range(16))
def test_random_portfolio_matches_reference(seed: int):
    portfolio = random_portfolio(1000 * seed + 23, "cross" if seed % 2 == 0 else "segregated")
    ref = naive_margin(portfolio, "tims")["pools"]
    got = compute_report(portfolio, model="tims")["pools"]
    problems = []
    for ccy, want in ref.items():
        have = got.get(ccy)
        if have is None:
            assert _close(want["initial_margin"], 0.0) and _close(want["equity"], 0.0)
            continue
        pm = have["portfolio"]
        for key, value in (
            ("equity", have["equity"]),
            ("initial_margin", pm["initial_margin"]),
            ("maintenance_margin", pm["maintenance_margin"]),
            ("worst_case", pm["worst_case"]),
        ):
            if not _close(value, want[key]):
                problems.append(f"{ccy}.{key}: riskgate {value!r} reference {want[key]!r}")
        for coin, d in want["details"]["per_coin"].items():
            u = have["underlyings"].get(coin)
            if u is None:
                assert _close(d["risk"], 0.0), (ccy, coin)
                continue
            for key in ("product_offset", "short_option_minimum", "risk"):
                if not _close(u["portfolio"]["add_ons"][key], d[key]):
                    problems.append(
                        f"{ccy}.{coin}.{key}: {u['portfolio']['add_ons'][key]!r} {d[key]!r}"
                    )
    assert not problems, "\n".join(problems) + "\n" + json.dumps(portfolio)
    assert all(math.isfinite(p["portfolio"]["initial_margin"]) for p in got.values())


def test_every_shipped_model_is_a_choice_of_the_commands() -> None:
    from riskgate.models.base import MODEL_NAMES, model_names

    assert sorted(MODEL_NAMES) == model_names()
