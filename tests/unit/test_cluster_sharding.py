"""The account → shard mapping is stable across processes (no salted ``hash()``), follows
its documented definition, and spreads accounts evenly; cluster settings are checked."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskgate.cluster.sharding import shard_of
from riskgate.config import Settings, SettingsError

IDS = ["demo-1", "demo-2", "ACC-000123", "ünïcode-账户", ""]


def _documented(account_id: str, shards: int) -> int:
    # the README's definition, written out independently: BLAKE2b-64, big-endian, mod N
    h = hashlib.new("blake2b", digest_size=8)
    h.update(account_id.encode("utf-8"))
    return int(h.hexdigest(), 16) % shards


@given(st.text(max_size=40), st.integers(1, 64))
def test_shard_of_is_the_documented_function(account_id: str, shards: int) -> None:
    k = shard_of(account_id, shards)
    assert 0 <= k < shards
    assert k == _documented(account_id, shards)


def test_shard_of_is_the_same_in_other_processes() -> None:
    code = (
        "from riskgate.cluster.sharding import shard_of; "
        f"print([shard_of(a, n) for a in {IDS!r} for n in (2, 3, 7, 16)])"
    )
    here = str([shard_of(a, n) for a in IDS for n in (2, 3, 7, 16)])
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
        assert out == here


def test_accounts_spread_evenly_over_shards() -> None:
    n, shards = 20_000, 8
    counts = [0] * shards
    for i in range(n):
        counts[shard_of(f"ACC-{i:06d}", shards)] += 1
    expected = n / shards
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 24.3  # 7 degrees of freedom, p = 0.001


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"journal_url": "nats://a:1", "shard": 2, "shards": 2}, "shard, shards"),
        ({"replication_ack": "later"}, "replication_ack"),
        ({"journal_url": "http://a:1"}, "journal_url"),
        ({"journal_url": "nats://a:1", "data_dir": "/tmp/x"}, "journal_url, data_dir"),
        ({"lease_ttl_s": 0.1}, "lease_ttl_s"),
        ({"cluster_snapshot_interval_s": -1.0}, "cluster_snapshot_interval_s"),
        ({"cluster_snapshot_interval_s": float("nan")}, "cluster_snapshot_interval_s"),
        ({"cluster_snapshot_keep": 0}, "cluster_snapshot_keep"),
        ({"nats_tls_cert_file": "c.pem"}, "nats_tls_cert_file"),
    ],
)
def test_cluster_settings_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings(**changes)
    assert message in str(err.value)


def test_several_journal_urls() -> None:
    s = Settings(journal_url="nats://a:1, nats://b:2,,nats://c:3")
    assert s.journal_urls == ["nats://a:1", "nats://b:2", "nats://c:3"] and s.cluster
    assert not Settings().cluster
