"""Start-up and shutdown: engine from settings, demo data, warm-up, the gRPC server.

Start-up order (docs/architecture.md §7): bind and start the gRPC server with the health
service saying NOT_SERVING (for "" and ``riskgate.v1.RiskGate``), recover from the data
directory or load the demo market and accounts, compile (numba on-disk cache) and warm the
decision path, then SERVING. SIGTERM / SIGINT: health NOT_SERVING, open margin-status
streams end, in-flight calls drain for ``shutdown_grace_s``, exit 0.
"""

from __future__ import annotations

import functools
import gc
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from riskgate.config import Settings, is_loopback
from riskgate.demo import DemoMarket, demo_market
from riskgate.domain.instruments import Instrument, Kind
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.engine.types import (
    Acknowledged,
    Amended,
    Cancelled,
    Filled,
    Limits,
    MarginMethod,
    OrderRequest,
    OrderType,
    PoolMode,
    Side,
)
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params
from riskgate.server.access import AccessInterceptor
from riskgate.server.auth import load_auth_file
from riskgate.server.durability import DataDirError, Durability
from riskgate.server.health import HealthService
from riskgate.server.logging import configure_logging, get_logger
from riskgate.server.metrics import registry_for, start_metrics_server
from riskgate.server.reflection import SERVICE_NAME_V1, SERVICE_NAME_V1ALPHA, add_reflection
from riskgate.server.servicer import SERVICE_NAME, RiskGateServicer
from riskgate.server.tls import TLSFileError, check_tls_files, read_pem
from riskgate.v1 import riskgate_pb2_grpc

__all__ = [
    "SERVICE_NAMES",
    "RiskGateServer",
    "ServeError",
    "StreamPool",
    "access_interceptor",
    "build_engine",
    "create_engine",
    "engine_config",
    "load_demo",
    "serve",
    "warm_kernel_cache",
    "warm_up",
]

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVICE_NAMES: tuple[str, ...] = (
    SERVICE_NAME,
    HEALTH_SERVICE_NAME,
    SERVICE_NAME_V1ALPHA,
    SERVICE_NAME_V1,
)
EXPIRY_INTERVAL_S = 0.1
_WATCHER_NOTICE_S = 2.0  # longest a stop waits to tell health watchers it is going
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # full market snapshots can be large

