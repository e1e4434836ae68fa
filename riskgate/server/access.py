"""The access interceptor: identity, roles and account scopes, input checks and audit, for
every RiskGate call, in one place before the servicer (and so the engine) sees it.

Per call, on the deserialised request and before the servicer method runs:

1. **Identity** (:mod:`riskgate.server.auth`): the bearer token, else the mutual-TLS client
   certificate; none, or an unknown one -> UNAUTHENTICATED. Without an auth file every
   caller is :data:`~riskgate.server.auth.ANONYMOUS`.
2. **Undecodable request bytes** -> INVALID_ARGUMENT (grpc itself would say INTERNAL).
3. **Role and scope** (:data:`RULES`): the method's role, and every account the request
   names within the principal's scope (a batch is refused whole; a call about all accounts
   needs scope ``*``) -> else PERMISSION_DENIED naming the missing role or the account.
4. **Request shape** (:func:`~riskgate.server.validate.shape_check`): unknown enum
   numbers, empty map keys -> INVALID_ARGUMENT naming the field.

Audit: every refusal, and every state-changing call with its outcome, is an ``audit`` log
event (:func:`audit_record` builds it; more sinks, e.g. a journal, can be given). The order
path (CheckOrder, CheckOrders, ReportOrderEvent) is audited only with ``audit_order_path``:
a log line per order costs more than the decision; its decisions are logged by the servicer.

Health and reflection stay open. A method without a rule here is refused (fail closed).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message_factory import GetMessageClass

from riskgate.engine.events import ACTOR
from riskgate.server.auth import ANONYMOUS, AuthConfig, Principal
from riskgate.server.logging import get_logger
from riskgate.server.validate import clip, clip_message, shape_check
from riskgate.v1 import riskgate_pb2 as pb

__all__ = [
    "ALL_ACCOUNTS",
    "OPEN_SERVICES",
    "RULES",
    "AccessInterceptor",
    "Rule",
    "audit_record",
    "current_principal",
]

SERVICE = pb.DESCRIPTOR.services_by_name["RiskGate"].full_name
OPEN_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
     "grpc.reflection.v1.ServerReflection"}
)  # fmt: skip
AUDIT_ACCOUNTS = 20  # account ids listed in one audit record (the count is always given)


class _AllAccounts:
    def __repr__(self) -> str:
        return "ALL_ACCOUNTS"


ALL_ACCOUNTS: Any = _AllAccounts()  # a call about every account (kill switch, unfiltered stream)
Accounts = Sequence[str] | _AllAccounts | None  # None: the call is not about accounts


@dataclass(frozen=True)
class Rule:
    """Who may call a method: any of ``roles``, for the accounts ``accounts(request)`` names."""

    roles: frozenset[str]
    accounts: Callable[[Any], Accounts]
    changes_state: bool
    order_path: bool = False  # audited only with audit_order_path
    audit_extra: Callable[[Any], dict[str, Any]] | None = None  # fields for its audit record


def _order(r: pb.CheckOrderRequest) -> Accounts:
    return (r.order.account_id,)


def _orders(r: pb.CheckOrdersRequest) -> Accounts:
    return [o.account_id for o in r.orders]


def _account(r: Any) -> Accounts:
    return (r.account_id,)


def _trading_state(r: pb.SetTradingStateRequest) -> Accounts:
    return ALL_ACCOUNTS if r.all_accounts else (r.account_id,)


def _stream(r: pb.StreamMarginStatusRequest) -> Accounts:
    return list(r.account_ids) or ALL_ACCOUNTS


def _all(r: Any) -> Accounts:
    return ALL_ACCOUNTS


def _none(r: Any) -> Accounts:
    return None


def _override(r: pb.UpdateMarketRequest) -> dict[str, Any]:
    return {"override_guards": True} if r.override_guards else {}


def _rule(
    roles: str,
    accounts: Callable[[Any], Accounts],
    changes: bool,
    order: bool = False,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> Rule:
    return Rule(frozenset(roles.split()), accounts, changes, order, extra)


RULES: dict[str, Rule] = {
    "CheckOrder": _rule("gateway", _order, True, True),
    "CheckOrders": _rule("gateway", _orders, True, True),
    "WhatIf": _rule("gateway", _order, False, True),
    "MaxQuantity": _rule("gateway", _account, False, True),
    "ReportOrderEvent": _rule("gateway", _account, True, True),
    "UpsertAccount": _rule("account_admin", _account, True),
    "SetPositions": _rule("account_admin", _account, True),
    "SetTradingState": _rule("risk_officer", _trading_state, True),
    "UpdateMarket": _rule("market", _none, True, extra=_override),
    "GetAccount": _rule("gateway viewer", _account, False),
    # market data is about no account: any role may read what is listed
    "ListInstruments": _rule("gateway viewer market account_admin risk_officer", _none, False),
    "StreamMarginStatus": _rule("gateway viewer", _stream, False),
    # pre-trade controls: a group's limits can trip every account in it, so changing a
    # group is about all accounts (scope "*"); putting an account in a group is about it
    "UpsertGroup": _rule("risk_officer", _all, True),
    "SetAccountGroup": _rule("risk_officer", _account, True),
    "GetGroup": _rule("risk_officer viewer", _all, False),
}

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "riskgate_principal", default=None
)


def current_principal() -> Principal | None:
    """The principal of the audited (state-changing) call the servicer is running; None
    outside one (it is not set on the order path, to keep that path short)."""
    return _principal.get()


def audit_record(
    principal: str | None,
    method: str,
    accounts: Accounts,
    outcome: str,
    *,
    detail: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One audit record: who (``principal``; None if unauthenticated), what (``method``, the
    ``accounts`` it names: ids, ``ALL_ACCOUNTS`` or None), and ``outcome`` (``"OK"`` or a
    status code name), with the refusal's ``detail`` and ``extra`` fields. Plain data: the
    interceptor logs it; a journal can store it as it is."""
    rec: dict[str, Any] = {"principal": principal, "method": method, "outcome": outcome}
    if accounts is ALL_ACCOUNTS:
        rec["accounts"] = "*"
    elif accounts is not None:
        ids = list(dict.fromkeys(accounts))
        rec["accounts"] = [clip(a) for a in ids[:AUDIT_ACCOUNTS]]
        if len(ids) > AUDIT_ACCOUNTS:
            rec["accounts_total"] = len(ids)
    if detail is not None:
        rec["detail"] = detail
    rec.update(extra)
    return rec


