"""What a command line is expected to do: --version, help that describes each command and
its defaults."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_serve_refuses_a_port_outside_the_range(capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "--listen", "127.0.0.1:99999", "--no-demo"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "listen_address" in err[0] and "99999" in err[0]


@pytest.mark.parametrize(
    "argv",
    [["margin", "examples/mixed_book.json", "--json"], ["margin", "examples/iron_condor.json"]],
)
def test_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    # `riskgate margin ... | head`: the reader goes away before the output is written
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskgate.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the command has imported what it needs
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as the shell reports for `yes | head`
    assert err == ""