_SERVER_OPTIONS: Sequence[tuple[str, Any]] = (
    # fail loudly when the port is taken instead of silently sharing it
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

_log = get_logger("riskgate.server")


class StreamPool(futures.ThreadPoolExecutor):
    """The streams' pool: ``max_workers`` threads, and no queue. A call submitted while every
    thread is busy runs on a small overflow pool instead, where :func:`on_pool` handlers
    refuse it with RESOURCE_EXHAUSTED at once (instead of waiting, silently, for a thread
    that an open stream may hold for hours)."""

    _overflow_thread = threading.local()

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.limit = max_workers
        self._slots = threading.BoundedSemaphore(max_workers)
        self._refuser = futures.ThreadPoolExecutor(
            2, thread_name_prefix=f"{thread_name_prefix}-full"
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future:
        if self._slots.acquire(blocking=False):

            def in_slot() -> Any:
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._slots.release()

            try:
                return super().submit(in_slot)
            except BaseException:
                self._slots.release()
                raise

        def refused() -> Any:
            StreamPool._overflow_thread.active = True
            try:
                return fn(*args, **kwargs)
            finally:
                StreamPool._overflow_thread.active = False

        return self._refuser.submit(refused)

    @staticmethod
    def refusing() -> bool:
        """True on an overflow thread: the call there must be refused."""
        return getattr(StreamPool._overflow_thread, "active", False)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._refuser.shutdown(wait=wait, cancel_futures=cancel_futures)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


def on_pool(behavior: Callable[..., Any], pool: futures.ThreadPoolExecutor) -> Callable[..., Any]:
    """``behavior`` as a handler grpc runs on ``pool`` instead of the server's pool.

    grpc's synchronous server honours an ``experimental_thread_pool`` attribute on a method
    behaviour (grpc_health's own servicer exposes the same hook). Streaming calls go to their
    own pool so that open streams, which hold a thread each, never take the threads of the
    order path. On a full :class:`StreamPool` the call is refused with RESOURCE_EXHAUSTED."""
    limit = getattr(pool, "limit", None)

    @functools.wraps(behavior)
    def run(*args: Any, **kwargs: Any) -> Any:
        if StreamPool.refusing():
            args[-1].abort(  # the ServicerContext
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"all {limit} stream threads are busy (stream_workers); try again later",
            )
        return behavior(*args, **kwargs)

    run.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return run


def _server_credentials(s: Settings) -> grpc.ServerCredentials:
    """TLS from the settings' PEM files; with a client CA, client certificates are required.
    The files are checked here (grpc would only say it cannot bind)."""
    assert s.tls_cert_file is not None and s.tls_key_file is not None
    try:
        cert = read_pem("tls_cert_file", s.tls_cert_file)
        key = read_pem("tls_key_file", s.tls_key_file)
        ca = read_pem("tls_client_ca_file", s.tls_client_ca_file) if s.tls_client_ca_file else None
        check_tls_files(
            ("tls_cert_file / tls_key_file", s.tls_cert_file, s.tls_key_file),
            ("tls_client_ca_file", s.tls_client_ca_file),
        )
    except TLSFileError as exc:
        raise ServeError(str(exc)) from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def access_interceptor(s: Settings) -> AccessInterceptor:
    """The access interceptor for the settings' auth file (everyone is anonymous without
    one). Raises :class:`~riskgate.server.auth.AuthFileError` for a bad file."""
    mtls = s.tls_client_ca_file is not None
    auth = load_auth_file(s.auth_file, mutual_tls=mtls) if s.auth_file else None
    return AccessInterceptor(auth, mutual_tls=mtls, audit_order_path=s.audit_order_path)


class _SwitchIntervalHolder:
    """The interpreter's GIL switch interval is process-wide: the most recently started of
    the serving servers sets it, and when one stops the interval of the latest one still
    serving applies again (the interpreter's own after the last), whatever the order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[object, float]] = []
        self._original = 0.0

    def acquire(self, interval_s: float) -> object:
        token = object()
        with self._lock:
            if not self._held:
                self._original = sys.getswitchinterval()
            self._held.append((token, interval_s))
            sys.setswitchinterval(interval_s)
        return token

    def release(self, token: object) -> None:
        with self._lock:
            self._held = [(t, v) for t, v in self._held if t is not token]
            sys.setswitchinterval(self._held[-1][1] if self._held else self._original)


_SWITCH_INTERVAL = _SwitchIntervalHolder()


class ServeError(RuntimeError):
    """The service cannot start (e.g. the listen address cannot be bound)."""


# ====================================================================== engine ===========


def _limit(value: float) -> float | None:
    return float(value) if value > 0 else None


def engine_config(settings: Settings) -> EngineConfig:
    """Engine configuration from settings (limits <= 0 mean no limit)."""
    return EngineConfig(
        decision_budget_ns=int(settings.decision_budget_us * 1_000),
        reservation_ttl_ns=int(settings.reservation_ttl_s * 1e9),
        idempotency_window=settings.idempotency_window,
        idempotency_ttl_ns=int(settings.idempotency_ttl_s * 1e9),
        max_market_age_ns=int(settings.max_market_age_s * 1e9),
        max_gate_hold_ns=int(settings.max_gate_hold_us * 1e3),
        pm_equity_minimum_usd=settings.pm_equity_minimum_usd,
        max_batch_orders=settings.max_batch_orders,
        day_roll_offset_ns=settings.day_roll_offset_ns,
        throttle_max_orders=settings.throttle_max_orders,
        throttle_window_ns=settings.throttle_window_ms * 1_000_000,
        default_limits=Limits(
            max_order_quantity=_limit(settings.default_max_order_quantity),
            max_order_notional_usd=_limit(settings.default_max_order_notional_usd),
            price_band_fraction=_limit(settings.default_price_band_fraction),
            max_open_orders=(
                settings.default_max_open_orders if settings.default_max_open_orders > 0 else None
            ),
            default_position_limit=_limit(settings.default_position_limit),
        ),
    )


def create_engine(settings: Settings) -> RiskEngine:
    """An engine with the configured model and rules parameters and no data."""
    model = load_model(settings.model, settings.model_params, settings.stress_file)
    rules = load_rules_params(settings.rules_params)
    return RiskEngine(model, rules, engine_config(settings))


def build_engine(settings: Settings) -> RiskEngine:
    """:func:`create_engine`, plus the demo market and accounts when ``settings.demo``."""
    engine = create_engine(settings)
    if settings.demo:
        load_demo(engine, settings)
    return engine


def _now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class _Picks:
    """Demo symbols for one coin: spot, perpetuals, a dated future and options at it."""

    coin: str
    index: float
    spot: str
    perp: str
    perp_linear: str
    future: str
    atm_call: str
    otm_call: str
    atm_put: str
    otm_put: str
    atm_call_linear: str
    otm_call_linear: str
    otm_put_linear: str


def _picks(dm: DemoMarket, coin: str) -> _Picks:
    index = dm.snapshot.index_usd[coin]
    insts = [i for i in dm.instruments if i.underlying == coin]
    futures_ = sorted(
        (i for i in insts if i.kind == Kind.FUTURE and i.is_inverse), key=lambda i: i.expiry
    )
    fut = futures_[0]

    def option(kind: Kind, inverse: bool, moneyness: float) -> str:
        chain = [
            i
            for i in insts
            if i.kind == kind and i.expiry == fut.expiry and i.is_inverse == inverse
        ]
        best: Instrument = min(chain, key=lambda i: abs(i.strike_usd - index * moneyness))
        return best.symbol

    return _Picks(
        coin=coin,
        index=index,
        spot=f"{coin}_USDC",
        perp=f"{coin}-PERPETUAL",
        perp_linear=f"{coin}_USDC-PERPETUAL",
        future=fut.symbol,
        atm_call=option(Kind.CALL, True, 1.0),
        otm_call=option(Kind.CALL, True, 1.10),
        atm_put=option(Kind.PUT, True, 1.0),
        otm_put=option(Kind.PUT, True, 0.92),
        atm_call_linear=option(Kind.CALL, False, 1.0),
        otm_call_linear=option(Kind.CALL, False, 1.12),
        otm_put_linear=option(Kind.PUT, False, 0.90),
    )


def _demo_templates(
    dm: DemoMarket,
) -> list[tuple[PoolMode, MarginMethod, dict[str, float], list[tuple[str, float]]]]:
    """Four demo books: (pool mode, method, collateral, positions)."""
    btc, eth = _picks(dm, "BTC"), _picks(dm, "ETH")
    return [
        # a hedged BTC options book with an ETH perpetual short, cross-margined in USD
        (
            PoolMode.CROSS,
            MarginMethod.AUTO,
            {"USD": 250_000.0, "BTC": 2.0},
            [
                (btc.perp, 1.5),
                (btc.otm_call, -2.0),
                (btc.otm_put_linear, 1.0),
                (eth.perp_linear, -10.0),
            ],
        ),
        # coin-settled short put spread and a calendar hedge, segregated pools
        (
            PoolMode.SEGREGATED,
            MarginMethod.PORTFOLIO,
            {"BTC": 5.0, "ETH": 40.0, "USDC": 50_000.0},
            [
                (btc.atm_put, -2.0),
                (btc.otm_put, 2.0),
                (btc.future, 0.5),
                (eth.atm_call, -10.0),
                (eth.perp, 5.0),
            ],
        ),
        # a small covered-call account on rules-based margin
        (
            PoolMode.CROSS,
            MarginMethod.RULES_BASED,
            {"USD": 25_000.0},
            [(eth.spot, 3.0), (eth.otm_call_linear, -3.0)],
        ),
        # a short BTC straddle with thin collateral: close to a margin call
        (
            PoolMode.CROSS,
            MarginMethod.PORTFOLIO,
            {"USDC": 30_000.0},
            [(btc.atm_call_linear, -2.0), (btc.otm_put_linear, -2.0), (btc.perp_linear, 0.2)],
        ),
    ]


def load_demo(
    engine: RiskEngine, settings: Settings, valuation_time: datetime | None = None
) -> list[str]:
    """Load the embedded demo market (valued at the current hour) and
    ``settings.demo_accounts`` accounts ``demo-1``, ``demo-2``...; returns their ids.
    Positions are entered at their mark (their average price)."""
    dm = demo_market(valuation_time=valuation_time or _now_hour())
    engine.load_snapshot(dm.snapshot)
    return demo_accounts(engine, settings)


def demo_market_request(valuation_time: datetime | None = None) -> Any:
    """The demo market as an UpdateMarket request (cluster mode publishes it)."""
    from riskgate.v1 import riskgate_pb2 as pb

    snap = demo_market(valuation_time=valuation_time or _now_hour()).snapshot
    req = pb.UpdateMarketRequest(
        full_snapshot=True, index_usd=snap.index_usd, marks_usd=snap.marks_usd, ivs=snap.ivs,
        rate=snap.rate,
    )  # fmt: skip
    req.valuation_time.FromDatetime(snap.valuation_time)
    return req


def demo_accounts(
    engine: RiskEngine, settings: Settings, wanted: Callable[[str], bool] | None = None
) -> list[str]:
    """The demo accounts (those ``wanted`` picks: cluster mode, the shard's) on the engine's
    market (the demo market); returns their ids."""
    market = engine.market
    if market is None:
        return []
    dm = demo_market(valuation_time=market.valuation_time)
    quotes = market.quotes
    templates = _demo_templates(dm)
    ids = []
    for k in range(settings.demo_accounts):
        pool_mode, method, collateral, positions = templates[k % len(templates)]
        account_id = f"demo-{k + 1}"
        if wanted is not None and not wanted(account_id):
            continue
        engine.upsert_account(
            account_id, collateral=collateral, pool_mode=pool_mode, margin_method=method
        )
        engine.set_positions(
            account_id,
            [(sym, qty, quotes[sym].mark if sym in quotes else None) for sym, qty in positions],
        )
        ids.append(account_id)
    return ids


# ====================================================================== warm-up ==========


def _warm_scratch(engine: RiskEngine) -> None:
    """Every kernel and code path of the order flow, on a throwaway engine sharing the
    model: market build, both pool modes, both margin methods, every instrument kind,
    check/reserve, what-if, ack, amend, fill, cancel, expiry, max quantity, views."""
    scratch = RiskEngine(engine.model, engine.rules_params, engine.config, clock_ns=engine.clock_ns)
    dm = demo_market(valuation_time=_now_hour(), strikes_per_expiry=5, n_months=1, n_quarters=1)
    scratch.load_snapshot(dm.snapshot)
    btc, eth = _picks(dm, "BTC"), _picks(dm, "ETH")
    symbols = [
        btc.spot, btc.perp, btc.perp_linear, btc.future, btc.atm_call, btc.otm_put,
        btc.atm_call_linear, btc.otm_put_linear, eth.perp, eth.atm_put, eth.otm_call_linear,
    ]  # fmt: skip
    setups = [
        (PoolMode.CROSS, MarginMethod.PORTFOLIO),
        (PoolMode.SEGREGATED, MarginMethod.PORTFOLIO),
        (PoolMode.CROSS, MarginMethod.RULES_BASED),
        (PoolMode.SEGREGATED, MarginMethod.AUTO),
    ]
    for n, (mode, method) in enumerate(setups):
        aid = f"warm-{n}"
        scratch.upsert_account(
            aid,
            collateral={"USD": 1e6, "BTC": 5.0, "ETH": 50.0},
            pool_mode=mode,
            margin_method=method,
        )
        scratch.set_positions(aid, [(btc.perp, 1.0, None), (eth.atm_put, -2.0, None)])
        for k, sym in enumerate(symbols):
            for side in (Side.BUY, Side.SELL):
                scratch.whatif(OrderRequest(aid, "", sym, side, 0.5, None, OrderType.MARKET))
                coid = f"w{k}{int(side)}"
                d = scratch.check_order(
                    OrderRequest(aid, coid, sym, side, 0.5, None, OrderType.MARKET)
                )
                if not d.accepted:
                    continue
                scratch.order_event(aid, coid, Acknowledged("v"))
                scratch.order_event(aid, coid, Amended(new_quantity=0.4))
                mark = scratch.market.quotes[sym].mark if scratch.market else 1.0
                scratch.order_event(aid, coid, Filled(0.1, mark, f"f{coid}"))
                scratch.order_event(aid, coid, Cancelled())
        scratch.check_order(OrderRequest(aid, "never-acked", btc.perp, Side.BUY, 0.1, None, 2))
        scratch.expire_reservations(now_ns=scratch.clock_ns() + 10**15)
        scratch.max_quantity(aid, btc.perp, None)
        scratch.account_view(aid)
    scratch.current_status_events(list(scratch.accounts))


def _warm_live(engine: RiskEngine, rounds: int) -> None:
    """What-ifs (nothing reserved) on the live engine's own accounts and market."""
    market = engine.market
    if market is None:
        return
    for aid in list(engine.accounts)[:8]:
        view = engine.account_view(aid)
        symbols = [p.symbol for p in view.positions][:4] or ["BTC-PERPETUAL"]
        for sym in symbols:
            if sym not in market.instruments:
                continue
            for k in range(rounds):
                side = Side.BUY if k % 2 else Side.SELL
                engine.whatif(OrderRequest(aid, "", sym, side, 0.1, None, OrderType.MARKET))


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the order path's tail latency: everything
    allocated during start-up (market tables, accounts) is frozen out of collection, and
    young-generation collections run less often (the order path allocates few containers)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def warm_up(engine: RiskEngine, rounds: int = 50) -> float:
    """Compile (or load from the numba cache) and exercise the decision path so the first
    real order pays no JIT or dispatch cost. Reserves nothing on ``engine``'s accounts.
    Returns the seconds it took."""
    t0 = time.perf_counter()
    _warm_scratch(engine)
    _warm_live(engine, rounds)
    return time.perf_counter() - t0


def warm_kernel_cache(models: Sequence[str] = ("deribit", "span", "tims")) -> None:
    """Compile every kernel into numba's on-disk cache (``NUMBA_CACHE_DIR``) for each model:
    build an engine with the demo data and warm it. Used at image build time."""
    for name in models:
        settings = Settings(model=name, demo=True, demo_accounts=4)
        warm_up(build_engine(settings))


# ====================================================================== server ===========

# health service names of the cluster roles: SERVING for the role this process has now
CLUSTER_OWNER, CLUSTER_STANDBY = "riskgate.cluster.owner", "riskgate.cluster.standby"


class RiskGateServer:
    """The gRPC server: RiskGate, health and reflection services, reservation expiry."""

    def __init__(self, settings: Settings, engine: RiskEngine | None = None) -> None:
        """With ``engine`` given, it is served as is (no demo data is loaded into it)."""
        configure_logging(settings)
        self.settings = settings
        self._own_engine = engine is None
        self.engine: RiskEngine = create_engine(settings) if engine is None else engine
        self.servicer = RiskGateServicer(self.engine, settings)
        self.health = HealthService()
        self.demo_accounts: list[str] = []
        self.durability: Durability | None = None  # with a data_dir, for a server-made engine
        self.cluster: Any = None  # cluster mode (journal_url): riskgate.cluster.node.ClusterNode
        if settings.cluster and engine is None:
            try:
                from riskgate.cluster.node import ClusterNode
            except ImportError as exc:
                raise ServeError(
                    f"journal_url: cluster mode needs the cluster extra "
                    f"(pip install 'riskgate[cluster]'): {exc}"
                ) from None

            self.cluster = ClusterNode(settings, self.engine)
        self.port: int | None = None
        self.warm_up_s: float = 0.0
        self._server: grpc.Server | None = None
        self.access: AccessInterceptor | None = None
        self._streams: StreamPool | None = None
        self._switch_token: object | None = None  # our hold on the GIL switch interval
        self._metrics_http: Any = None
        self.metrics_port: int | None = None
        self._stop_expiry = threading.Event()
        self._expiry_thread: threading.Thread | None = None
        self._terminated: grpc.Server | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """The listen address with the bound port (useful with port 0)."""
        host = self.settings.listen_address.rpartition(":")[0]
        return f"{host}:{self.port}"

    def _set_health(self, status: int) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def start(self) -> int:
        """Bind, start (health NOT_SERVING), load demo data, warm up, then SERVING.
        Returns the bound port. Raises :class:`ServeError` if an address cannot be bound;
        whatever was bound by then is released."""
        with self._lock:
            if self._server is not None:
                raise ServeError("server already started")
            s = self.settings
            server: grpc.Server | None = None
            try:
                credentials = _server_credentials(s) if s.tls else None
                access = self.access = access_interceptor(s)
                if s.metrics_address:
                    self._start_metrics(s.metrics_address)
                server = grpc.server(
                    futures.ThreadPoolExecutor(
                        max_workers=s.grpc_workers, thread_name_prefix="riskgate-rpc"
                    ),
                    options=_SERVER_OPTIONS,
                    interceptors=[access, *self._cluster_interceptors()],
                )
                self._register(server)
                try:
                    if credentials is not None:
                        port = server.add_secure_port(s.listen_address, credentials)
                    else:
                        port = server.add_insecure_port(s.listen_address)
                except RuntimeError as exc:
                    raise ServeError(
                        f"listen_address: cannot bind {s.listen_address}: {exc}"
                    ) from None
                if not port:
                    raise ServeError(f"listen_address: cannot bind {s.listen_address}")
                server.start()
            except BaseException:
                if server is not None:
                    server.stop(None)  # releases a port already bound
                self._release_side_services()
                raise
            self._server, self.port = server, port
        _log.info("listening", address=self.address, health="NOT_SERVING")
        self._log_access()
        try:
            recovered = False
            if self.cluster is not None:
                # the shard's stream is the journal (riskgate/cluster/node.py); refused
                # calls go to it too while this process owns the shard
                self.access.sinks.append(self._journal_refusal)
            elif self._own_engine and s.data_dir is not None:
                try:
                    self.durability = Durability(s, self.engine)
                    recovered = not self.durability.recover().empty
                except DataDirError as exc:
                    raise ServeError(str(exc)) from None
                self.access.sinks.append(self._journal_refusal)
            elif self._own_engine:
                _log.warning("in_memory", detail="no data_dir: state is lost when the process ends")
            if self._own_engine and s.demo and not recovered and self.cluster is None:
                self.demo_accounts = load_demo(self.engine, s)
            self.warm_up_s = warm_up(self.engine)
            tune_gc()
            self._switch_token = _SWITCH_INTERVAL.acquire(s.gil_switch_interval_us / 1e6)
        except BaseException:
            self.stop(grace=0)
            raise
        self._expiry_thread = threading.Thread(
            target=self._expiry_loop, name="riskgate-expiry", daemon=True
        )
        self._expiry_thread.start()
        if self.durability is not None:
            self.durability.start()
        if self.cluster is not None:
            self._start_cluster()
        else:
            self._set_health(health_pb2.HealthCheckResponse.SERVING)
        market = self.engine.market
        _log.info(
            "serving",
            address=self.address,
            model=self.engine.model.identity,
            market_version=market.version if market else None,
            instruments=len(market.instruments) if market else 0,
            accounts=len(self.engine.accounts),
            warm_up_s=round(self.warm_up_s, 3),
        )
        return port

    # ---- cluster mode (riskgate/cluster) ------------------------------------------------

    def _cluster_interceptors(self) -> list[grpc.ServerInterceptor]:
        if self.cluster is None:
            return []
        from riskgate.cluster.routing import ShardRouter

        return [ShardRouter(self.cluster)]

    def _start_cluster(self) -> None:
        """Join the cluster: a standby at once, the owner once it holds the lease; health
        says which (RiskGate SERVING on the owner only)."""
        node, s = self.cluster, self.settings
        node.address = s.advertise_address or self.address
        node.on_role = self._on_role
        self.servicer.market_source = node.update_market
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        try:
            node.start()
        except Exception as exc:
            self.stop(grace=0)
            raise ServeError(f"journal_url: cannot join the cluster: {exc}") from None

    def _on_role(self, role: str) -> None:
        from riskgate.cluster.node import OWNER, STANDBY

        up, down = (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        self.health.set(SERVICE_NAME, up if role == OWNER else down)
        self.health.set(CLUSTER_OWNER, up if role == OWNER else down)
        self.health.set(CLUSTER_STANDBY, up if role == STANDBY else down)

    def _log_access(self) -> None:
        s, auth = self.settings, self.access.auth if self.access else None
        if auth is None:
            _log.warning(
                "unauthenticated",
                address=self.address,
                detail="no auth_file: every caller may call every RPC for every account",
            )
            return
        _log.info("access_control", auth_file=auth.path, principals=len(auth.principals))
        if not s.tls and not is_loopback(s.listen_address):
            _log.warning("bearer_tokens_in_plaintext", address=self.address)

    def _journal_refusal(self, record: dict[str, Any]) -> None:
        """Audit sink: refused and failed calls go to the journal too (the changes a call
        makes are journaled as its own events, with its principal)."""
        if record.get("outcome") == "OK":
            return
        accounts = record.get("accounts") or ()
        self.engine.record_audit(
            record.get("principal") or "", record.get("method", ""),
            ("*",) if accounts == "*" else tuple(accounts), record.get("outcome", ""),
            record.get("detail") or "",
        )  # fmt: skip

    def _register(self, server: grpc.Server) -> None:
        """The services; streaming methods on their own pool (health Watch holds no thread)."""
        streams = self._streams = StreamPool(
            self.settings.stream_workers, thread_name_prefix="riskgate-stream"
        )
        self.servicer.StreamMarginStatus = on_pool(  # type: ignore[method-assign]
            self.servicer.StreamMarginStatus, streams
        )
        reflector = reflection.ReflectionServicer(SERVICE_NAMES)
        reflector.ServerReflectionInfo = on_pool(  # type: ignore[method-assign]
            reflector.ServerReflectionInfo, streams
        )
        riskgate_pb2_grpc.add_RiskGateServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        add_reflection(server, reflector)  # as grpc.reflection.v1alpha and v1

    def _tell_watchers(self) -> None:
        """Health watchers see NOT_SERVING, then their stream ends. Each send waits for
        grpc to complete it; a call that never completes must not hold up the stop (the
        server's stop cancels it), so the notices go out on a thread given a bounded wait."""

        def notify() -> None:
            self.health.enter_graceful_shutdown()
            self.health.close_watches()

        notifier = threading.Thread(target=notify, name="riskgate-health-stop", daemon=True)
        notifier.start()
        notifier.join(_WATCHER_NOTICE_S)
        if notifier.is_alive():
            _log.warning("health_watchers_not_told", waited_s=_WATCHER_NOTICE_S)

    def _release_side_services(self) -> None:
        """The stream pool, the metrics endpoint and the switch interval (idempotent)."""
        if self._streams is not None:
            self._streams.shutdown(wait=False)
            self._streams = None
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
            self._metrics_http = None
        if self._switch_token is not None:
            _SWITCH_INTERVAL.release(self._switch_token)
            self._switch_token = None

    def _start_metrics(self, address: str) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ServeError(f"metrics_address: expected HOST:PORT, got {address!r}")
        host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"  # [::1]:P, :P
        try:
            registry = registry_for(self.servicer.metrics, self.engine)
            if self.cluster is not None:
                from riskgate.cluster.metrics import ClusterCollector

                registry.register(ClusterCollector(self.cluster))
            httpd, _thread = start_metrics_server(host, int(port), registry)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ServeError(f"metrics_address: cannot bind {address}: {reason}") from None
        self._metrics_http = httpd
        self.metrics_port = httpd.server_address[1]
        _log.info("metrics", address=f"{host}:{self.metrics_port}", path="/metrics")

    def _expiry_loop(self) -> None:
        while not self._stop_expiry.wait(EXPIRY_INTERVAL_S):
            if self.cluster is not None and not self.cluster.is_owner():
                continue  # a standby's book changes only by the owner's events
            try:
                n = self.engine.expire_reservations()
                self.engine.roll_trading_day()  # pre-trade controls: the loss limits' day
            except Exception:
                _log.exception("reservation_expiry_failed")
                continue
            if n:
                self.servicer.metrics.reservations_expired(n)
                _log.info("reservations_expired", orders=n)

    def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, end margin-status streams, refuse new calls and let in-flight
        ones finish within ``grace`` seconds (default ``shutdown_grace_s``). Idempotent."""
        with self._lock:
            server = self._server
            if server is None:
                return
            self._server = None
        grace = self.settings.shutdown_grace_s if grace is None else grace
        _log.info("stopping", grace_s=grace)
        self._tell_watchers()
        self.servicer.close()
        server.stop(grace).wait()
        self._release_side_services()
        self._stop_expiry.set()
        if self._expiry_thread is not None:
            self._expiry_thread.join(timeout=1.0)
        if self.durability is not None:
            self.durability.close()  # the shutdown snapshot, then the journal is closed
        if self.cluster is not None:
            self.cluster.close()  # a clean stop releases the lease: the standby takes over
        self._terminated = server
        _log.info("stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has terminated; False on timeout."""
        server = self._server or self._terminated
        if server is None:
            return True
        return not server.wait_for_termination(timeout)


def _describe(server: RiskGateServer) -> str:
    market = server.engine.market
    parts = [f"model {server.settings.model}"]
    stress = server.engine.model.stress
    if stress is not None:
        parts[0] += f" + {len(stress.scenarios)} stress scenarios ({stress.source})"
    if market is not None:
        parts.append(f"market v{market.version}, {len(market.instruments)} instruments")
    else:
        parts.append("no market data (load it with UpdateMarket)")
    d = server.durability
    recovered = d is not None and d.recovery is not None and not d.recovery.empty
    if server.demo_accounts:
        parts.append("demo accounts: " + ", ".join(server.demo_accounts))
    elif recovered:
        parts.append(f"{len(server.engine.accounts)} accounts recovered")
    else:
        parts.append("no accounts (create them with UpsertAccount)")
    node = server.cluster
    if node is not None:
        parts.append(
            f"shard {node.shard} of {node.shards} ({node.role}; journal on NATS "
            f"{server.settings.journal_url}, replication_ack {server.settings.replication_ack})"
        )
    elif d is not None and d.recovery is not None:
        rec = d.recovery
        parts.append(
            f"data in {server.settings.data_dir}, fsync {server.settings.journal_fsync}"
            + (f", recovered to event {rec.last_seq}" if not rec.empty else "")
        )
    else:
        parts.append("in memory: nothing is kept after exit (--data-dir DIR keeps it)")
    if server.metrics_port is not None:
        host = server.settings.metrics_address.rpartition(":")[0]
        parts.append(f"metrics on http://{host}:{server.metrics_port}/metrics")
    tls = " over TLS" if server.settings.tls else ""
    auth = server.access.auth if server.access else None
    parts.append(f"{len(auth.principals)} principals" if auth else "UNAUTHENTICATED")
    return f"riskgate: serving {SERVICE_NAME}{tls} on {server.address} ({'; '.join(parts)})"


def serve(
    settings: Settings,
    out: TextIO | None = None,
    on_ready: Callable[[RiskGateServer], None] | None = None,
) -> int:
    """Run the service until SIGTERM or SIGINT; prints one line once it is SERVING.
    Returns the exit code (0 after a graceful stop)."""
    stop_requested: list[int] = []

    def request_stop(signum: int, frame: Any) -> None:
        # only record the signal (no locks in a handler): the loop below does the shutdown
        stop_requested.append(signum)

    server = RiskGateServer(settings)
    previous = {}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, request_stop)
    try:
        server.start()
        print(_describe(server), file=out or sys.stdout, flush=True)
        if on_ready is not None:
            on_ready(server)
        while not stop_requested:
            time.sleep(0.1)
        _log.info("signal_received", signal=signal.Signals(stop_requested[0]).name)
        server.stop(settings.shutdown_grace_s)
        return 0
    finally:
        server.stop(0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
