"""Which shard holds an account, and where each shard's owner is (the shard map).

:func:`shard_of` is the one mapping: the first 8 bytes of BLAKE2b (digest size 8, no key,
no salt) of the account id's UTF-8 bytes, read as a big-endian unsigned integer, modulo the
number of shards. It is the same in every process and on every machine (Python's
``hash()`` of a string is salted per process, so it is not used); a client in another
language computes it with any BLAKE2b implementation.

The shard map is the JetStream key-value bucket ``riskgate-shard-map``: key ``shard.<k>``
holds JSON ``{"address": "HOST:PORT", "node": ID, "shards": N, "seq": S}``, written by an
owner once it serves (``seq``: the shard's last event then); key ``config`` holds
``{"shards": N}``, written by the first process of the cluster, so a process started with
another ``--shards`` refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, BucketNotFoundError, KeyNotFoundError

from riskgate.engine.journal.nats_journal import STREAM_IN_USE, LoopThread, connect, retrying

MAP_BUCKET = "riskgate-shard-map"


def shard_of(account_id: str, shards: int) -> int:
    """The shard of ``account_id`` among ``shards`` (see the module docstring)."""
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def map_key(shard: int) -> str:
    return f"shard.{shard}"


class ShardMapError(RuntimeError):
    """The cluster's shard map disagrees with this process's settings."""


async def open_bucket(js: Any, bucket: str, replicas: int, timeout_s: float, ttl_s: float = 0):
    """The key-value bucket, created if it does not exist (by whichever process is first)."""
    try:
        return await retrying(lambda: js.key_value(bucket), timeout_s, f"bucket {bucket}")
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=bucket, history=1, replicas=replicas, storage=StorageType.FILE,
            ttl=ttl_s or None,
        )  # fmt: skip
        try:
            return await retrying(lambda: js.create_key_value(config), timeout_s, bucket)
        except BadRequestError as exc:  # created by another process meanwhile
            if exc.err_code != STREAM_IN_USE:
                raise
            return await js.key_value(bucket)


class ShardMap:
    """A live copy of the shard map: :meth:`owner` reads the copy (refreshed every
    ``refresh_s`` and on :meth:`refresh`), :meth:`publish` writes this process's entry."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        replicas: int = 3,
        refresh_s: float = 0.5,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.refresh_s = refresh_s
        self.entries: dict[int, dict[str, Any]] = {}
        self._read_at = 0.0
        self._stop = threading.Event()
        self._lt = LoopThread("riskgate-shard-map")
        try:
            self._lt.run(self._open(urls, replicas, connect_timeout_s), connect_timeout_s + 30.0)
        except BaseException:
            self._lt.close()
            raise
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="riskgate-shard-map", daemon=True)
        self._thread.start()

    async def _open(self, urls: Sequence[str], replicas: int, timeout_s: float) -> None:
        self._nc = await connect(urls, "riskgate-shard-map", timeout_s)
        js = self._nc.jetstream(timeout=2.0)
        self._kv = await open_bucket(js, MAP_BUCKET, replicas, timeout_s + 20.0)

    def check_shards(self, shards: int) -> None:
        """Record the cluster's shard count, or refuse if it was recorded as another."""

        async def check() -> int:
            # several processes may start at once on a new cluster: one creates the key,
            # the others read it (a create can also fail while the bucket is being set up)
            deadline = time.monotonic() + 20.0
            while True:
                with contextlib.suppress(Exception):
                    await self._kv.create("config", json.dumps({"shards": shards}).encode())
                    return shards
                with contextlib.suppress(Exception):
                    entry = await self._kv.get("config")
                    return int(json.loads(entry.value)["shards"])
                if time.monotonic() > deadline:
                    raise ShardMapError(f"{MAP_BUCKET}: cannot read or write the shard count")
                await asyncio.sleep(0.1)

        have = self._lt.run(check(), 30.0)
        if have != shards:
            raise ShardMapError(
                f"shards: the cluster has {have} shards (shard map {MAP_BUCKET}), this process "
                f"was started with {shards}"
            )

    def publish(self, shard: int, entry: dict[str, Any]) -> None:
        data = json.dumps(entry, sort_keys=True).encode()
        self._lt.run(retrying(lambda: self._kv.put(map_key(shard), data), 20.0, "shard map"), 30.0)
        self.entries[shard] = dict(entry)

    def refresh(self, min_age_s: float = 0.0) -> dict[int, dict[str, Any]]:
        """Read the map again (unless it was read less than ``min_age_s`` ago)."""
        now = time.monotonic()
        if min_age_s and now - self._read_at < min_age_s:
            return self.entries
        self._read_at = now

        async def read() -> dict[int, dict[str, Any]]:
            out: dict[int, dict[str, Any]] = {}
            try:
                keys = await self._kv.keys()
            except Exception:  # NoKeysError: an empty bucket
                return out
            for key in keys:
                if not key.startswith("shard."):
                    continue
                with contextlib.suppress(KeyNotFoundError, ValueError):
                    entry = await self._kv.get(key)
                    out[int(key.split(".", 1)[1])] = json.loads(entry.value)
            return out

        with contextlib.suppress(Exception):
            self.entries = self._lt.run(retrying(read, 5.0, "shard map"), 10.0)
        return self.entries

    def owner(self, shard: int) -> str:
        """The address of the shard's owner as last published ('' if none is known)."""
        entry = self.entries.get(shard)
        return str(entry.get("address", "")) if entry else ""

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        if not self._lt.loop.is_closed():
            with contextlib.suppress(Exception):
                self._lt.run(self._nc.close(), 10.0)
            self._lt.close()


def read_shard_map(
    urls: Sequence[str], timeout_s: float = 10.0
) -> tuple[int, dict[int, dict[str, Any]]]:
    """(shards, entries) of the cluster's shard map, read once (for clients)."""

    async def read() -> tuple[int, dict[int, dict[str, Any]]]:
        nc = await connect(urls, "riskgate-client", timeout_s)
        try:
            js = nc.jetstream(timeout=2.0)
            kv = await retrying(lambda: js.key_value(MAP_BUCKET), timeout_s, "shard map")
            config = await kv.get("config")
            shards = int(json.loads(config.value)["shards"])
            out: dict[int, dict[str, Any]] = {}
            for k in range(shards):
                with contextlib.suppress(KeyNotFoundError):
                    out[k] = json.loads((await kv.get(map_key(k))).value)
            return shards, out
        finally:
            await nc.close()

    lt = LoopThread("riskgate-shard-map-read")
    try:
        return lt.run(read(), timeout_s + 15.0)
    finally:
        lt.close()
