"""Access control on a live server: every RPC × every role × an account in and out of scope
gets the expected status, refused calls change nothing, callers without valid credentials
are UNAUTHENTICATED, and health and reflection stay open. Tokens are made per test run;
certificates for the mutual-TLS case are made at test time."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from riskgate.cli import main as cli_main
from riskgate.config import SettingsError
from riskgate.server.app import RiskGateServer
from riskgate.server.auth import token_sha256
from riskgate.v1 import riskgate_pb2 as pb
from riskgate.v1 import riskgate_pb2_grpc
from tests.reference.pki import cert, name, new_key, write
from tests.reference.servers import server_settings, serving

T = 10.0
C = grpc.StatusCode
PERP = "BTC-PERPETUAL"
IN, OUT = "desk-a-1", "desk-b-1"
# principal -> (roles, accounts); every principal gets a fresh random token
PRINCIPALS: dict[str, tuple[list[str], list[str]]] = {
    "root": (["gateway", "account_admin", "market", "risk_officer", "viewer"], ["*"]),
    "gw": (["gateway"], ["desk-a-*", "acct-x"]),
    "admin": (["account_admin"], ["desk-a-*"]),
    "feed": (["market"], []),
    "ro": (["risk_officer"], ["desk-a-*"]),
    "ro-all": (["risk_officer"], ["*"]),
    "viewer": (["viewer"], ["desk-a-*"]),
}
ROLE_OF = {"gw": "gateway", "admin": "account_admin", "feed": "market", "ro": "risk_officer",
           "viewer": "viewer"}  # fmt: skip
# Written out here, not taken from the server's table: which role may call which RPC.
MAY_CALL = {
    "CheckOrder": {"gateway"},
    "CheckOrders": {"gateway"},
    "WhatIf": {"gateway"},
    "MaxQuantity": {"gateway"},
    "ReportOrderEvent": {"gateway"},
    "UpsertAccount": {"account_admin"},
    "SetPositions": {"account_admin"},
    "SetTradingState": {"risk_officer"},
    "UpdateMarket": {"market"},
    "GetAccount": {"gateway", "viewer"},
    "ListInstruments": {"gateway", "viewer", "market", "account_admin", "risk_officer"},
    "StreamMarginStatus": {"gateway", "viewer"},
    "UpsertGroup": {"risk_officer"},
    "SetAccountGroup": {"risk_officer"},
    "GetGroup": {"risk_officer", "viewer"},
}
NOT_ABOUT_ACCOUNTS = {"UpdateMarket", "ListInstruments"}
# a group's limits bind every account in it: these need account scope "*"
ABOUT_ALL_ACCOUNTS = {"UpsertGroup", "GetGroup"}
_seq = iter(range(10**9))


def _order(account: str) -> pb.Order:
    return pb.Order(
        account_id=account, client_order_id=f"acc-{next(_seq)}", symbol=PERP,
        side=pb.SIDE_BUY, order_type=pb.ORDER_TYPE_MARKET, quantity=0.001,
    )  # fmt: skip


# RPC -> a request about ``account`` that is harmless when allowed
REQUESTS: dict[str, Callable[[str], Any]] = {
    "CheckOrder": lambda a: pb.CheckOrderRequest(order=_order(a)),
    "CheckOrders": lambda a: pb.CheckOrdersRequest(orders=[_order(a)]),
    "WhatIf": lambda a: pb.CheckOrderRequest(order=_order(a)),
    "MaxQuantity": lambda a: pb.MaxQuantityRequest(account_id=a, symbol=PERP),
    "ReportOrderEvent": lambda a: pb.OrderEvent(
        account_id=a, client_order_id="never-checked", cancelled=pb.Cancelled()
    ),
    "UpsertAccount": lambda a: pb.UpsertAccountRequest(account_id=a, collateral={"USD": 1e6}),
    "SetPositions": lambda a: pb.SetPositionsRequest(
        account_id=a, positions=[pb.Position(symbol=PERP, quantity=1.0)]
    ),
    "SetTradingState": lambda a: pb.SetTradingStateRequest(
        account_id=a, state=pb.TRADING_STATE_ACTIVE
    ),
    "UpdateMarket": lambda a: pb.UpdateMarketRequest(index_usd={"BTC": 70_000.0}),
    "GetAccount": lambda a: pb.GetAccountRequest(account_id=a),
    "ListInstruments": lambda a: pb.ListInstrumentsRequest(underlying="BTC"),
    "StreamMarginStatus": lambda a: pb.StreamMarginStatusRequest(
        account_ids=[a], include_current=True
    ),
    "UpsertGroup": lambda a: pb.UpsertGroupRequest(group_id=f"group-{a}"),
    "SetAccountGroup": lambda a: pb.SetAccountGroupRequest(account_id=a),
    "GetGroup": lambda a: pb.GetGroupRequest(group_id=f"group-{a}"),
}
assert (
    set(REQUESTS)
    == set(MAY_CALL)
    == set(pb.DESCRIPTOR.services_by_name["RiskGate"].methods_by_name)
)


def _auth_file(path: Path, tokens: dict[str, str], extra: str = "") -> str:
    lines = []
    for who, (roles, accounts) in PRINCIPALS.items():
        lines += [
            "[[principal]]",
            f'name = "{who}"',
            f'token_sha256 = "{token_sha256(tokens[who])}"',
            "roles = [" + ", ".join(f'"{r}"' for r in roles) + "]",
            "accounts = [" + ", ".join(f'"{a}"' for a in accounts) + "]",
            "",
        ]
    path.write_text("\n".join(lines) + extra)
    return str(path)


class Env:
    def __init__(self, server: RiskGateServer, tokens: dict[str, str]) -> None:
        self.server = server
        self.tokens = tokens
        self.channel = grpc.insecure_channel(server.address)
        self.stub = riskgate_pb2_grpc.RiskGateStub(self.channel)
        self.records: list[dict[str, Any]] = []
        assert server.access is not None
        server.access.sinks.append(self.records.append)

    def md(self, who: str | None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[who]}"),) if who else ()

    def call(self, rpc: str, request: Any, who: str | None, metadata: Any = None) -> Any:
        """The response (the first message of a stream), or the grpc.RpcError."""
        md = self.md(who) if metadata is None else metadata
        try:
            if rpc == "StreamMarginStatus":
                stream = self.stub.StreamMarginStatus(request, timeout=T, metadata=md)
                try:
                    return next(stream)
                finally:
                    stream.cancel()
            return getattr(self.stub, rpc)(request, timeout=T, metadata=md)
        except grpc.RpcError as exc:
            return exc

    def state(self) -> tuple[Any, ...]:
        views = [
            self.stub.GetAccount(
                pb.GetAccountRequest(account_id=a), timeout=T, metadata=self.md("root")
            )
            for a in (IN, OUT)
        ]
        return tuple(v.SerializeToString(deterministic=True) for v in views)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tokens = {who: f"tok-{who}-{secrets.token_hex(16)}" for who in PRINCIPALS}
    path = _auth_file(tmp_path_factory.mktemp("auth") / "auth.toml", tokens)
    settings = server_settings(demo_accounts=1, log_level="warning", auth_file=path)
    with serving(settings, grace_s=0) as srv:
        e = Env(srv, tokens)
        for account in (IN, OUT):
            e.call("UpsertAccount", REQUESTS["UpsertAccount"](account), "root")
            e.call("SetPositions", REQUESTS["SetPositions"](account), "root")
        try:
            yield e
        finally:
            e.channel.close()


@contextmanager
def unchanged(env: Env) -> Iterator[None]:
    before = env.state()
    yield
    assert env.state() == before


def _cases() -> list[Any]:
    out = []
    for rpc in MAY_CALL:
        for who in ROLE_OF:
            for account in (IN, OUT):
                out.append(pytest.param(rpc, who, account, id=f"{rpc}-{who}-{account}"))
    return out


@pytest.mark.parametrize(("rpc", "who", "account"), _cases())
def test_every_rpc_every_role_in_and_out_of_scope(env: Env, rpc: str, who: str, account: str):
    allowed_role = ROLE_OF[who] in MAY_CALL[rpc]
    about_accounts = rpc not in NOT_ABOUT_ACCOUNTS
    request = REQUESTS[rpc](account)
    if allowed_role and (account == IN or not about_accounts) and rpc not in ABOUT_ALL_ACCOUNTS:
        result = env.call(rpc, request, who)
        if isinstance(result, grpc.RpcError):  # an engine answer, not a refusal
            assert (rpc, result.code()) in (
                ("ReportOrderEvent", C.NOT_FOUND),
                ("GetGroup", C.NOT_FOUND),
            ), result
        return
    n = len(env.records)
    with unchanged(env):
        result = env.call(rpc, request, who)
    assert isinstance(result, grpc.RpcError), result
    assert result.code() == C.PERMISSION_DENIED, result
    if not allowed_role:
        need = " or ".join(sorted(MAY_CALL[rpc]))
        assert f"{rpc} needs role {need}" in result.details()
    elif rpc in ABOUT_ALL_ACCOUNTS:  # every principal here is scoped to desk-a-*
        assert f"{rpc} for all accounts needs account scope '*'" in result.details()
    else:
        assert f"account '{account}' is outside the scope of principal {who}" in result.details()
    # the refusal is audited with the principal, the method and the account
    record = env.records[n]
    assert record["principal"] == who and record["method"] == rpc
    assert record["outcome"] == "PERMISSION_DENIED"
    if rpc in ABOUT_ALL_ACCOUNTS:
        assert record["accounts"] == "*"
    elif about_accounts:
        assert record["accounts"] == [account]


@pytest.mark.parametrize("rpc", list(MAY_CALL))
@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer not-a-token"),), (("authorization", "Basic dXNlcjpwdw=="),)],
    ids=["no-token", "unknown-token", "not-bearer"],
)
def test_without_valid_credentials_every_rpc_is_unauthenticated(
    env: Env, rpc: str, metadata: Any
) -> None:
    n = len(env.records)
    with unchanged(env):
        result = env.call(rpc, REQUESTS[rpc](IN), None, metadata=metadata)
    assert isinstance(result, grpc.RpcError) and result.code() == C.UNAUTHENTICATED, result
    assert env.records[n]["principal"] is None
    assert env.records[n]["outcome"] == "UNAUTHENTICATED"
    assert "not-a-token" not in result.details() and "dXNlcjpwdw" not in result.details()


def test_health_and_reflection_stay_open(env: Env) -> None:
    health = health_pb2_grpc.HealthStub(env.channel)
    resp = health.Check(health_pb2.HealthCheckRequest(service="riskgate.v1.RiskGate"), timeout=T)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(env.channel)
    answer = refl.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=T
    )
    names = {s.name for s in next(answer).list_services_response.service}
    assert "riskgate.v1.RiskGate" in names
    v1 = env.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    answer = v1(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=T)
    assert "riskgate.v1.RiskGate" in {s.name for s in next(answer).list_services_response.service}


def test_only_a_risk_officer_with_scope_star_flips_the_kill_switch(env: Env) -> None:
    kill = pb.SetTradingStateRequest(all_accounts=True, state=pb.TRADING_STATE_ACTIVE)
    for who, message in (
        ("gw", "SetTradingState needs role risk_officer"),
        ("viewer", "SetTradingState needs role risk_officer"),
        (
            "ro",
            "SetTradingState for all accounts needs account scope '*'; principal ro has desk-a-*",
        ),
    ):
        with unchanged(env):
            result = env.call("SetTradingState", kill, who)
        assert isinstance(result, grpc.RpcError) and result.code() == C.PERMISSION_DENIED
        assert message in result.details()
    resp = env.call("SetTradingState", kill, "ro-all")
    assert resp.accounts_affected >= 2
    assert env.records[-1] == {
        "principal": "ro-all", "method": "SetTradingState", "outcome": "OK", "accounts": "*",
    }  # fmt: skip


def test_a_batch_with_one_account_out_of_scope_is_refused_whole(env: Env) -> None:
    batch = pb.CheckOrdersRequest(orders=[_order(IN), _order(IN), _order(OUT), _order(IN)])
    with unchanged(env):  # nothing reserved on the in-scope account either
        result = env.call("CheckOrders", batch, "gw")
    assert isinstance(result, grpc.RpcError) and result.code() == C.PERMISSION_DENIED
    assert f"'{OUT}'" in result.details()
    assert env.records[-1]["accounts"] == [IN, OUT]


def test_a_stream_of_every_account_needs_scope_star(env: Env) -> None:
    everything = pb.StreamMarginStatusRequest(include_current=True)
    result = env.call("StreamMarginStatus", everything, "viewer")
    assert isinstance(result, grpc.RpcError) and result.code() == C.PERMISSION_DENIED
    assert "for all accounts needs account scope '*'" in result.details()
    assert env.call("StreamMarginStatus", everything, "root").account_id


def test_state_changes_are_audited_and_the_order_path_is_not_by_default(env: Env) -> None:
    n = len(env.records)
    env.call("UpsertAccount", REQUESTS["UpsertAccount"](IN), "admin")
    env.call("CheckOrder", REQUESTS["CheckOrder"](IN), "gw")
    env.call("GetAccount", REQUESTS["GetAccount"](IN), "gw")
    failed = env.call("SetTradingState", pb.SetTradingStateRequest(account_id="desk-a-none",
                                                                   state=1), "ro")  # fmt: skip
    assert isinstance(failed, grpc.RpcError) and failed.code() == C.NOT_FOUND
    assert env.records[n:] == [
        {"principal": "admin", "method": "UpsertAccount", "outcome": "OK", "accounts": [IN]},
        {"principal": "ro", "method": "SetTradingState", "outcome": "NOT_FOUND",
         "accounts": ["desk-a-none"]},
    ]  # fmt: skip


def test_tokens_never_reach_the_logs(env: Env, capsys: pytest.CaptureFixture) -> None:
    env.call("GetAccount", REQUESTS["GetAccount"](OUT), "gw")
    env.call("UpsertAccount", REQUESTS["UpsertAccount"](IN), "admin")
    logged = capsys.readouterr().err
    assert "PERMISSION_DENIED" in logged
    for token in env.tokens.values():
        assert token not in logged and token_sha256(token) not in logged


def test_the_cli_and_client_send_the_token(
    env: Env, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = ["--target", env.server.address]
    assert cli_main(["account", IN, *target, "--json", "--token", env.tokens["viewer"]]) == 0
    assert f'"account_id": "{IN}"' in capsys.readouterr().out
    assert cli_main(["account", IN, *target]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    monkeypatch.setenv("RISKGATE_TOKEN", env.tokens["gw"])
    assert cli_main(["check", IN, PERP, "buy", "0.001", *target, "--whatif"]) in (0, 1)
    assert cli_main(["check", OUT, PERP, "buy", "0.001", *target]) == 2
    assert f"PERMISSION_DENIED: account '{OUT}'" in capsys.readouterr().err
    from riskgate.client import RiskGateClient

    with RiskGateClient(env.server.address, token=env.tokens["gw"]) as client:
        assert client.get_account(IN).account_id == IN
        assert client.max_quantity(IN, PERP).account_id == IN


# ---- start-up ------------------------------------------------------------------------------


def test_without_an_auth_file_only_loopback_unless_allowed(tmp_path: Path) -> None:
    for address in ("0.0.0.0:0", "[::]:0", ":50051", "10.1.2.3:50051"):
        with pytest.raises(SettingsError, match=r"^listen_address: .* allow_unauthenticated"):
            server_settings(listen_address=address)
    assert server_settings(listen_address="0.0.0.0:0", allow_unauthenticated=True)
    assert server_settings(listen_address="0.0.0.0:0", auth_file=str(tmp_path / "a.toml"))
    for address in ("127.0.0.1:0", "[::1]:0", "localhost:0", "unix:/tmp/riskgate.sock"):
        assert server_settings(listen_address=address)


def test_an_unauthenticated_server_says_so(capsys: pytest.CaptureFixture) -> None:
    with serving(server_settings(demo=False, log_level="warning"), grace_s=0) as srv:
        assert srv.access is not None and srv.access.auth is None
    assert '"event": "unauthenticated"' in capsys.readouterr().err


def test_serve_with_a_bad_auth_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "auth.toml"
    bad.write_text('[[principal]]\nname = "x"\ntoken_sha256 = "00"\nroles = ["viewer"]\n')
    args = ["serve", "--auth", str(bad), "--listen", "127.0.0.1:0", "--no-demo"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"riskgate serve: error: auth_file: {bad}: principal[0] (x).token_sha256: "
        "expected a sha256 hex digest (64 hex digits)"
    )


# ---- mutual TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RiskGateServer, dict]]:
    d = tmp_path_factory.mktemp("mtls")
    ca_key = new_key()
    ca = cert("test CA", ca_key, name("test CA"), ca_key, ca=True)
    files: dict[str, Any] = {"ca": write(d / "ca.pem", ca)}
    srv_key = new_key()
    srv_cert = cert("riskgate", srv_key, ca.subject, ca_key, ca=False, ip="127.0.0.1")
    for who, dns in (
        ("gw-cert", ()),
        ("someone", ("viewer.desk.example",)),
        ("stranger", ()),
        ("gw-both", ("unlisted.desk.example",)),
    ):
        key = new_key()
        c = cert(who, key, ca.subject, ca_key, ca=False, dns=dns)
        files[who] = (write(d / f"{who}.pem", c), write(d / f"{who}.key", key=key))
    token = f"tok-{secrets.token_hex(16)}"
    auth = d / "auth.toml"
    auth.write_text(
        f"""
