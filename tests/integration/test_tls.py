"""TLS and mutual TLS on the gRPC port (tls_cert_file / tls_key_file / tls_client_ca_file),
with certificates made for the test: a CA, a server certificate for 127.0.0.1 and a client
certificate, plus one client certificate from a CA the server does not trust."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from riskgate.cli import main as cli_main
from riskgate.client import RiskGateClient
from riskgate.config import SettingsError
from riskgate.server.app import RiskGateServer, ServeError
from tests.reference.pki import cert as _cert
from tests.reference.pki import name as _name
from tests.reference.pki import new_key
from tests.reference.pki import write as _write
from tests.reference.servers import server_settings, serving

T = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ca_key = new_key()
    ca = _cert("riskgate test CA", ca_key, _name("riskgate test CA"), ca_key, ca=True)
    srv_key = new_key()
    srv = _cert("riskgate", srv_key, ca.subject, ca_key, ca=False, ip="127.0.0.1")
    cli_key = new_key()
    cli = _cert("gateway-1", cli_key, ca.subject, ca_key, ca=False)
    other_key = new_key()
    other_ca = _cert("other CA", other_key, _name("other CA"), other_key, ca=True)
    rogue_key = new_key()
    rogue = _cert("rogue", rogue_key, other_ca.subject, other_key, ca=False)
    return {
        "ca": _write(d / "ca.pem", ca),
        "server_cert": _write(d / "server.pem", srv),
        "server_key": _write(d / "server.key", key=srv_key),
        "client_cert": _write(d / "client.pem", cli),
        "client_key": _write(d / "client.key", key=cli_key),
        "rogue_cert": _write(d / "rogue.pem", rogue),
        "rogue_key": _write(d / "rogue.key", key=rogue_key),
        "not_pem": _write(d / "empty.pem"),
    }


def _creds(pki: dict[str, str], cert: str | None = None, key: str | None = None):
    def read(p: str | None) -> bytes | None:
        return Path(p).read_bytes() if p else None

    return grpc.ssl_channel_credentials(read(pki["ca"]), read(key), read(cert))


def _account_ok(target: str, credentials) -> bool:
    try:
        with RiskGateClient(target, admin_timeout_s=T, credentials=credentials) as c:
            return c.get_account("demo-1").account_id == "demo-1"
    except grpc.RpcError:
        return False


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, str]) -> Iterator[RiskGateServer]:
    s = server_settings(
        demo_accounts=1,
        log_level="warning",
        tls_cert_file=pki["server_cert"],
        tls_key_file=pki["server_key"],
    )
    with serving(s, grace_s=0) as srv:
        yield srv


def test_tls_clients_trusting_the_ca_get_answers_plaintext_ones_do_not(
    tls_server: RiskGateServer, pki: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    target = f"127.0.0.1:{tls_server.port}"
    assert _account_ok(target, _creds(pki))
    assert not _account_ok(target, None)  # plaintext against a TLS port
    # the command-line client, over TLS
    args = ["account", "demo-1", "--target", target, "--tls-ca", pki["ca"], "--json"]
    assert cli_main(args) == 0
    assert '"account_id": "demo-1"' in capsys.readouterr().out


def test_mutual_tls_requires_a_client_certificate_from_the_ca(pki: dict[str, str]) -> None:
    s = server_settings(
        demo_accounts=1,
        log_level="warning",
        tls_cert_file=pki["server_cert"],
        tls_key_file=pki["server_key"],
        tls_client_ca_file=pki["ca"],
    )
    with serving(s, grace_s=0) as srv:
        target = f"127.0.0.1:{srv.port}"
        assert _account_ok(target, _creds(pki, pki["client_cert"], pki["client_key"]))
        assert not _account_ok(target, _creds(pki))  # no client certificate
        assert not _account_ok(target, _creds(pki, pki["rogue_cert"], pki["rogue_key"]))


def test_bad_tls_settings_are_clear_errors(pki: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="give both or neither"):
        server_settings(tls_cert_file=pki["server_cert"])
    with pytest.raises(SettingsError, match="tls_client_ca_file"):
        server_settings(tls_client_ca_file=pki["ca"])
    good = {"tls_cert_file": pki["server_cert"], "tls_key_file": pki["server_key"]}
    for changes, message in (
        ({"tls_cert_file": str(tmp_path / "missing.pem")}, "^tls_cert_file: cannot read"),
        ({"tls_key_file": pki["not_pem"]}, "^tls_key_file: .* is not a PEM file"),
        ({"tls_key_file": pki["client_key"]}, "^tls_cert_file / tls_key_file: .* private key"),
        ({"tls_client_ca_file": pki["server_key"]}, "^tls_client_ca_file: .* no usable CA"),
    ):
        srv = RiskGateServer(server_settings(demo=False, **(good | changes)))
        with pytest.raises(ServeError, match=message):
            srv.start()
        srv.stop(grace=0)
    # an empty path is no setting at all
    assert not server_settings(tls_cert_file="", tls_key_file="").tls


def test_bad_client_tls_files_are_clear_errors(
    pki: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    # (grpc itself aborts the process on an empty key file)
    base = ["account", "demo-1", "--target", "127.0.0.1:1", "--tls-ca", pki["ca"]]
    for extra, message in (
        (["--tls-cert", pki["client_cert"], "--tls-key", pki["not_pem"]], "--tls-key: .* PEM"),
        (
            ["--tls-cert", pki["client_cert"], "--tls-key", pki["rogue_key"]],
            "--tls-cert / --tls-key",
        ),
        (["--tls-cert", pki["client_cert"]], "--tls-cert and --tls-key go together"),
    ):
        assert cli_main(base + extra) == 2
        err = capsys.readouterr().err
        assert re.search(message, err), err
    assert cli_main(["account", "demo-1", "--tls-ca", pki["client_key"]]) == 2
    assert "--tls-ca" in capsys.readouterr().err
