"""``riskgate margin``: every shipped example with both models, the JSON keys the issue
promises, the text table, and bad input -> exit code 2 with one stderr line naming the field.

Runs ``riskgate.cli.main`` in-process (fast); one subprocess run proves ``python -m
riskgate.cli`` works as a module entry point.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from riskgate.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".json", ".toml"))
MODELS = ("deribit", "span")
SPAN_SPLIT = {"net_delta", "time_risk", "volatility_risk", "price_risk", "weighted_price_risk"}


def _load_example(path: Path) -> dict:
    return (
        tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    )


def _expected_pools(data: dict) -> set[str]:
    """Pool currencies worked out from the file by the rules of docs/architecture.md §2 (not by riskgate):
    cross -> USD only; segregated -> the coin of every inverse instrument and of coin
    collateral, plus USD for linear instruments, spot and USD-like collateral."""
    usd_like = {"USD", "USDC", "USDT"}
    if data.get("pool", "cross") == "cross":
        return {"USD"}
    pools: set[str] = set()
    for sym in data["positions"]:
        head = sym.split("-")[0]
        pools.add("USD" if "_" in head else head)
    for ccy in data.get("collateral", {}):
        pools.add("USD" if ccy.upper() in usd_like else ccy.upper())
    return pools


def _strict_json(text: str) -> dict:
    def reject(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name} in output")

    return json.loads(text, parse_constant=reject)


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    for required in (
        "short_put_spread.json",
        "iron_condor.json",
        "long_calendar.json",
        "hedged_straddle.json",
        "covered_call.json",
        "mixed_book.json",
    ):
        assert required in names


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_json_output(path: Path, model: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["margin", str(path), "--model", model, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    report = _strict_json(out)
    pools = report["pools"]
    assert set(pools) == _expected_pools(_load_example(path))
    addon_names = (
        {"roll_shock", "delta_shock", "risk_matrix_margin"}
        if model == "deribit"
        else {"intra_spread", "delivery", "inter_credit", "short_option_minimum", "risk"}
    )
    for ccy, pool in pools.items():
        assert pool["currency"] == ccy
        assert math.isfinite(pool["equity"])
        pm = pool["portfolio"]
        for key in ("initial_margin", "maintenance_margin", "worst_case"):
            assert isinstance(pm[key], float) and math.isfinite(pm[key]) and pm[key] >= 0.0
        ws = pm["worst_scenario"]
        assert isinstance(ws["cell"], int) and "vol_move" in ws and "price_move" in ws
        assert addon_names <= set(pm["add_ons"])
        for v in pm["add_ons"].values():
            assert math.isfinite(v)
        for flavour in ("per_leg", "strategy"):
            im = pool["rules"][flavour]["initial_margin"]
            assert isinstance(im, float) and math.isfinite(im) and im >= 0.0
        # span: each underlying shows the steps of its weighted price risk; deribit has none
        for coin in pool["underlyings"].values():
            upm = coin["portfolio"]
            present = SPAN_SPLIT & set(upm)
            assert present == (SPAN_SPLIT if model == "span" else set())
            for key in present:
                assert isinstance(upm[key], float) and math.isfinite(upm[key])
            if model == "span":
                assert upm["price_risk"] >= 0.0 and upm["weighted_price_risk"] >= 0.0


def test_toml_and_json_covered_call_agree(capsys: pytest.CaptureFixture) -> None:
    # the TOML file describes the same portfolio as the JSON one
    assert main(["margin", str(EXAMPLES / "covered_call.json"), "--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["margin", str(EXAMPLES / "covered_call.toml"), "--json"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["pools"] == b["pools"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_text_output(path: Path, model: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["margin", str(path), "--model", model])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    for ccy in _expected_pools(_load_example(path)):
        assert f"Pool {ccy}" in out
    assert "per-leg" in out
    assert "strategy" in out
    assert model in out


def test_params_file_changes_the_result(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # a user's deribit file with mm_factor 0.5: MM = 0.5 x IM instead of 0.8 x IM
    packaged = (ROOT / "riskgate" / "models" / "params" / "deribit.toml").read_text()
    assert "mm_factor = 0.8" in packaged
    custom = tmp_path / "mine.toml"
    custom.write_text(packaged.replace("mm_factor = 0.8", "mm_factor = 0.5"))
    path = str(EXAMPLES / "iron_condor.json")
    assert main(["margin", path, "--json", "--params", str(custom)]) == 0
    pm = json.loads(capsys.readouterr().out)["pools"]["USD"]["portfolio"]
    assert pm["maintenance_margin"] == pytest.approx(0.5 * pm["initial_margin"], rel=1e-12)


# --------------------------------------------------------------------------- bad input

BASE = {
    "valuation_time": "2026-11-21T08:00:00Z",
    "pool": "cross",
    "market": {
        "index": {"BTC": 70000, "ETH": 3500},
        "marks": {"BTC_USDC-25DEC26": 70260},
        "ivs": {"BTC_USDC-25DEC26-75000-C": 0.55},
        "rate": 0.0,
    },
    "positions": {"BTC_USDC-25DEC26-75000-C": -1, "BTC_USDC": 1, "BTC_USDC-25DEC26": 0.5},
    "collateral": {"USD": 0},
}


def _run_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, *extra: str, name: str = "p.json"
) -> str:
    path = tmp_path / name
    path.write_text(text)
    code = main(["margin", str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_base_portfolio_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # the bad-input cases below each break one thing of this valid file
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(BASE))
    assert main(["margin", str(path), "--json"]) == 0
    assert "USD" in json.loads(capsys.readouterr().out)["pools"]


def _mutated(fn) -> str:
    data = copy.deepcopy(BASE)
    fn(data)
    return json.dumps(data)


BAD_CASES = {
    "unknown_symbol": (
        lambda d: d["positions"].update({"BTC-FOO-1-2-3": 1}),
        ["positions.BTC-FOO-1-2-3"],
    ),
    "missing_mark_for_dated_future": (
        lambda d: d["positions"].update({"BTC-26MAR27": 1}),
        ["market.marks.BTC-26MAR27", "mark"],
    ),
    "missing_iv": (
        lambda d: d["positions"].update({"BTC_USDC-25DEC26-80000-C": 1}),
        ["market.ivs.BTC_USDC-25DEC26-80000-C"],
    ),
    "expired_option": (
        lambda d: (
            d["positions"].update({"BTC_USDC-20NOV26-70000-P": 1}),
            d["market"]["ivs"].update({"BTC_USDC-20NOV26-70000-P": 0.5}),
        ),
        ["positions.BTC_USDC-20NOV26-70000-P", "expired"],
    ),
    "expiring_now": (
        lambda d: (
            d["positions"].update({"BTC_USDC-21NOV26-70000-P": 1}),
            d["market"]["ivs"].update({"BTC_USDC-21NOV26-70000-P": 0.5}),
        ),
        ["positions.BTC_USDC-21NOV26-70000-P", "expired"],
    ),
    "malformed_valuation_time": (
        lambda d: d.update({"valuation_time": "21/11/2026 08:00"}),
        ["valuation_time"],
    ),
    "unknown_pool_mode": (lambda d: d.update({"pool": "portfolio"}), ["pool", "portfolio"]),
    "unknown_top_level_key": (lambda d: d.update({"positons": {}}), ["positons", "unknown"]),
    "missing_index": (
        lambda d: d["market"]["index"].pop("BTC"),
        ["market.index.BTC"],
    ),
    "negative_iv": (
        lambda d: d["market"]["ivs"].update({"BTC_USDC-25DEC26-75000-C": -0.5}),
        ["market.ivs.BTC_USDC-25DEC26-75000-C"],
    ),
    "quantity_not_a_number": (
        lambda d: d["positions"].update({"BTC_USDC": "lots"}),
        ["positions.BTC_USDC"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mutate, fragments = BAD_CASES[case]
    line = _run_bad(tmp_path, capsys, _mutated(mutate))
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_nan_quantity(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # JSON's non-standard NaN literal, which Python's json module accepts
    text = json.dumps(BASE).replace('"BTC_USDC": 1', '"BTC_USDC": NaN')
    assert "NaN" in text
    line = _run_bad(tmp_path, capsys, text)
    assert "positions.BTC_USDC" in line
    assert "finite" in line


def test_nan_in_market(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = json.dumps(BASE).replace('"BTC": 70000', '"BTC": NaN')
    line = _run_bad(tmp_path, capsys, text)
    assert "market.index.BTC" in line


def test_infinite_collateral(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = json.dumps(BASE).replace('"USD": 0', '"USD": Infinity')
    line = _run_bad(tmp_path, capsys, text)
    assert "collateral.USD" in line


def test_malformed_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _run_bad(tmp_path, capsys, '{"valuation_time": "2026-11-21T08:00:00Z",')
    assert "p.json" in line
    assert "malformed" in line.lower()


def test_malformed_toml(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _run_bad(
        tmp_path, capsys, 'valuation_time = "2026-11-21T08:00:00Z"\npool =\n', name="p.toml"
    )
    assert "p.toml" in line
    assert "malformed" in line.lower()


def test_top_level_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _run_bad(tmp_path, capsys, "[1, 2, 3]")
    assert "object" in line


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.json"
    code = main(["margin", str(missing)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    assert "nope.json" in lines[0]


@pytest.mark.parametrize(
    ("params_text", "fragments"),
    [
        (None, ["--params", "missing.toml"]),  # file does not exist
        ("model = \n", ["bad.toml", "malformed"]),
        ('model = "span"\n', ["bad.toml", "span"]),  # wrong model for --model deribit
        ('model = "deribit"\n', ["bad.toml", "underlyings"]),  # no [underlyings.*]
        (
            'model = "deribit"\n[underlyings.BTC]\nprice_range = 0.16\n',
            ["mm_factor"],  # a required key missing: named
        ),
    ],
)
def test_bad_params_file(
    params_text: str | None, fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if params_text is None:
        params = tmp_path / "missing.toml"
    else:
        params = tmp_path / "bad.toml"
        params.write_text(params_text)
    line = _run_bad(tmp_path, capsys, json.dumps(BASE), "--params", str(params))
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_bad_param_value_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    packaged = (ROOT / "riskgate" / "models" / "params" / "deribit.toml").read_text()
    params = tmp_path / "neg.toml"
    params.write_text(packaged.replace("price_range = 0.16", 'price_range = "wide"'))
    line = _run_bad(tmp_path, capsys, json.dumps(BASE), "--params", str(params))
    assert "underlyings.BTC.price_range" in line


SCENARIO_PRICE_CASES = {
    # DEFAULT's price_scan_range is 0.20: 5 x 0.20 is a fall of exactly 100 %
    "span-extreme-to-zero": (
        "span",
        ("extreme_multiple = 2.0", "extreme_multiple = 5.0"),
        ["span.extreme_multiple", "underlyings.DEFAULT.price_scan_range", "100%"],
    ),
    "span-extreme-below-zero": (
        "span",
        ("extreme_multiple = 2.0", "extreme_multiple = 6.0"),
        ["span.extreme_multiple", "underlyings.DEFAULT.price_scan_range", "120%"],
    ),
    "span-scan-range": (
        "span",
        ("price_scan_range = 0.12", "price_scan_range = 1.0"),
        ["underlyings.BTC.price_scan_range", "< 1"],
    ),
    "deribit-range": (
        "deribit",
        ("price_range = 0.16", "price_range = 1.0"),
        ["underlyings.BTC.price_range", "< 1"],
    ),
    "deribit-extended": (
        "deribit",
        ("extended_moves = [-0.66,", "extended_moves = [-1.0,"),
        ["deribit.extended_moves", "-1"],
    ),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_PRICE_CASES))
def test_scenario_price_at_or_below_zero_is_a_parameter_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # a parameter set whose scenarios would price a coin at or below zero is refused when
    # the file is loaded: one line naming the field, exit 2 (no traceback, no result
    # computed at a negative price), whether or not the book holds the coin concerned
    model, (old, new), fragments = SCENARIO_PRICE_CASES[case]
    packaged = (ROOT / "riskgate" / "models" / "params" / f"{model}.toml").read_text()
    assert old in packaged
    params = tmp_path / f"{case}.toml"
    params.write_text(packaged.replace(old, new, 1))
    line = _run_bad(tmp_path, capsys, json.dumps(BASE), "--model", model, "--params", str(params))
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_scenario_prices_just_above_zero_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # 4.9 x 0.20 = a 98 % fall: extreme, but every scenario price stays positive
    packaged = (ROOT / "riskgate" / "models" / "params" / "span.toml").read_text()
    params = tmp_path / "wide.toml"
    params.write_text(packaged.replace("extreme_multiple = 2.0", "extreme_multiple = 4.9"))
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(BASE))
    assert main(["margin", str(path), "--model", "span", "--params", str(params)]) == 0
    assert capsys.readouterr().err == ""


def test_module_entry_point_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "riskgate.cli", "margin", "examples/mixed_book.json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Pool USD" in proc.stdout
    assert "per-leg" in proc.stdout and "strategy" in proc.stdout


def test_capital_efficiency_wording(capsys: pytest.CaptureFixture) -> None:
    # mixed_book: portfolio margin is below the per-leg sum and above the strategy margin
    assert main(["margin", str(EXAMPLES / "mixed_book.json")]) == 0
    out = capsys.readouterr().out
    assert "vs per-leg: " in out and "(portfolio margin saves " in out
    assert "saves -" not in out
    assert re.search(r"vs strategy: [\d.]+x \(portfolio margin costs [\d,.]+ USD more, \d+%", out)
    # a strategy's legs are listed one after the other, each with its sign
    assert "+1 BTC_USDC, -1 BTC_USDC-21DEC26-75000-C" in out
