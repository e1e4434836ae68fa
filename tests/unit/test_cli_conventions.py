"""What a command line is expected to do: --version, help that describes each command and
its defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from riskgate import __version__
from riskgate.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"riskgate {version}" == f"riskgate {__version__}"


def _subcommands() -> dict:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_has_a_description_and_shows_its_defaults(
    name: str, capsys: pytest.CaptureFixture
) -> None:
    command = _subcommands()[name]
    assert command.description, name
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for action in command._actions:
        if not action.option_strings or action.default in (None, False, "", "==SUPPRESS=="):
            continue
        if "default" in (action.help or ""):
            continue  # the help says it in its own words
        default = action.default
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        assert f"(default: {shown})" in text, (name, action.option_strings)


def test_bench_help_names_what_it_times(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "full revaluation" in text and "(default: 500)" in text and "(default: 7)" in text
