"""The README's seed-vs-riskgate tables are what `riskgate margin --json` prints for the
example books (scripts/seed_table.py writes them), and the coin-margined books are what they
say they are."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from riskgate.report import compute_report

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("seed_table", ROOT / "scripts/seed_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_match_the_commands(capsys: pytest.CaptureFixture) -> None:
    assert _script().main(["check"]) == 0, capsys.readouterr().err


def test_a_changed_number_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = _script()
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    # a number of the generated table changed by hand
    start = text.index(st.BEGIN)
    row = text.index("| **total** |", start)
    readme.write_text(text[:row] + text[row:].replace("**10,602**", "**10,603**", 1))
    monkeypatch.setattr(st, "README", readme)
    assert st.main(["check"]) == 1
    assert st.main(["write"]) == 0
    assert readme.read_text() == text


@pytest.mark.parametrize(
    ("coin_book", "usd_book"),
    [("covered_call_coin.json", "covered_call.json"), ("mixed_book_coin.json", "mixed_book.json")],
)
def test_coin_books_mirror_the_usd_books(coin_book: str, usd_book: str) -> None:
    coin = json.loads((ROOT / "examples" / coin_book).read_text())
    usd = json.loads((ROOT / "examples" / usd_book).read_text())
    assert coin["pool"] == "segregated" and usd["pool"] == "cross"
    # the same options, coin-settled; the spot held as collateral instead of a position
    linear = {s.replace("_USDC", ""): q for s, q in usd["positions"].items() if "-" in s}
    assert coin["positions"] == linear
    spots = {s.split("_")[0]: q for s, q in usd["positions"].items() if "-" not in s}
    assert {c: q for c, q in coin["collateral"].items()} == spots
    report = compute_report(coin)
    assert set(report["pools"]) <= {"BTC", "ETH", "USD"}
    for ccy, pool in report["pools"].items():
        if ccy != "USD":  # a coin pool's own collateral never moves: no P&L in any cell
            legs = {a["symbol"]: a["pnl"] for a in pool["portfolio"]["attribution"]}
            assert legs.get(f"collateral:{ccy}", 0.0) == 0.0


def test_rules_of_an_inverse_future_count_its_coin_quantity() -> None:
    # the report's rules take the position in coin, not the state's USD notional:
    # (2 % + size_rate x size) x size x mark, BTC size_rate 0.005 % per coin
    book = json.loads((ROOT / "examples" / "hedged_straddle.json").read_text())
    book["positions"] = {"BTC-25DEC26": 0.1}
    leg = compute_report(book)["pools"]["USD"]["rules"]["per_leg"]["legs"][0]
    assert leg["quantity"] == pytest.approx(0.1)
    assert leg["initial_margin"] == pytest.approx((0.02 + 0.00005 * 0.1) * 0.1 * 70260.0)
