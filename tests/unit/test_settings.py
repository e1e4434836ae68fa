"""Settings: the example file lists every setting at its default, and an unknown name is an
error whether it comes from the file or from the environment."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from riskgate.config import OTHER_VARIABLES, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config" / "riskgate.toml"


def test_example_config_lists_every_setting() -> None:
    keys = set(tomllib.loads(EXAMPLE.read_text()))
    assert keys == {f.name for f in fields(Settings)}


def test_example_config_is_the_defaults() -> None:
    # what the file says each default is, is the default
    assert load_settings(EXAMPLE, env={}) == Settings()


def test_example_config_documents_each_setting() -> None:
    # a comment above every key (or a group of keys) says what it is
    lines = EXAMPLE.read_text().splitlines()
    for k, line in enumerate(lines):
        if line and not line.startswith("#") and "=" in line:
            above = lines[k - 1]
            assert above.startswith("#") or "=" in above, line


def test_unknown_environment_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={"RISKGATE_MAX_INDX_MOVE": "0.1"})
    assert "RISKGATE_MAX_INDX_MOVE" in str(err.value)
    assert "did you mean RISKGATE_MAX_INDEX_MOVE?" in str(err.value)
    # the same mistake in the file is the same kind of error
    path = tmp_path / "s.toml"
    path.write_text("max_indx_move = 0.1\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path, env={})
    assert "max_indx_move" in str(err.value) and "did you mean max_index_move?" in str(err.value)


def test_known_variables_and_other_programs_variables() -> None:
    env = {"RISKGATE_MAX_INDEX_MOVE": "0.1", "RISKGATE_DEMO": "false", "PATH": "/bin"}
    env |= dict.fromkeys(OTHER_VARIABLES - {"RISKGATE_CONFIG"}, "1")  # the token, the JIT switch
    s = load_settings(env=env)
    assert (s.max_index_move, s.demo) == (0.1, False)
    with pytest.raises(SettingsError, match="RISKGATE_SOMETHING: unknown setting"):
        load_settings(env={"RISKGATE_SOMETHING": "x"})


@pytest.mark.parametrize(
    "address", ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:abc", "nohost"]
)
def test_listen_ports_outside_the_range_are_refused(address: str) -> None:
    # grpc would bind 99999 as port 34463 (99999 - 65536) without a word
    with pytest.raises(SettingsError, match="listen_address"):
        Settings(listen_address=address)
    with pytest.raises(SettingsError, match="metrics_address"):
        Settings(metrics_address=address)


@pytest.mark.parametrize(
    "address", ["127.0.0.1:1", "127.0.0.1:65535", "127.0.0.1:0", "[::1]:50051", "unix:/tmp/rg"]
)
def test_listen_addresses_in_range(address: str) -> None:
    assert Settings(listen_address=address).listen_address == address
