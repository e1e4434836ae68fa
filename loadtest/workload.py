"""What the load generator sends: the market, the accounts, the orders, the market updates.

Everything is derived from the embedded demo market (:mod:`riskgate.demo`) and seeded random
generators, so two targets driven with the same seed receive byte-identical request streams
(riskgate and the no-op baseline see the same messages in the same order).

Units follow the proto: quantities in coin, prices in the instrument's quote currency (USD
per coin for spot and futures; coin per coin for inverse options, USD for linear options).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from riskgate.demo import DemoMarket, demo_market, random_portfolio
from riskgate.domain.instruments import Instrument, Kind
from riskgate.domain.market import MarketSnapshot
from riskgate.kernels.black76 import black76_price_py
from riskgate.v1 import riskgate_pb2 as pb

__all__ = [
    "AccountPlan",
    "InstrumentQuote",
    "MarketUpdater",
    "OrderFactory",
    "OrderSpec",
    "WorkloadSpec",
    "account_ids",
    "build_market",
    "fair_price",
    "full_snapshot_request",
    "instrument_quotes",
    "plan_accounts",
    "tight_upsert",
]

# Price of an order relative to the fair price: buys bid up to this much below, sells ask
# up to this much above (a passive limit order near the mark).
PRICE_OFFSET_MAX = 0.002
# Option prices below this (quote currency) are too small to quote: those orders go MARKET.
MIN_OPTION_PRICE = 1e-6


@dataclass(frozen=True)
class InstrumentQuote:
    """What the order generator needs about one instrument (picklable, no riskgate types)."""

    symbol: str
    fair_price: float  # quote currency; 0 when no price can be quoted (MARKET orders only)
    is_option: bool


@dataclass(frozen=True)
class OrderSpec:
    """The order stream's shape: shared by every client process of a run."""

    account_ids: tuple[str, ...]
    instruments: tuple[InstrumentQuote, ...]
    hotspot: float | None = None  # share of orders sent to the hot accounts; None = uniform
    hot_fraction: float = 0.2  # share of accounts that are hot
    qty_min: float = 0.1
    qty_max: float = 1.0
    order_type: str = "limit"  # limit | market
    id_prefix: str = "lt"


@dataclass(frozen=True)
class WorkloadSpec:
    """Account and market set-up knobs."""

    accounts: int = 100
    legs: int = 100
    seed: int = 1
    collateral_usd: float = 100_000_000.0
    tight_fraction: float = 0.1  # accounts left with almost no excess margin (rejects)
    tight_headroom: float = 0.002  # excess equity of a tight account, fraction of its IM
    account_prefix: str = "lt-acct-"
    coins: tuple[str, ...] = ("BTC", "ETH")
    strikes_per_expiry: int = 21


def account_ids(spec: WorkloadSpec) -> list[str]:
    width = max(5, len(str(spec.accounts)))
    return [f"{spec.account_prefix}{k:0{width}d}" for k in range(spec.accounts)]


def build_market(spec: WorkloadSpec, valuation_time: datetime | None = None) -> DemoMarket:
    """The demo market, valued now (to the second) unless ``valuation_time`` is given."""
    vt = valuation_time or datetime.now(UTC).replace(microsecond=0)
    return demo_market(vt, coins=spec.coins, strikes_per_expiry=spec.strikes_per_expiry)


