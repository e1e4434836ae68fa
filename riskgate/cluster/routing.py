"""The "not owner" answer: a gRPC interceptor that lets a call through only on the owner of
the shard its accounts are on.

A call this process must not serve is refused with status ``FAILED_PRECONDITION``, a
message starting ``not owner:``, and trailing metadata a client follows:

- ``riskgate-shard``: the shard the call belongs to;
- ``riskgate-owner``: that shard's owner as the shard map says (``HOST:PORT``), absent
  while it is not known (a failover under way: ask the shard map again shortly).

Which calls: every RiskGate call naming accounts (orders, venue events, admin, queries)
goes to the owner of each account's shard (a batch must be all on one shard); a call about
all accounts (the kill switch, an unfiltered status stream) and ``UpdateMarket`` need an
owner (of any shard: the kill switch then applies to that shard's accounts; a market
update is published to every shard); ``ListInstruments`` is answered by standbys too.
A unary call that was let through but finds the process stepped down when it returns (its
journal write was refused: another owner took over meanwhile) is refused the same way, so
a stale owner's reply never reaches a client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from riskgate.cluster.node import ClusterNode
from riskgate.cluster.sharding import shard_of
from riskgate.server.access import ALL_ACCOUNTS, RULES
from riskgate.server.servicer import SERVICE_NAME
from riskgate.server.validate import clip

SHARD_KEY, OWNER_KEY = "riskgate-shard", "riskgate-owner"
_ANY_PROCESS = frozenset({"ListInstruments"})
_PREFIX = f"/{SERVICE_NAME}/"


class NotOwner(Exception):
    def __init__(self, shard: int, owner: str, message: str) -> None:
        super().__init__(message)
        self.shard, self.owner, self.message = shard, owner, message


def refusal(node: ClusterNode, method: str, request: Any) -> NotOwner | None:
    """Why this process must not serve ``request`` (None: it may)."""
    if method in _ANY_PROCESS:
        return None
    rule = RULES.get(method)
    accounts = rule.accounts(request) if rule is not None else None
    shards, own = node.shards, node.shard
    if accounts is not None and accounts is not ALL_ACCOUNTS:
        for account_id in accounts:
            k = shard_of(account_id, shards)
            if k != own:
                owner = node.owner_address(k)
                return NotOwner(
                    k, owner,
                    f"not owner: account {clip(account_id)!r} is on shard {k} of {shards}, "
                    f"served by {owner or 'an owner not known yet'}; this process serves "
                    f"shard {own}",
                )  # fmt: skip
    if node.is_owner():
        return None
    owner = node.owner_address(own)
    return NotOwner(
        own, owner,
        f"not owner: this process is a {node.role} of shard {own}; the owner is "
        f"{owner or 'not known yet (a failover is under way)'}",
    )  # fmt: skip


def _abort(context: grpc.ServicerContext, exc: NotOwner) -> None:
    md: list[tuple[str, str]] = [(SHARD_KEY, str(exc.shard))]
    if exc.owner:
        md.append((OWNER_KEY, exc.owner))
    context.set_trailing_metadata(tuple(md))
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, exc.message)


class ShardRouter(grpc.ServerInterceptor):
    """Refuses calls of shards this process does not own (see the module docstring)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(_PREFIX):
            return handler
        cached = self._handlers.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method[len(_PREFIX) :], handler)
        self._handlers[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        node = self.node
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                why = refusal(node, name, request)
                if why is not None:
                    _abort(context, why)
                response = inner(request, context)
                if name not in _ANY_PROCESS and not node.is_owner():
                    _abort(context, refusal(node, name, request) or _stale(node))
                return response

            return grpc.unary_unary_rpc_method_handler(
                _keep_pool(unary, inner), handler.request_deserializer,
                handler.response_serializer,
            )  # fmt: skip
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def stream(request: Any, context: grpc.ServicerContext) -> Any:
                why = refusal(node, name, request)
                if why is not None:
                    _abort(context, why)
                return inner_stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                _keep_pool(stream, inner_stream), handler.request_deserializer,
                handler.response_serializer,
            )  # fmt: skip
        return handler


def _stale(node: ClusterNode) -> NotOwner:
    return NotOwner(node.shard, "", f"not owner: shard {node.shard}'s owner stepped down")


def _keep_pool(behavior: Callable[..., Any], inner: Callable[..., Any]) -> Callable[..., Any]:
    pool = getattr(inner, "experimental_thread_pool", None)
    if pool is not None:
        behavior.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return behavior
