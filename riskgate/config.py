"""One frozen settings object, parsed once: defaults < TOML file < ``RISKGATE_*`` environment.

Every field can be set in the file (``[riskgate]`` table or top level) or as
``RISKGATE_<FIELD_NAME_UPPERCASE>`` (e.g. ``RISKGATE_LISTEN_ADDRESS=127.0.0.1:6000``).
``examples/config/riskgate.toml`` lists every field with its default. An unknown key in the file
and an unknown ``RISKGATE_*`` variable are both errors naming it (a misspelt guard or limit
must not fall back to its default unnoticed); the few variables riskgate reads for other
purposes (:data:`OTHER_VARIABLES`) are not settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# the scenario models riskgate ships (known here without importing them)
MODEL_NAMES = ("deribit", "span", "tims")


class SettingsError(ValueError):
    """A setting that cannot be parsed; names the setting."""


# RISKGATE_* variables that are not settings: the settings file, the client commands' bearer
# token, and the kernels' JIT switch
OTHER_VARIABLES = frozenset({"RISKGATE_CONFIG", "RISKGATE_TOKEN", "RISKGATE_NO_JIT"})


@dataclass(frozen=True)
class Settings:
    # service
    listen_address: str = "127.0.0.1:50051"
    metrics_address: str = ""  # HOST:PORT of the Prometheus /metrics endpoint; "" = off
    # TLS (PEM files): certificate chain and key of the server; with a client CA, clients
    # must present a certificate it signed (mutual TLS). None: plaintext.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    grpc_workers: int = 4  # threads for unary calls (the order path, admin, queries)
    stream_workers: int = 32  # threads for open streams: each open status stream holds one
    # how long a thread may hold the GIL while others wait for it (Python's default is 5 ms):
    # bounds how long an order call waits behind a market update's Python
    gil_switch_interval_us: float = 500.0
    shutdown_grace_s: float = 5.0
    # margin
    model: str = "deribit"
    model_params: str | None = None  # TOML file; None = packaged parameters
    rules_params: str | None = None
    pm_equity_minimum_usd: float = 0.0  # AUTO accounts below this use rules-based margin
    # order path
    decision_budget_us: float = 2000.0  # fail-closed budget per decision (server compute)
    max_batch_orders: int = 10_000
    # a batch lets a waiting caller's order in after holding the decision gate this long
    max_gate_hold_us: float = 1000.0
    # market data older than this rejects orders that raise margin (MARKET_DATA_STALE);
    # 0 = no limit (the demo's market is loaded once and never updated)
    max_market_age_s: float = 0.0
    reservation_ttl_s: float = 30.0  # accepted orders never acknowledged expire after this
    idempotency_window: int = 100_000  # client order ids remembered per account, at most
    idempotency_ttl_s: float = 86_400.0  # and for at most this long
    # durability: with a data_dir, every state change is journaled there before its reply
    data_dir: str | None = None  # None: in memory only, lost at exit
    journal_fsync: str = "batch"  # batch (group commit every interval) | always | none
    journal_fsync_interval_ms: float = 5.0
    journal_segment_mb: float = 64.0
    snapshot_interval_s: float = 300.0  # and one at shutdown
    snapshot_keep: int = 2  # snapshots kept; older journal segments are deleted
    # cluster mode (NATS JetStream, riskgate/cluster): with journal_url set, the shard's
    # events go to a replicated stream instead of data_dir, and the process is the shard's
    # owner or a hot standby
    journal_url: str = ""  # nats://HOST:PORT, several comma-separated for a cluster
    shard: int = 0  # the shard this process serves, 0 <= shard < shards
    shards: int = 1  # accounts map to shards by riskgate.cluster.sharding.shard_of
    replication_ack: str = "sync"  # sync: reply after JetStream acked | async: reply at once
    replication_async_principals: str = ""  # principals acked async under sync (comma list)
    replication_max_inflight: int = 10_000  # async: unacknowledged events, at most
    nats_replicas: int = 3  # copies of each stream and bucket (3 on a 3-node cluster)
    nats_sync_interval: str = "always"  # what `riskgate nats-local` writes into nats-server
    lease_ttl_s: float = 1.5  # a silent owner is replaced after this
    # cluster snapshots: a standby stores one in JetStream this often (0: never) and keeps
    # this many; the shard's stream is trimmed below the oldest kept
    cluster_snapshot_interval_s: float = 60.0
    cluster_snapshot_keep: int = 2
    advertise_address: str = ""  # HOST:PORT clients reach this process at (default: listen)
    nats_creds_file: str | None = None  # NATS credentials (JWT + nkey seed) file
    nats_token: str | None = None
    nats_tls_ca_file: str | None = None  # TLS to NATS (tls:// URLs): CA, client cert, key
    nats_tls_cert_file: str | None = None
    nats_tls_key_file: str | None = None
    # default static limits for new accounts (<= 0 means no limit)
    default_max_order_quantity: float = 0.0
    default_max_order_notional_usd: float = 0.0
    default_price_band_fraction: float = 0.0
    default_max_open_orders: int = 0
    default_position_limit: float = 0.0
    # logging
    log_level: str = "info"
    log_format: str = "auto"  # auto (JSON unless a terminal) | json | console
    accept_log_sample_rate: float = 0.01  # rejects are always logged
    # demo data
    demo: bool = True  # load the embedded demo market and accounts at start-up
    demo_accounts: int = 4
    # access control (riskgate/server/auth.py): principals with roles and account scopes.
    # Without an auth file every caller may do everything, so the service then binds a
    # loopback address only, unless allow_unauthenticated is set.
    auth_file: str | None = None
    allow_unauthenticated: bool = False
    audit_order_path: bool = False  # audit log line per CheckOrder(s) / ReportOrderEvent too
    # market-data guards on UpdateMarket (riskgate/server/market_guard.py); a request with
    # override_guards set passes them (audited)
    max_index_move: float = 0.25  # largest index change per coin from the current one
    max_mark_deviation: float = 0.5  # largest |mark / index - 1| of a spot, perpetual or future
    min_iv: float = 0.01
    max_iv: float = 5.0
    min_rate: float = -0.5
    max_rate: float = 1.0
    # stress scenarios (riskgate/models/stress.py): a TOML or CSV file of named joint moves
    # appended to the model's cells; None = none. Snapshots record their digest.
    stress_file: str | None = None
    # pre-trade controls (riskgate/engine/controls): the loss limits' trading day starts at
    # this UTC time (HH:MM); a message throttle of each gateway principal's orders (0 = off)
    trading_day_roll_utc: str = "00:00"
    throttle_max_orders: int = 0
    throttle_window_ms: int = 1000

    def __post_init__(self) -> None:
        check_address("listen_address", self.listen_address)
        if self.metrics_address:
            check_address("metrics_address", self.metrics_address, unix=False)
        if self.model not in MODEL_NAMES:
            raise SettingsError(
                f"model: expected one of {', '.join(MODEL_NAMES)}, got {self.model!r}"
            )
        if not (math.isfinite(self.max_market_age_s) and self.max_market_age_s >= 0):
            raise SettingsError(f"max_market_age_s: must be >= 0, got {self.max_market_age_s!r}")
        if self.journal_fsync not in ("batch", "always", "none"):
            raise SettingsError(
                f"journal_fsync: expected batch, always or none, got {self.journal_fsync!r}"
            )
        if self.data_dir == "":
            object.__setattr__(self, "data_dir", None)
        _check_cluster(self)
        if self.log_format not in ("auto", "json", "console"):
            raise SettingsError(
                f"log_format: expected auto, json or console, got {self.log_format!r}"
            )
        if not 0.0 <= self.accept_log_sample_rate <= 1.0:
            raise SettingsError("accept_log_sample_rate: must be within [0, 1]")
        for name in (
            "decision_budget_us", "reservation_ttl_s", "shutdown_grace_s", "gil_switch_interval_us",
            "idempotency_ttl_s", "journal_fsync_interval_ms", "journal_segment_mb", "max_gate_hold_us",
            "snapshot_interval_s",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SettingsError(f"{name}: must be positive, got {value!r}")
        for name in (
            "grpc_workers", "stream_workers", "max_batch_orders", "idempotency_window",
            "snapshot_keep",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be >= 1")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)  # an empty path means not set
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError("tls_cert_file, tls_key_file: give both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise SettingsError("tls_client_ca_file: needs tls_cert_file and tls_key_file")
        if self.auth_file == "":
            object.__setattr__(self, "auth_file", None)
        if (
            self.auth_file is None
            and not self.allow_unauthenticated
            and not is_loopback(self.listen_address)
        ):
            raise SettingsError(
                f"listen_address: {self.listen_address} is not a loopback address and no "
                "auth_file is set (set auth_file, or allow_unauthenticated = true)"
            )
        for name in ("max_index_move", "max_mark_deviation", "min_iv", "max_iv"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SettingsError(f"{name}: must be positive, got {value!r}")
        day_roll_offset_ns(self.trading_day_roll_utc)  # raises if malformed
        if self.throttle_max_orders < 0 or self.throttle_window_ms < 10:
            raise SettingsError("throttle_max_orders >= 0, throttle_window_ms >= 10 required")
        if not self.min_iv < self.max_iv:
            raise SettingsError("min_iv, max_iv: min_iv must be below max_iv")
        if not (math.isfinite(self.min_rate) and math.isfinite(self.max_rate)) or not (
            self.min_rate < self.max_rate
        ):
            raise SettingsError("min_rate, max_rate: must be finite, min_rate below max_rate")
        self._check_stress_file()

    def _check_stress_file(self) -> None:
        if self.stress_file == "":
            object.__setattr__(self, "stress_file", None)
        if self.stress_file is not None:
            from riskgate.models.stress import StressFileError, load_stress

            try:
                load_stress(self.stress_file)
            except StressFileError as exc:
                raise SettingsError(f"stress_file: {exc}") from None

    @property
    def journal_urls(self) -> list[str]:
        return [u.strip() for u in self.journal_url.split(",") if u.strip()]

    @property
    def cluster(self) -> bool:
        return bool(self.journal_urls)

    @property
    def day_roll_offset_ns(self) -> int:
        return day_roll_offset_ns(self.trading_day_roll_utc)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _check_cluster(s: Settings) -> None:
    for name in ("nats_creds_file", "nats_token", "nats_tls_ca_file", "nats_tls_cert_file",
                 "nats_tls_key_file"):  # fmt: skip
        if getattr(s, name) == "":
            object.__setattr__(s, name, None)
    if s.shards < 1 or not 0 <= s.shard < s.shards:
        raise SettingsError(f"shard, shards: need 0 <= shard < shards, got {s.shard}, {s.shards}")
    if s.replication_ack not in ("sync", "async"):
        raise SettingsError(f"replication_ack: expected sync or async, got {s.replication_ack!r}")
    if s.replication_max_inflight < 1 or s.nats_replicas < 1:
        raise SettingsError("replication_max_inflight, nats_replicas: must be >= 1")
    if not (math.isfinite(s.lease_ttl_s) and s.lease_ttl_s >= 0.5):
        raise SettingsError(f"lease_ttl_s: must be >= 0.5, got {s.lease_ttl_s!r}")
    if not (math.isfinite(s.cluster_snapshot_interval_s) and s.cluster_snapshot_interval_s >= 0):
        raise SettingsError("cluster_snapshot_interval_s: must be >= 0 (0: no snapshots)")
    if s.cluster_snapshot_keep < 1:
        raise SettingsError("cluster_snapshot_keep: must be >= 1")
    for url in s.journal_urls:
        if not url.startswith(("nats://", "tls://")):
            raise SettingsError(f"journal_url: expected nats://HOST:PORT or tls://, got {url!r}")
    if s.advertise_address:
        check_address("advertise_address", s.advertise_address, unix=False)
    if (s.nats_tls_cert_file is None) != (s.nats_tls_key_file is None):
        raise SettingsError("nats_tls_cert_file, nats_tls_key_file: give both or neither")
    if s.journal_urls and s.data_dir is not None:
        raise SettingsError("journal_url, data_dir: the journal is one or the other")


def check_address(name: str, address: str, unix: bool = True) -> None:
    """``HOST:PORT`` (``[V6]:PORT``; ``unix:PATH`` where ``unix``) with a port in 1–65535, or
    0 for a free port chosen at bind time. grpc would take 99999 as 99999 − 65536."""
    if unix and address.startswith(("unix:", "unix-abstract:")):
        return
    _, sep, port = address.rpartition(":")
    if not sep or not port:
        raise SettingsError(f"{name}: expected HOST:PORT, got {address!r}")
    if not port.isdigit() or int(port) > 65535:
        raise SettingsError(
            f"{name}: port {port!r} of {address!r} is not in 1-65535 (or 0 for any free port)"
        )


def is_loopback(address: str) -> bool:
    """Whether a gRPC listen address (``HOST:PORT``, ``[V6]:PORT``, ``unix:PATH``) can only
    be reached from this machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rpartition(":")[0].removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    kinds = str(kind)
    try:
        if isinstance(raw, str):
            if "bool" in kinds:
                if raw.strip().lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.strip().lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(raw)
            if "None" in kinds and raw.strip().lower() in ("", "none"):
                return None
            if "int" in kinds:
                return int(raw)
            if "float" in kinds:
                return float(raw)
            return raw
        if "bool" in kinds and not isinstance(raw, bool):
            raise ValueError(raw)
        if "float" in kinds and isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if "int" in kinds and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if "str" in kinds and isinstance(raw, str):
            return raw
        if "bool" in kinds and isinstance(raw, bool):
            return raw
        raise ValueError(raw)
    except ValueError:
        raise SettingsError(f"{name}: cannot use {raw!r} (expected {kinds})") from None


