"""The cluster client: :class:`RiskGateClient`'s calls, each sent to the owner of its
account's shard.

```python
from riskgate.client import ClusterClient

with ClusterClient("nats://127.0.0.1:4222,nats://127.0.0.1:4223", timeout_s=0.05) as rg:
    d = rg.check_order("demo-1", "ord-1", "BTC-PERPETUAL", "buy", 0.5, 70_000.0)
```

It reads the shard map from NATS (shard count, owner addresses), keeps one
:class:`RiskGateClient` per owner, routes by :func:`~riskgate.cluster.sharding.shard_of`.
A "not owner" answer (``FAILED_PRECONDITION``, ``riskgate-owner`` trailing metadata) is
followed once to the owner it names (the map is read again if it names none); an
unreachable owner (``UNAVAILABLE``) makes it read the map again. With ``failover_wait_s``
it keeps doing so for that long (a standby taking over), then raises the last error.
Retrying an order with its client order id is safe: the new owner answers a decision it
already made with the same decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc

from riskgate.client import OrderSpec, RiskGateClient, _as_order
from riskgate.cluster.routing import OWNER_KEY
from riskgate.cluster.sharding import read_shard_map, shard_of
from riskgate.v1 import riskgate_pb2 as pb

# calls whose first argument is the account id
_BY_ACCOUNT = (
    "check_order", "whatif", "max_quantity", "ack", "venue_reject", "cancel", "expire", "amend",
    "fill", "upsert_account", "set_positions", "get_account",
)  # fmt: skip


def _owner_hint(exc: grpc.RpcError) -> str | None:
    """The owner address of a "not owner" refusal ('' if it names none); None otherwise."""
    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return None
    if not str(exc.details() or "").startswith("not owner"):
        return None
    for md in exc.trailing_metadata() or ():
        if md.key == OWNER_KEY:
            return str(md.value)
    return ""


class ClusterClient:
    """Routes each call to its shard's owner. ``nats_urls``: the cluster's NATS URLs (a
    list or one comma-separated string); the other arguments are :class:`RiskGateClient`'s."""

    def __init__(
        self,
        nats_urls: str | Sequence[str],
        timeout_s: float | None = 1.0,
        *,
        failover_wait_s: float = 0.0,
        **client_options: Any,
    ) -> None:
        if isinstance(nats_urls, str):
            nats_urls = [u.strip() for u in nats_urls.split(",") if u.strip()]
        self.nats_urls = list(nats_urls)
        self.timeout_s, self.failover_wait_s = timeout_s, failover_wait_s
        self._options = client_options
        self._clients: dict[str, RiskGateClient] = {}
        self.shards, self.owners = 1, {}
        self.redirects = 0  # "not owner" answers followed
        self.refresh()

    # ---- the shard map ---------------------------------------------------------------------

    def refresh(self) -> dict[int, str]:
        """Read the shard map again; shard -> owner address."""
        self.shards, entries = read_shard_map(self.nats_urls)
        self.owners = {k: str(e.get("address", "")) for k, e in entries.items()}
        return self.owners

    def shard_of(self, account_id: str) -> int:
        return shard_of(account_id, self.shards)

    def client(self, address: str) -> RiskGateClient:
        c = self._clients.get(address)
        if c is None:
            c = self._clients[address] = RiskGateClient(address, self.timeout_s, **self._options)
        return c

    def _routed(self, shard: int, call: Callable[[RiskGateClient], Any]) -> Any:
        deadline = time.monotonic() + self.failover_wait_s
        address = self.owners.get(shard, "")
        redirected = refreshed = False
        while True:
            err: Exception
            try:
                if not address:
                    raise LookupError(f"shard {shard}: no owner in the shard map")
                return call(self.client(address))
            except grpc.RpcError as exc:
                hint, code = _owner_hint(exc), exc.code()
                retry = code == grpc.StatusCode.UNAVAILABLE or (
                    # a paused owner does not answer: with a failover wait, try the map again
                    code == grpc.StatusCode.DEADLINE_EXCEEDED and self.failover_wait_s > 0
                )
                if hint is None and not retry:
                    raise  # the owner's own answer
                err = exc
            except LookupError as exc:
                hint, err = "", exc
            if hint and not redirected and hint != address:
                redirected, address = True, hint  # follow a "not owner" once, at once
                self.redirects += 1
                continue
            if refreshed and time.monotonic() >= deadline:
                raise err
            if refreshed:
                time.sleep(0.05)
            refreshed = True
            self.refresh()
            address = self.owners.get(shard, "")

    # ---- calls -----------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name not in _BY_ACCOUNT:
            raise AttributeError(name)

        def call(account_id: str, *args: Any, **kwargs: Any) -> Any:
            return self._routed(
                self.shard_of(account_id),
                lambda c: getattr(c, name)(account_id, *args, **kwargs),
            )

        return call

    def check_orders(
        self, orders: Iterable[OrderSpec], *, timeout_s: float | None = None
    ) -> list[pb.Decision]:
        """One batch per shard (each to its owner); the decisions in the orders' order."""
        orders = [_as_order(o) for o in orders]
        by_shard: dict[int, list[int]] = {}
        for i, o in enumerate(orders):
            by_shard.setdefault(self.shard_of(o.account_id), []).append(i)
        out: list[pb.Decision | None] = [None] * len(orders)
        for shard, idx in by_shard.items():
            batch = [orders[i] for i in idx]
            got = self._routed(shard, lambda c, b=batch: c.check_orders(b, timeout_s=timeout_s))
            for i, d in zip(idx, got, strict=True):
                out[i] = d
        return out  # type: ignore[return-value]

    def set_trading_state(self, state: Any, account_id: str = "", **kwargs: Any) -> Any:
        """One account's state on its owner; ``all_accounts=True``: on every shard's owner
        (the last shard's reply)."""
        if not kwargs.get("all_accounts"):
            return self._routed(
                self.shard_of(account_id),
                lambda c: c.set_trading_state(state, account_id, **kwargs),
            )
        reply = None
        for shard in range(self.shards):
            reply = self._routed(shard, lambda c: c.set_trading_state(state, "", **kwargs))
        return reply

    def update_market(self, *args: Any, **kwargs: Any) -> pb.UpdateMarketResponse:
        """Published once (through shard 0's owner) to every shard."""
        return self._routed(0, lambda c: c.update_market(*args, **kwargs))

    def list_instruments(self, *args: Any, **kwargs: Any) -> pb.ListInstrumentsResponse:
        return self._routed(0, lambda c: c.list_instruments(*args, **kwargs))

    def stream_margin_status(self, account_ids: Iterable[str], **kwargs: Any) -> Any:
        """The status stream of accounts of one shard (a stream goes to one owner)."""
        ids = list(account_ids)
        shards = {self.shard_of(a) for a in ids}
        if len(shards) != 1:
            raise ValueError("stream_margin_status: give accounts of one shard")
        return self._routed(shards.pop(), lambda c: c.stream_margin_status(ids, **kwargs))

    # ---- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