class _Undecodable:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return _Undecodable(type(exc).__name__)

    return parse


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _code_name(context: grpc.ServicerContext) -> str:
    code = context.code()
    return "UNKNOWN" if code is None else getattr(code, "name", str(code))


def _metadata_token(metadata: Iterable[Any]) -> str | None:
    """The bearer token of the ``authorization`` metadata; None without one."""
    for key, value in metadata:
        if key != "authorization":
            continue
        if type(value) is str and value.startswith("Bearer ") and " " not in value[7:]:
            return value[7:]  # the usual form, without the general parse below
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Refused(
                grpc.StatusCode.UNAUTHENTICATED, "authorization: expected 'Bearer <token>'"
            )
        return token.strip()
    return None


def _text(values: Iterable[bytes | str]) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]


class AccessInterceptor(grpc.ServerInterceptor):
    """``auth``: the principals (None: unauthenticated, everyone is ANONYMOUS).
    ``mutual_tls``: client certificates are verified, so they identify callers.
    ``sinks``: callables given each audit record (default: the ``audit`` log event)."""

    def __init__(
        self,
        auth: AuthConfig | None,
        *,
        mutual_tls: bool = False,
        audit_order_path: bool = False,
        sinks: Sequence[Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        self.auth = auth
        self.mutual_tls = mutual_tls
        self.audit_order_path = audit_order_path
        self._log = get_logger("riskgate.audit")
        self.sinks = list(sinks) if sinks is not None else [self.log_record]
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._by_cn = auth is not None and any(
            p.cert_subject is not None and p.cert_subject[0] == "CN" for p in auth.principals
        )
        self._cert_principals: dict[Any, Principal] = {}  # see _by_certificate

    # ---- audit ----------------------------------------------------------------------------

    def log_record(self, record: dict[str, Any]) -> None:
        (self._log.info if record["outcome"] == "OK" else self._log.warning)("audit", **record)

    def audit(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink(record)
            except Exception:
                self._log.exception("audit_sink_failed", method=record.get("method"))

    # ---- identity and entitlements --------------------------------------------------------

    def authenticate(self, context: grpc.ServicerContext) -> Principal:
        """The caller's principal, or :class:`_Refused` (UNAUTHENTICATED)."""
        auth = self.auth
        if auth is None:
            return ANONYMOUS
        token = _metadata_token(context.invocation_metadata())
        if token is not None:
            found = auth.by_token(token)
            if found is None:
                raise _Refused(grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token")
            return found
        if self.mutual_tls:
            found = self._by_certificate(context, auth)
            if found is not None:
                return found
        raise _Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            "no credentials: send the metadata 'authorization: Bearer <token>'",
        )

    def _by_certificate(self, context: grpc.ServicerContext, auth: AuthConfig) -> Principal | None:
        """The principal of the verified client certificate; None without one.

        grpc's ``auth_context()`` costs about 3 µs a call, its peer identities a tenth of
        that: they are the certificate's CN when it has no SAN, else its SANs. So a
        certificate is known by its identities (and, when its CN is needed too because a
        principal is known by CN, by the connection), and read in full once."""
        key = context.peer_identity_key()
        if key is None:
            return None
        ids = tuple(context.peer_identities() or ())
        seen = (key, ids) if key == "x509_common_name" or not self._by_cn else (context.peer(), ids)
        found = self._cert_principals.get(seen)
        if found is not None:
            return found
        if key == "x509_common_name":
            cns, sans = _text(ids), []
        else:
            sans = _text(ids)
            cns = _text(context.auth_context().get("x509_common_name", ())) if self._by_cn else []
        matches = auth.by_certificate(cns, sans)
        if len(matches) == 1:
            if len(self._cert_principals) >= 1024:
                self._cert_principals.clear()
            self._cert_principals[seen] = matches[0]
            return matches[0]
        who = clip(f"CN={cns[0]}" if cns else f"SAN={sans[0]}" if sans else "without names")
        if matches:
            raise _Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"client certificate {who} matches several principals "
                f"({', '.join(p.name for p in matches)})",
            )
        raise _Refused(
            grpc.StatusCode.UNAUTHENTICATED, f"client certificate {who} is not a known principal"
        )

    @staticmethod
    def authorize(principal: Principal, method: str, rule: Rule, accounts: Accounts) -> None:
        """:class:`_Refused` (PERMISSION_DENIED) unless ``principal`` may call ``method``
        for ``accounts``."""
        if rule.roles.isdisjoint(principal.roles):
            need = " or ".join(sorted(rule.roles))
            raise _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} needs role {need}; principal {principal.name} has "
                f"{', '.join(sorted(principal.roles))}",
            )
        if accounts is None:
            return
        scope = principal.scope
        if accounts is ALL_ACCOUNTS:
            if not scope.everything:
                raise _Refused(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{method} for all accounts needs account scope '*'; principal "
                    f"{principal.name} has {clip(scope.describe(), 200)}",
                )
            return
        if scope.everything:
            return
        for account_id in accounts:
            if not scope.covers(account_id):
                raise _Refused(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"account {clip(account_id)!r} is outside the scope of principal "
                    f"{principal.name}",
                )

    # ---- the interceptor ------------------------------------------------------------------

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._handlers.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._handlers[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, _, name = method.lstrip("/").rpartition("/")
        if service in OPEN_SERVICES:
            return handler
        rule = RULES.get(name) if service == SERVICE else None
        deserializer = _tolerant(handler.request_deserializer)
        if rule is not None and handler.unary_unary is not None:
            behavior = self._guarded(name, rule, handler.unary_unary)
            return grpc.unary_unary_rpc_method_handler(
                behavior, deserializer, handler.response_serializer
            )
        if rule is not None and handler.unary_stream is not None:
            behavior = self._guarded(name, rule, handler.unary_stream)
            return grpc.unary_stream_rpc_method_handler(
                behavior, deserializer, handler.response_serializer
            )
        return self._refuse_all(method, handler)

    def _refuse_all(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """A method this module has no rule for: refused, whoever calls."""
        message = f"{clip(method, 200)}: no access rule for this method"

        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            self.audit(
                audit_record(None, method, None, "PERMISSION_DENIED", detail=message,
                             peer=context.peer())
            )  # fmt: skip
            context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make = kinds[(handler.request_streaming, handler.response_streaming)]
        return make(refuse, handler.request_deserializer, handler.response_serializer)

    def _guarded(self, name: str, rule: Rule, inner: Callable[..., Any]) -> Callable[..., Any]:
        audited = rule.changes_state and (self.audit_order_path or not rule.order_path)
        accounts_of, extra_of = rule.accounts, rule.audit_extra
        authenticate, authorize, audit = self.authenticate, self.authorize, self.audit
        scoped = self.auth is not None  # without an auth file everyone may do everything
        method = pb.DESCRIPTOR.services_by_name["RiskGate"].methods_by_name[name]
        check = shape_check(GetMessageClass(method.input_type))

        def refuse(
            context: grpc.ServicerContext,
            exc: _Refused,
            principal: Principal | None,
            accounts: Accounts,
        ) -> None:
            message = clip_message(exc.message)
            audit(
                audit_record(
                    principal.name if principal else None, name, accounts, exc.code.name,
                    detail=message, peer=context.peer(),
                )
            )  # fmt: skip
            context.abort(exc.code, message)

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            principal = None
            accounts: Accounts = None
            try:
                principal = authenticate(context)
                if type(request) is _Undecodable:
                    raise _Refused(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"request: cannot decode the {name} request ({request.error})",
                    )
                if scoped:
                    accounts = accounts_of(request)
                    authorize(principal, name, rule, accounts)
                if check is not None:
                    problem = check(request)
                    if problem is not None:
                        raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, problem)
            except _Refused as exc:
                if accounts is None and type(request) is not _Undecodable:
                    accounts = accounts_of(request)
                refuse(context, exc, principal, accounts)
            if not audited:  # streams included: a stream's body runs as it is iterated
                actor = ACTOR.set(principal.name)
                try:
                    return inner(request, context)
                finally:
                    ACTOR.reset(actor)
            if accounts is None:
                accounts = accounts_of(request)
            extra = extra_of(request) if extra_of else {}
            token, actor = _principal.set(principal), ACTOR.set(principal.name)
            try:
                response = inner(request, context)
            except BaseException:
                audit(audit_record(principal.name, name, accounts, _code_name(context), **extra))
                raise
            finally:
                _principal.reset(token)
                ACTOR.reset(actor)
            audit(audit_record(principal.name, name, accounts, "OK", **extra))
            return response

        pool = getattr(inner, "experimental_thread_pool", None)
        if pool is not None:
            behavior.experimental_thread_pool = pool  # type: ignore[attr-defined]
        behavior.__name__ = getattr(inner, "__name__", name)
        return behavior
