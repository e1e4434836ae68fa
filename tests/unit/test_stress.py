"""Stress scenarios: the file formats and their errors, the extra cells in every model
against the naive reference, the binding scenario's name, and the model identity a
snapshot records."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from riskgate.models import load_model
from riskgate.models.stress import StressFileError, load_stress
from riskgate.report import compute_report
from tests.reference.naive_margin import load_stress as ref_load_stress
from tests.reference.naive_margin import naive_margin
from tests.unit.test_margin_vs_naive import _close, random_portfolio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TOML = ROOT / "examples" / "stress" / "illustrative.toml"
EXAMPLE_CSV = ROOT / "examples" / "stress" / "illustrative.csv"
MODELS = ("deribit", "span", "tims")


def random_stress_toml(rng: random.Random, n: int) -> str:
    """``n`` random scenarios, some naming BTC and ETH, some only ``*``, some weighted."""
    out = []
    for k in range(n):
        pm = {c: round(rng.uniform(-0.7, 1.5), 3) for c in ("BTC", "ETH") if rng.random() < 0.7}
        if not pm or rng.random() < 0.3:
            pm["*"] = round(rng.uniform(-0.5, 0.5), 3)
        vm = {
            c: round(rng.uniform(-0.4, 0.6), 3) for c in ("BTC", "ETH", "*") if rng.random() < 0.5
        }
        fmt = lambda d: ", ".join(f'"{c}" = {v}' for c, v in d.items())  # noqa: E731
        out.append(
            f'[[scenario]]\nname = "s{k}"\nweight = {round(rng.uniform(0.2, 1.0), 3)}\n'
            f"price_move = {{ {fmt(pm)} }}\nvol_move = {{ {fmt(vm)} }}\n"
        )
    return "\n".join(out)


def _compare(portfolio: dict, model: str, stress_path: Path) -> dict:
    ref = naive_margin(portfolio, model, stress=ref_load_stress(stress_path))["pools"]
    got = compute_report(portfolio, model=model, stress_path=stress_path)["pools"]
    problems = []
    for ccy, want in ref.items():
        have = got.get(ccy)
        if have is None:
            if not _close(want["initial_margin"], 0.0):
                problems.append(f"{ccy}: missing from riskgate")
            continue
        pairs = {
            "equity": have["equity"],
            "initial_margin": have["portfolio"]["initial_margin"],
            "maintenance_margin": have["portfolio"]["maintenance_margin"],
            "worst_case": have["portfolio"]["worst_case"],
        }
        for key, value in pairs.items():
            if not _close(value, want[key]):
                problems.append(f"{ccy}.{key}: riskgate {value!r} reference {want[key]!r}")
    assert not problems, "\n".join(problems)
    return got


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", range(8))
def test_random_portfolio_with_stress_matches_reference(
    tmp_path: Path, model: str, seed: int
) -> None:
    rng = random.Random(31 * seed + 5)
    path = tmp_path / "stress.toml"
    path.write_text(random_stress_toml(rng, rng.randint(1, 6)))
    pool = "cross" if seed % 2 == 0 else "segregated"
    _compare(random_portfolio(6007 * seed + 29, pool), model, path)


@pytest.mark.parametrize("model", MODELS)
def test_shipped_example_matches_reference_and_names_the_binding_scenario(model: str) -> None:
    portfolio = random_portfolio(11, "cross")
    got = _compare(portfolio, model, EXAMPLE_TOML)
    # a book short the crash: the binding scenario is the crash, reported by its name
    crash = {**portfolio, "positions": {"BTC_USDC-PERPETUAL": 2.0}, "collateral": {"USD": 0}}
    ws = compute_report(crash, model=model, stress_path=EXAMPLE_TOML)["pools"]["USD"]
    assert ws["portfolio"]["worst_scenario"]["name"] == "crypto crash"
    assert "USD" in got


def test_toml_and_csv_examples_are_the_same_scenarios() -> None:
    a, b = load_stress(EXAMPLE_TOML), load_stress(EXAMPLE_CSV)
    assert a.digest == b.digest
    assert a.names == b.names
    portfolio = random_portfolio(3, "segregated")
    for model in MODELS:
        ra = compute_report(portfolio, model=model, stress_path=EXAMPLE_TOML)["pools"]
        rb = compute_report(portfolio, model=model, stress_path=EXAMPLE_CSV)["pools"]
        for ccy in ra:
            assert ra[ccy]["portfolio"] == rb[ccy]["portfolio"]


def test_stress_cells_raise_margin_only_where_they_bind() -> None:
    # a stress file can only add cells: every model's worst case is at least the plain one
    portfolio = random_portfolio(5, "cross")
    for model in MODELS:
        plain = compute_report(portfolio, model=model)["pools"]["USD"]["portfolio"]
        stressed = compute_report(portfolio, model=model, stress_path=EXAMPLE_TOML)
        assert stressed["pools"]["USD"]["portfolio"]["worst_case"] >= plain["worst_case"]
        assert stressed["stress"]["digest"] == load_stress(EXAMPLE_TOML).digest


def test_model_identity_carries_the_digest() -> None:
    plain = load_model("span")
    stressed = load_model("span", stress_path=EXAMPLE_CSV)
    assert plain.identity == "span"
    assert stressed.identity == f"span+stress:{load_stress(EXAMPLE_CSV).digest}"
    assert stressed.n_cells == plain.n_cells + 5
    assert stressed.grid("BTC").label(plain.n_cells) == {
        "cell": plain.n_cells,
        "price_move": -0.35,
        "vol_move": "+0.25",
        "name": "crypto crash",
    }


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "name,weight,coin,price_move,vol_move\nx,1,BTC,-0.2,0.1\nx,1,ETH,oops,0\n",
         "a.csv:3: price_move: expected a number, got 'oops'"),
        ("b.csv", "name,weight,coin,price_move\nx,1,BTC,-1.0\n",
         "b.csv:2: price_move: -1.0 is a fall of 100% or more"),
        ("c.csv", "name,weight,coin,price_move\nx,1,BTC,-0.1\nx,0.5,ETH,-0.1\n",
         "c.csv:3: weight: 0.5, but line 2 gives 'x' weight 1.0"),
        ("d.csv", "name,coin,move\n", "d.csv:1: header 'name,coin,move'"),
        ("e.csv", "# c\nname,weight,coin,price_move\nx,1,BTC\n", "e.csv:3: 3 fields, the header has 4"),
        ("f.csv", "name,weight,coin,price_move\nx,-1,BTC,0.1\n", "f.csv:2: weight: must be > 0"),
        ("g.csv", "name,weight,coin,price_move\nx,1,BTC,0.1\nx,1,btc,0.2\n",
         "g.csv:3: coin: BTC appears twice in scenario 'x'"),
        ("h.toml", '[[scenario]]\nname = "x"\nprice_move = { BTC = "a" }\n',
         "h.toml: scenario[0] (x): price_move.BTC: expected a number, got 'a'"),
        ("i.toml", '[[scenario]]\nname = "x"\nprice_move = { BTC = 0.1 }\nvolmove = {}\n',
         "i.toml: scenario[0]: unknown key 'volmove'"),
        ("j.toml", '[[scenario]]\nprice_move = { BTC = 0.1 }\n', "j.toml: scenario[0].name"),
        ("k.toml", '[[scenario]]\nname = "x"\nprice_move = {}\n', "k.toml: scenario[0] (x): price_move"),
        ("l.toml", '[[scenario]]\nname = "x"\nprice_move = { BTC = 0.1 }\n' * 2,
         "l.toml: scenario name 'x' appears twice"),
        ("m.toml", "scenario = 3\n", "m.toml: no [[scenario]] tables"),
        ("n.toml", '[[scenario]]\nname = "x"\nweight = 0\nprice_move = { BTC = 0.1 }\n',
         "n.toml: scenario[0] (x): weight: must be > 0"),
        ("o.toml", '[[scenario]]\nname = "x"\nprice_move = { BTC = inf }\n',
         "price_move.BTC: expected a finite number"),
    ],
)  # fmt: skip
def test_bad_files_name_the_line_or_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(StressFileError) as exc:
        load_stress(path)
    assert message in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StressFileError, match="--stress: cannot read"):
        load_stress(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- the service path


def _stressed_engine(model: str, stress: Path | None):
    from riskgate.engine.engine import EngineConfig, RiskEngine
    from riskgate.engine.types import MarginMethod, PoolMode
    from riskgate.models.rules import load_rules_params
    from tests.reference.engine_market import SNAP

    eng = RiskEngine(
        load_model(model, stress_path=stress), load_rules_params(),
        EngineConfig(decision_budget_ns=10**10),
    )  # fmt: skip
    eng.warm_up()
    eng.load_snapshot(SNAP)
    eng.upsert_account(
        "A", collateral={"USD": 1_000_000.0}, pool_mode=PoolMode.CROSS,
        margin_method=MarginMethod.PORTFOLIO, limits=None,
    )  # fmt: skip
    return eng


@pytest.mark.parametrize("model", MODELS)
def test_decision_names_the_binding_stress_scenario(model: str) -> None:
    from riskgate.engine.types import OrderRequest, Side
    from riskgate.server.convert import decision_to_proto

    eng = _stressed_engine(model, EXAMPLE_TOML)
    d = eng.whatif(OrderRequest("A", "w1", "BTC_USDC-PERPETUAL", Side.BUY, 5.0, 70_000.0))
    assert d.accepted
    assert d.worst_scenario is not None and d.worst_scenario.name == "crypto crash"
    msg = decision_to_proto(d)
    assert msg.worst_scenario.name == "crypto crash"
    assert msg.worst_scenario.vol_move == "+0.25"
    # the same order without the stress file: a grid cell, no name
    plain = _stressed_engine(model, None)
    d0 = plain.whatif(OrderRequest("A", "w1", "BTC_USDC-PERPETUAL", Side.BUY, 5.0, 70_000.0))
    assert d0.worst_scenario is not None and d0.worst_scenario.name == ""
    assert d.initial_margin_after > d0.initial_margin_after


def test_snapshot_records_the_stress_digest_and_refuses_another(tmp_path: Path) -> None:
    from collections import deque

    from riskgate.engine.book import Book
    from riskgate.engine.journal import codec
    from riskgate.v1 import events_pb2 as epb

    eng = _stressed_engine("deribit", EXAMPLE_TOML)
    payload = codec.encode_snapshot(eng.book, eng.seq)
    msg = epb.BookSnapshot()
    msg.ParseFromString(payload)
    assert msg.model == f"deribit+stress:{load_stress(EXAMPLE_TOML).digest}"

    def fresh(model) -> Book:
        return Book(model, eng.rules_params, eng.config, status_changes=deque())

    # the same scenarios, spelt as CSV: accepted, same state hash
    book = fresh(load_model("deribit", stress_path=EXAMPLE_CSV))
    codec.decode_snapshot(payload, book)
    assert codec.state_hash(book) == codec.state_hash(eng.book)
    other = tmp_path / "other.toml"
    other.write_text('[[scenario]]\nname = "x"\nprice_move = { BTC = -0.2 }\n')
    for model in (load_model("deribit"), load_model("deribit", stress_path=other)):
        with pytest.raises(codec.CodecError, match=r"made with model 'deribit\+stress:"):
            codec.decode_snapshot(payload, fresh(model))
    # and a plain snapshot is refused by a stressed model
    plain = _stressed_engine("deribit", None)
    with pytest.raises(codec.CodecError, match="made with model 'deribit', not 'deribit"):
        codec.decode_snapshot(
            codec.encode_snapshot(plain.book, plain.seq),
            book_fresh := fresh(load_model("deribit", stress_path=EXAMPLE_TOML)),
        )
    assert not book_fresh.accounts


def test_stress_file_setting_is_checked_at_load(tmp_path: Path) -> None:
    from riskgate.config import Settings, SettingsError

    assert Settings(stress_file=str(EXAMPLE_TOML)).stress_file == str(EXAMPLE_TOML)
    assert Settings(stress_file="").stress_file is None
    bad = tmp_path / "bad.csv"
    bad.write_text("name,weight,coin,price_move\nx,1,BTC,-2\n")
    with pytest.raises(SettingsError, match=r"stress_file: .*bad.csv:2: price_move"):
        Settings(stress_file=str(bad))