[[principal]]
name = "gw-cert"
cert_subject = "CN=gw-cert"
roles = ["gateway"]
accounts = ["demo-*"]

[[principal]]
name = "gw-by-cn"
cert_subject = "CN=gw-both"
roles = ["gateway"]
accounts = ["demo-*"]

[[principal]]
name = "viewer-san"
cert_subject = "SAN=viewer.desk.example"
roles = ["viewer"]
accounts = ["*"]

[[principal]]
name = "by-token"
token_sha256 = "{token_sha256(token)}"
roles = ["viewer"]
accounts = ["*"]
"""
    )
    files["token"] = token
    settings = server_settings(
        demo_accounts=1,
        log_level="warning",
        tls_cert_file=write(d / "server.pem", srv_cert),
        tls_key_file=write(d / "server.key", key=srv_key),
        tls_client_ca_file=files["ca"],
        auth_file=str(auth),
    )
    with serving(settings, grace_s=0) as srv:
        yield srv, files


def _tls_stub(srv: RiskGateServer, files: dict, who: str) -> Any:
    cert_file, key_file = files[who]
    creds = grpc.ssl_channel_credentials(
        Path(files["ca"]).read_bytes(), Path(key_file).read_bytes(), Path(cert_file).read_bytes()
    )
    return riskgate_pb2_grpc.RiskGateStub(grpc.secure_channel(f"127.0.0.1:{srv.port}", creds))


def test_mutual_tls_certificates_identify_by_cn_or_san(mtls: tuple[RiskGateServer, dict]) -> None:
    srv, files = mtls
    get = pb.GetAccountRequest(account_id="demo-1")
    whatif = REQUESTS["WhatIf"]("demo-1")
    gw = _tls_stub(srv, files, "gw-cert")
    assert gw.GetAccount(get, timeout=T).account_id == "demo-1"
    assert gw.WhatIf(whatif, timeout=T).account_id == "demo-1"
    viewer = _tls_stub(srv, files, "someone")  # CN someone, SAN viewer.desk.example
    assert viewer.GetAccount(get, timeout=T).account_id == "demo-1"
    with pytest.raises(grpc.RpcError) as err:
        viewer.WhatIf(whatif, timeout=T)
    assert err.value.code() == C.PERMISSION_DENIED
    assert "principal viewer-san has viewer" in err.value.details()
    # known by its CN although the certificate has SANs (read once per connection)
    both = _tls_stub(srv, files, "gw-both")
    for _ in range(3):
        assert both.WhatIf(whatif, timeout=T).account_id == "demo-1"
    stranger = _tls_stub(srv, files, "stranger")
    with pytest.raises(grpc.RpcError) as err:
        stranger.GetAccount(get, timeout=T)
    assert err.value.code() == C.UNAUTHENTICATED
    assert "client certificate CN=stranger is not a known principal" in err.value.details()
    # a bearer token identifies the caller whatever certificate it connected with
    md = (("authorization", f"Bearer {files['token']}"),)
    assert stranger.GetAccount(get, timeout=T, metadata=md).account_id == "demo-1"


class _CertContext:
    """A servicer context with a verified client certificate (as grpc reports one)."""

    def __init__(self, cn: str, sans: tuple[str, ...]) -> None:
        self.cn, self.sans, self.auth_context_calls = cn, sans, 0

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def peer_identity_key(self) -> str:
        return "x509_subject_alternative_name" if self.sans else "x509_common_name"

    def peer_identities(self) -> list[bytes]:
        return [s.encode() for s in self.sans] if self.sans else [self.cn.encode()]

    def auth_context(self) -> dict[str, list[bytes]]:
        self.auth_context_calls += 1
        return {"x509_common_name": [self.cn.encode()]}


def test_certificate_names_read_grpc_auth_context_only_when_needed(tmp_path: Path) -> None:
    from riskgate.server.access import AccessInterceptor
    from riskgate.server.auth import load_auth_file

    path = tmp_path / "auth.toml"
    san_only = '[[principal]]\nname = "s"\ncert_subject = "SAN=a.example"\nroles = ["viewer"]\n'
    path.write_text(san_only)
    icpt = AccessInterceptor(load_auth_file(path, mutual_tls=True), mutual_tls=True)
    ctx = _CertContext("a", ("a.example", "b.example"))
    assert icpt.authenticate(ctx).name == "s"  # type: ignore[arg-type]
    assert ctx.auth_context_calls == 0
    path.write_text(
        san_only + '[[principal]]\nname = "c"\ncert_subject = "CN=c"\nroles = ["viewer"]\n'
    )
    icpt = AccessInterceptor(load_auth_file(path, mutual_tls=True), mutual_tls=True)
    ctx = _CertContext("c", ("z.example",))
    for _ in range(3):
        assert icpt.authenticate(ctx).name == "c"  # type: ignore[arg-type]
    assert ctx.auth_context_calls == 1
    ambiguous = _CertContext("c", ("a.example",))
    with pytest.raises(Exception, match="matches several principals"):
        icpt.authenticate(ambiguous)  # type: ignore[arg-type]
    no_san = _CertContext("c", ())
    assert icpt.authenticate(no_san).name == "c"  # type: ignore[arg-type]
    assert no_san.auth_context_calls == 0


def test_the_journal_names_the_principal_of_each_change_and_keeps_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    tokens = {who: f"tok-{who}-{secrets.token_hex(16)}" for who in PRINCIPALS}
    path = _auth_file(tmp_path / "auth.toml", tokens)
    data = tmp_path / "data"
    settings = server_settings(demo_accounts=1, log_level="warning", auth_file=path,
                               data_dir=str(data))  # fmt: skip
    with serving(settings, grace_s=0) as srv:
        e = Env(srv, tokens)
        try:
            assert not isinstance(
                e.call("UpsertAccount", REQUESTS["UpsertAccount"](IN), "admin"), grpc.RpcError
            )
            assert not isinstance(
                e.call("CheckOrder", REQUESTS["CheckOrder"](IN), "gw"), grpc.RpcError
            )
            refused = e.call("SetTradingState", REQUESTS["SetTradingState"](IN), "viewer")
            assert isinstance(refused, grpc.RpcError) and refused.code() == C.PERMISSION_DENIED
            unknown = e.call("GetAccount", REQUESTS["GetAccount"](IN), None,
                             metadata=(("authorization", "Bearer nope"),))  # fmt: skip
            assert isinstance(unknown, grpc.RpcError)
        finally:
            e.channel.close()
    assert cli_main(["journal", "inspect", str(data), "--account", IN]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    kinds = [(ev["type"], ev["principal"]) for ev in events]
    assert ("account_upserted", "admin") in kinds
    assert ("order_accepted", "gw") in kinds
    denied = [ev for ev in events if ev["type"] == "audited"]
    assert [(d["principal"], d["method"], d["outcome"]) for d in denied] == [
        ("viewer", "SetTradingState", "PERMISSION_DENIED"),
        ("", "GetAccount", "UNAUTHENTICATED"),  # no principal: the token is unknown
    ]
    assert cli_main(["journal", "inspect", str(data), "--type", "audited"]) == 0
    audited = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {"UNAUTHENTICATED"} <= {a["outcome"] for a in audited}
    assert cli_main(["journal", "verify", str(data)]) == 0