def _did_you_mean(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then the TOML file, then ``RISKGATE_*`` variables, then ``overrides``."""
    env = os.environ if env is None else env
    known = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = path or env.get("RISKGATE_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise SettingsError(f"config: cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config: malformed TOML in {path}: {exc}") from None
        table = data.get("riskgate", data)
        for key, raw in table.items():
            if key not in known:
                raise SettingsError(f"{key}: unknown setting in {path}{_did_you_mean(key, known)}")
            values[key] = _coerce(key, known[key], raw)
    variables = {f"RISKGATE_{key.upper()}" for key in known}
    for var in sorted(env):
        if var.startswith("RISKGATE_") and var not in variables and var not in OTHER_VARIABLES:
            raise SettingsError(
                f"{var}: unknown setting in the environment"
                f"{_did_you_mean(var, variables | OTHER_VARIABLES)}"
            )
    for key, kind in known.items():
        var = f"RISKGATE_{key.upper()}"
        if var in env:
            values[key] = _coerce(var, kind, env[var])
    for key, raw in overrides.items():
        if key not in known:
            raise SettingsError(f"{key}: unknown setting")
        if raw is not None:
            values[key] = raw
    return Settings(**values)


def day_roll_offset_ns(hhmm: str) -> int:
    """``"HH:MM"`` (UTC) as nanoseconds after midnight."""
    try:
        h, m = (int(x) for x in hhmm.split(":"))
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError
    except ValueError:
        raise SettingsError(f"trading_day_roll_utc: expected HH:MM, got {hhmm!r}") from None
    return (h * 60 + m) * 60 * 10**9
