"""riskgate margin --plot: every example renders, one block per pool and model, at the size
the layout gives; bad paths and several models behave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from riskgate.cli import main
from riskgate.domain.portfolio import load_portfolio
from riskgate.plot import PROFILE_MOVES, _profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [*sorted((ROOT / "examples").glob("*.json")), ROOT / "examples" / "covered_call.toml"]
MODELS = ("deribit", "span", "tims")


def _pools(path: Path) -> int:
    report = main_json(["margin", str(path), "--json"])
    return len(report["pools"])


def main_json(argv: list[str]) -> dict:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return json.loads(buf.getvalue())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders(tmp_path: Path, path: Path) -> None:
    # one model per example (the models rotate), the stress file on one of them
    k = EXAMPLES.index(path)
    model = MODELS[k % 3]
    out = tmp_path / "plot.png"
    argv = ["margin", str(path), "--model", model, "--plot", str(out)]
    if k == 0:
        argv += ["--stress", str(ROOT / "examples/stress/illustrative.toml")]
    assert main(argv) == 0
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.size == (950, 650 * _pools(path))
        # not a blank canvas: a heat map has many colours
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 200
    assert 20_000 < out.stat().st_size < 2_000_000


def test_three_models_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "three.png"
    argv = ["margin", str(ROOT / "examples/iron_condor.json"), "--plot", str(out)]
    for m in MODELS:
        argv += ["--model", m]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert all(f"model {m}" in text for m in MODELS) and f"plot written to {out}" in text
    with Image.open(out) as img:
        assert img.size == (3 * 950, 650)  # one pool, three models


def test_several_models_in_json_are_a_list() -> None:
    reports = main_json(
        ["margin", str(ROOT / "examples/iron_condor.json"), "--model", "span", "--model", "tims",
         "--json"]
    )  # fmt: skip
    assert [r["model"] for r in reports] == ["span", "tims"]


def test_bad_plot_path_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        ["margin", str(ROOT / "examples/iron_condor.json"), "--plot", str(tmp_path / "no/x.png")]
    )
    assert code == 2
    assert "--plot: cannot write" in capsys.readouterr().err


def test_profile_is_the_scenario_pnl_of_a_linear_book() -> None:
    # long 1 BTC spot in the USD pool: P&L = 70,000 x move, now and after the look-ahead
    from riskgate.models import load_model

    portfolio = load_portfolio(ROOT / "examples/covered_call.json")
    model = load_model("span")
    for years in (0.0, model.look_ahead_years):
        pnl = _profile(portfolio, model, "USD", {"BTC_USDC": 1.0}, years)
        assert pnl == pytest.approx(70_000.0 * PROFILE_MOVES, abs=1e-9)
