"""The auth file: the shipped example loads, tokens and certificate names find their
principals, scopes match ids and prefixes, and every kind of bad file is one line naming
the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from riskgate.config import SettingsError
from riskgate.server.auth import (
    ROLES,
    AuthFileError,
    Scope,
    load_auth_file,
    token_sha256,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "auth" / "auth.toml"
DIGEST = token_sha256("t-1")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.toml"
    path.write_text(text)
    return path


def _principal(**fields: object) -> str:
    base: dict[str, object] = {"name": "p", "token_sha256": DIGEST, "roles": ["viewer"]}
    base.update(fields)
    lines = ["[[principal]]"]
    for key, value in base.items():
        if value is None:
            continue
        text = (
            "[" + ", ".join(f'"{v}"' for v in value) + "]"
            if isinstance(value, list)
            else f'"{value}"'
            if isinstance(value, str)
            else str(value)
        )
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def test_the_example_file_loads_and_its_tokens_find_their_principals() -> None:
    auth = load_auth_file(EXAMPLE, mutual_tls=False)
    names = {p.name: p for p in auth.principals}
    assert set(names) == {"gw-demo", "accounts-admin", "market-feed", "risk-desk", "ops-viewer"}
    for token, name in (
        ("demo-gateway-token", "gw-demo"),
        ("demo-admin-token", "accounts-admin"),
        ("demo-market-token", "market-feed"),
        ("demo-risk-token", "risk-desk"),
        ("demo-viewer-token", "ops-viewer"),
    ):
        found = auth.by_token(token)
        assert found is not None and found.name == name
    assert auth.by_token("demo-gateway-token ") is None
    assert auth.by_token("") is None
    # every role of the service is used by the example
    assert set().union(*(p.roles for p in auth.principals)) == set(ROLES)
    gw = names["gw-demo"]
    assert gw.scope.covers("demo-1") and not gw.scope.covers("demo-3")
    assert names["risk-desk"].scope.everything
    assert "token_digest" not in repr(gw)  # digests stay out of reprs (and so of logs)


def test_scopes_match_ids_prefixes_and_everything() -> None:
    s = Scope(ids=frozenset({"acct-1"}), prefixes=("desk-a-",))
    assert s.covers("acct-1") and s.covers("desk-a-7") and s.covers("desk-a-")
    assert not s.covers("acct-10") and not s.covers("desk-b-1") and not s.covers("")
    assert Scope(everything=True).covers("")
    assert not Scope().covers("x")
    assert s.describe() == "acct-1, desk-a-*"


def test_certificate_subjects(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _principal(name="by-cn", token_sha256=None, cert_subject="CN=gw-a")
        + _principal(name="by-san", token_sha256=None, cert_subject="san = gw-b.desk.example"),
    )
    auth = load_auth_file(path, mutual_tls=True)
    assert [p.name for p in auth.by_certificate(["gw-a"], [])] == ["by-cn"]
    assert [p.name for p in auth.by_certificate(["x"], ["gw-b.desk.example"])] == ["by-san"]
    assert auth.by_certificate(["gw-b.desk.example"], ["gw-a"]) == []  # CN vs SAN kept apart
    with pytest.raises(AuthFileError, match=r"cert_subject: needs mutual TLS"):
        load_auth_file(path, mutual_tls=False)


def test_accounts_default_to_none() -> None:
    auth = load_auth_file(EXAMPLE, mutual_tls=False)
    market = next(p for p in auth.principals if p.name == "market-feed")
    assert not market.scope.everything and not market.scope.covers("demo-1")


BAD = [
    ("missing-name", _principal(name=None), r"principal\[0\]\.name: missing"),
    ("no-credentials", _principal(token_sha256=None), r"token_sha256 or cert_subject"),
    ("short-digest", _principal(token_sha256="abc"), r"\(p\)\.token_sha256: expected a sha256"),
    ("digest-not-hex", _principal(token_sha256="g" * 64), r"token_sha256"),
    ("unknown-role", _principal(roles=["admin"]), r"\(p\)\.roles: unknown role 'admin'"),
    ("no-roles", _principal(roles=[]), r"roles: empty"),
    ("roles-not-a-list", _principal(roles="viewer"), r"roles: expected a list"),
    ("star-inside", _principal(accounts=["a*b"]), r"accounts: 'a\*b'"),
    ("empty-account", _principal(accounts=[""]), r"accounts: ''"),
    ("unknown-key", _principal(role=["viewer"]), r"\(p\)\.role: unknown key"),
    ("bad-subject", _principal(cert_subject="OU=x"), r"cert_subject: expected 'CN="),
    ("same-name", _principal() + _principal(token_sha256=token_sha256("t-2")), r"\.name: the same"),
    ("same-token", _principal() + _principal(name="q"), r"principal\[1\] \(q\)\.token_sha256"),
    ("no-principals", "", r"principal: no \[\[principal\]\] tables"),
    ("top-level-key", "listen = 1\n" + _principal(), r"listen: unknown key"),
    ("malformed", "[[principal]\n", r"malformed TOML"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_files_are_one_line_naming_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(AuthFileError) as info:
        load_auth_file(path, mutual_tls=True)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"auth_file: {path}"), text
    assert re.search(message, text), text
    assert isinstance(info.value, SettingsError)  # the CLI prints it as one error line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AuthFileError, match=r"^auth_file: cannot read .*missing\.toml"):
        load_auth_file(tmp_path / "missing.toml", mutual_tls=False)


def test_token_command_prints_a_token_and_its_digest(capsys: pytest.CaptureFixture) -> None:
    from riskgate.cli import main

    assert main(["token"]) == 0
    lines = capsys.readouterr().out.splitlines()
    token = lines[0].split()[-1]
    assert len(token) >= 40
    assert lines[1] == f'token_sha256 = "{token_sha256(token)}"'


def test_found_tokens_are_remembered_and_unknown_ones_never(tmp_path: Path) -> None:
    from riskgate.server import auth as auth_module

    path = _write(tmp_path, _principal())
    auth = load_auth_file(path, mutual_tls=False)
    for _ in range(3):
        assert auth.by_token("nope") is None
    assert auth._known == {}
    assert auth.by_token("t-1") is auth.principals[0]
    assert list(auth._known) == ["t-1"]
    auth._known.clear()
    for k in range(auth_module.KNOWN_TOKENS):  # full: the next token found starts afresh
        auth._known[f"x{k}"] = auth.principals[0]
    assert auth.by_token("t-1") is auth.principals[0]
    assert list(auth._known) == ["t-1"]