def _timestamp(ts: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(ts.astimezone(UTC))
    return out


def full_snapshot_request(snapshot: MarketSnapshot) -> pb.UpdateMarketRequest:
    return pb.UpdateMarketRequest(
        full_snapshot=True,
        valuation_time=_timestamp(snapshot.valuation_time),
        index_usd=dict(snapshot.index_usd),
        marks_usd=dict(snapshot.marks_usd),
        ivs=dict(snapshot.ivs),
        rate=snapshot.rate,
    )


def fair_price(inst: Instrument, snapshot: MarketSnapshot) -> float:
    """Mark of spot/futures (USD per coin); Black-76 value of an option in its quote
    currency (coin for inverse options, USD for linear ones)."""
    if inst.kind == Kind.SPOT:
        return snapshot.index(inst.underlying)
    if not inst.is_option:
        return snapshot.future_mark(inst)
    tte = inst.tte_years(snapshot.valuation_time)
    fwd = snapshot.forward(inst, tte)
    usd = black76_price_py(
        fwd, inst.strike_usd, tte, snapshot.implied_vol(inst), snapshot.rate, inst.kind == Kind.CALL
    )
    return usd / fwd if inst.is_inverse else usd


def instrument_quotes(market: DemoMarket) -> list[InstrumentQuote]:
    """Every live instrument of the demo market with the price its orders are quoted at."""
    out = []
    for inst in market.instruments:
        if inst.tte_years(market.snapshot.valuation_time) < 0:
            continue
        price = fair_price(inst, market.snapshot)
        if not (math.isfinite(price) and price > (MIN_OPTION_PRICE if inst.is_option else 0)):
            price = 0.0
        out.append(InstrumentQuote(inst.symbol, price, inst.is_option))
    return out


# ---- accounts ---------------------------------------------------------------------------


@dataclass
class AccountPlan:
    """Set-up messages for every account, in the order they are sent."""

    upserts: list[pb.UpsertAccountRequest]
    positions: list[pb.SetPositionsRequest]
    tight: list[int]  # indexes of the accounts made tight after their positions are set
    # filled in by the first target's set-up, replayed verbatim to later targets
    tight_upserts: list[pb.UpsertAccountRequest] = field(default_factory=list)


def plan_accounts(spec: WorkloadSpec, market: DemoMarket) -> AccountPlan:
    """Cross-margined portfolio accounts with ample USD collateral and ``legs`` random
    positions each (seeded); ``tight_fraction`` of them get their collateral cut to just
    above their margin once the server has margined them (see :func:`tight_upsert`)."""
    rng = np.random.default_rng(spec.seed)
    ids = account_ids(spec)
    upserts, positions = [], []
    for aid in ids:
        upserts.append(
            pb.UpsertAccountRequest(
                account_id=aid,
                collateral={"USD": spec.collateral_usd},
                pool_mode=pb.MARGIN_POOL_MODE_CROSS,
                margin_method=pb.MARGIN_METHOD_PORTFOLIO,
            )
        )
        book = random_portfolio(market, spec.legs, rng)
        positions.append(
            pb.SetPositionsRequest(
                account_id=aid,
                positions=[
                    pb.Position(symbol=inst.symbol, quantity=qty) for inst, qty in book.items()
                ],
            )
        )
    n_tight = min(spec.accounts, math.ceil(spec.tight_fraction * spec.accounts))
    tight = sorted(int(k) for k in rng.choice(spec.accounts, size=n_tight, replace=False))
    return AccountPlan(upserts, positions, tight)


def tight_upsert(spec: WorkloadSpec, view: pb.AccountView) -> pb.UpsertAccountRequest:
    """USD collateral cut so that equity exceeds initial margin by ``tight_headroom`` × IM:
    risk-increasing orders on this account are mostly rejected (INSUFFICIENT_MARGIN)."""
    excess = view.equity_usd - view.initial_margin_usd
    usd = spec.collateral_usd - excess + spec.tight_headroom * view.initial_margin_usd
    return pb.UpsertAccountRequest(account_id=view.account_id, collateral={"USD": usd})


# ---- orders -----------------------------------------------------------------------------

_CHUNK = 4096


class OrderFactory:
    """Seeded stream of orders: random account (uniform or hot-spot), random instrument,
    random side, small size, a LIMIT price within 0.2 % of the fair price (passive side) or
    a MARKET order; unique ``client_order_id`` ``{prefix}-{stream}-{n}``."""

    def __init__(self, spec: OrderSpec, seed: int, stream: int) -> None:
        self.spec = spec
        self.rng = np.random.default_rng([seed, stream])
        self.stream = stream
        self.n = 0
        self._symbols = [q.symbol for q in spec.instruments]
        self._prices = np.array([q.fair_price for q in spec.instruments], dtype=float)
        self._accounts = list(spec.account_ids)
        n_acc = len(self._accounts)
        self._n_hot = max(1, round(spec.hot_fraction * n_acc)) if spec.hotspot is not None else 0
        self._buf: Iterator[tuple[int, int, int, float, float]] = iter(())
        self._market = spec.order_type == "market"
        self._prefix = f"{spec.id_prefix}-{stream}-"

    def _refill(self) -> Iterator[tuple[int, int, int, float, float]]:
        rng, spec = self.rng, self.spec
        n_acc = len(self._accounts)
        if self._n_hot and self._n_hot < n_acc:
            hot = rng.random(_CHUNK) < spec.hotspot
            acc = np.where(
                hot,
                rng.integers(0, self._n_hot, _CHUNK),
                rng.integers(self._n_hot, n_acc, _CHUNK),
            )
        else:
            acc = rng.integers(0, n_acc, _CHUNK)
        inst = rng.integers(0, len(self._symbols), _CHUNK)
        side = rng.integers(1, 3, _CHUNK)  # SIDE_BUY = 1, SIDE_SELL = 2
        steps = max(0, round((spec.qty_max - spec.qty_min) / 0.1))
        qty = np.round(spec.qty_min + 0.1 * rng.integers(0, steps + 1, _CHUNK), 1)
        offset = rng.uniform(0.0, PRICE_OFFSET_MAX, _CHUNK)
        sign = np.where(side == 1, -1.0, 1.0)
        price = self._prices[inst] * (1.0 + sign * offset)
        return zip(
            acc.tolist(), inst.tolist(), side.tolist(), qty.tolist(), price.tolist(), strict=True
        )

    def order(self) -> pb.Order:
        try:
            acc, inst, side, qty, price = next(self._buf)
        except StopIteration:
            self._buf = self._refill()
            acc, inst, side, qty, price = next(self._buf)
        coid = f"{self._prefix}{self.n}"
        self.n += 1
        limit = not (self._market or price <= 0.0)
        order = pb.Order(
            account_id=self._accounts[acc],
            client_order_id=coid,
            symbol=self._symbols[inst],
            side=side,
            order_type=pb.ORDER_TYPE_LIMIT if limit else pb.ORDER_TYPE_MARKET,
            quantity=qty,
        )
        if limit:
            order.price = float(f"{price:.6g}")
        return order

    def check_order(self) -> pb.CheckOrderRequest:
        return pb.CheckOrderRequest(order=self.order())

    def check_orders(self, batch: int) -> pb.CheckOrdersRequest:
        return pb.CheckOrdersRequest(orders=[self.order() for _ in range(batch)])


# ---- market updates during the run ------------------------------------------------------


class MarketUpdater:
    """Partial market updates: a random walk of each coin's index (about 5 bp per update),
    the coin's perpetual and future marks moved with it, and ``n_ivs`` random option vols
    moved by about 1 % (relative)."""

    def __init__(
        self, snapshot: MarketSnapshot, seed: int, n_ivs: int = 20, index_step: float = 5e-4
    ) -> None:
        self.rng = np.random.default_rng([seed, 0x4D4B54])
        self.index = dict(snapshot.index_usd)
        self.base_index = dict(snapshot.index_usd)
        self.marks = dict(snapshot.marks_usd)
        self.ivs = dict(snapshot.ivs)
        self.n_ivs = n_ivs
        self.index_step = index_step
        self._options: Sequence[str] = sorted(self.ivs)
        self._marks_by_coin: dict[str, list[str]] = {}
        for sym in self.marks:
            coin = sym.split("-")[0].split("_")[0]
            self._marks_by_coin.setdefault(coin, []).append(sym)

    def next_request(self) -> pb.UpdateMarketRequest:
        index: dict[str, float] = {}
        marks: dict[str, float] = {}
        for coin in sorted(self.index):
            factor = math.exp(self.rng.normal(0.0, self.index_step))
            new = self.index[coin] * factor
            # stay within +-2 % of the starting index: small moves only
            lo, hi = 0.98 * self.base_index[coin], 1.02 * self.base_index[coin]
            new = min(max(new, lo), hi)
            factor = new / self.index[coin]
            self.index[coin] = index[coin] = round(new, 2)
            for sym in self._marks_by_coin.get(coin, ()):
                self.marks[sym] = marks[sym] = round(self.marks[sym] * factor, 2)
        ivs: dict[str, float] = {}
        if self._options and self.n_ivs:
            picks = self.rng.choice(len(self._options), size=min(self.n_ivs, len(self._options)))
            for k in picks.tolist():
                sym = self._options[k]
                vol = self.ivs[sym] * math.exp(self.rng.normal(0.0, 0.01))
                self.ivs[sym] = ivs[sym] = round(min(max(vol, 0.05), 3.0), 6)
        return pb.UpdateMarketRequest(
            full_snapshot=False, index_usd=index, marks_usd=marks, ivs=ivs
        )
