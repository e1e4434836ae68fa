"""Pre-trade controls beyond margin: their limits and the state they keep.

- **Velocity**: orders and USD notional accepted per sliding window, per account and per
  group (:class:`RateWindow`, a fixed ring of buckets: O(1) per order, no allocation).
- **Credit**: gross and net USD notional of positions plus working orders, per account and
  per group, with a warning fraction that raises an alert once per crossing.
- **Loss**: P&L since the start of the trading day (equity against the day's baseline) per
  account and per group; crossing the limit trips the account (or every account of the
  group) to REDUCING or HALTED, as a committed event.
- **Groups**: a firm / desk umbrella whose limits apply to the sum of its accounts; groups
  nest (a desk inside a firm), and an order must pass every enclosing group's limits.
- **Class limits**: max order quantity and price band per instrument class (option, future,
  spot); an option's band is a fraction of its underlying, not of its own (cheap) mark.

USD amounts that are summed over accounts (credit usage, window notionals) are integers of
micro-USD: integer sums do not depend on the order they are added in, so a group's usage is
the same whichever member a market update re-marks first, live or in replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from riskgate.domain.instruments import Kind
from riskgate.engine.types import TradingState

MICRO = 1_000_000  # micro-USD per USD
BUCKETS = 10  # per window: a window of W slides in steps of W / 10
CLASSES = ("option", "future", "spot")
KIND_CLASS = {Kind.CALL: "option", Kind.PUT: "option", Kind.FUTURE: "future",
              Kind.PERPETUAL: "future", Kind.SPOT: "spot"}  # fmt: skip


def micro(usd: float) -> int:
    return round(usd * MICRO)


@dataclass(frozen=True, slots=True)
class ControlLimits:
    """Limits of one account or group; None = no limit."""

    max_orders: int | None = None  # accepted orders per orders_window_ns
    orders_window_ns: int = 1_000_000_000
    max_notional_usd: float | None = None  # accepted order notional per notional_window_ns
    notional_window_ns: int = 60_000_000_000
    max_gross_usd: float | None = None  # sum of |worst side| notional, positions + orders
    max_net_usd: float | None = None  # |long - short| notional, positions + orders
    credit_warning_fraction: float | None = None  # alert at this fraction of a credit limit
    max_loss_usd: float | None = None  # day's loss (a positive number) that trips
    loss_action: TradingState = TradingState.REDUCING  # REDUCING or HALTED
    # per instrument class ("option", "future", "spot")
    class_max_quantity: dict[str, float] = field(default_factory=dict)
    class_price_band: dict[str, float] = field(default_factory=dict)

    @property
    def velocity(self) -> bool:
        return self.max_orders is not None or self.max_notional_usd is not None

    @property
    def credit(self) -> bool:
        return self.max_gross_usd is not None or self.max_net_usd is not None


class RateWindow:
    """Accepted orders and their notional over a sliding window of ``BUCKETS`` buckets.

    The window at time ``t`` is the bucket of ``t`` and the ``BUCKETS - 1`` before it
    (bucket ``k`` holds ``[k w, (k + 1) w)``, ``w = window / BUCKETS``). Times come from the
    events (an accepted order's decision time), never from a clock: replay rebuilds the same
    ring. A time older than the newest bucket counts in the newest (a wall clock stepping
    back cannot reopen an expired bucket)."""

    __slots__ = ("count", "counts", "ids", "last", "sums", "total", "width_ns")

    def __init__(self, window_ns: int) -> None:
        self.width_ns = max(1, window_ns // BUCKETS)
        self.ids = [-1] * BUCKETS  # bucket number held by each slot
        self.counts = [0] * BUCKETS
        self.sums = [0] * BUCKETS  # micro-USD
        self.last = -1  # newest bucket number
        self.count = 0  # totals over the live buckets (as of ``last``)
        self.total = 0

    def usage(self, t_ns: int) -> tuple[int, int]:
        """(orders, micro-USD) in the window at ``t_ns``, without changing the ring."""
        k = t_ns // self.width_ns
        last = self.last
        if k <= last:
            return self.count, self.total
        if k - last >= BUCKETS:
            return 0, 0
        c, s = self.count, self.total
        ids = self.ids
        for j in range(last - BUCKETS + 1, k - BUCKETS + 1):  # buckets that leave
            slot = j % BUCKETS
            if ids[slot] == j:
                c -= self.counts[slot]
                s -= self.sums[slot]
        return c, s

    def add(self, t_ns: int, amount: int) -> None:
        """One accepted order of ``amount`` micro-USD at ``t_ns``."""
        k = t_ns // self.width_ns
        last = self.last
        if k > last:
            self.count, self.total = self.usage(t_ns)
            self.last = last = k
        slot = last % BUCKETS
        if self.ids[slot] != last:
            self.ids[slot] = last
            self.counts[slot] = 0
            self.sums[slot] = 0
        self.counts[slot] += 1
        self.sums[slot] += amount
        self.count += 1
        self.total += amount


class Exposure:
    """Credit usage in micro-USD: gross, and the net of each side's worst case (positions
    plus every working buy; positions minus every working sell)."""

    __slots__ = ("gross", "net_buy", "net_sell")

    def __init__(self) -> None:
        self.gross = self.net_buy = self.net_sell = 0

    @property
    def net(self) -> int:
        return max(abs(self.net_buy), abs(self.net_sell))

    def add(self, dg: int, db: int, ds: int) -> None:
        self.gross += dg
        self.net_buy += db
        self.net_sell += ds


class Scope:
    """What an account and a group both keep: limits, windows, exposure, loss state."""

    __slots__ = ("alerted", "exposure", "limits", "notional_window", "orders_window", "tripped")

    def __init__(self, limits: ControlLimits | None) -> None:
        self.exposure = Exposure()
        self.tripped = False  # the loss limit has tripped this trading day
        self.alerted = [False, False]  # gross, net usage at or above the warning fraction
        self.limits = limits
        self.orders_window: RateWindow | None = None
        self.notional_window: RateWindow | None = None
        self.set_limits(limits)

    def set_limits(self, limits: ControlLimits | None) -> None:
        """New limits; a window of the same length keeps what it has counted."""
        self.limits = limits
        ow = nw = None
        if limits is not None and limits.max_orders is not None:
            ow = _keep(self.orders_window, limits.orders_window_ns)
        if limits is not None and limits.max_notional_usd is not None:
            nw = _keep(self.notional_window, limits.notional_window_ns)
        self.orders_window, self.notional_window = ow, nw


def _keep(old: RateWindow | None, window_ns: int) -> RateWindow:
    if old is not None and old.width_ns == max(1, window_ns // BUCKETS):
        return old
    return RateWindow(window_ns)


class Group(Scope):
    __slots__ = ("children", "group_id", "members", "parent")

    def __init__(self, group_id: str, parent: Group | None, limits: ControlLimits | None):
        super().__init__(limits)
        self.group_id = group_id
        self.parent = parent
        self.members: dict[str, None] = {}  # account ids, in the order they joined
        self.children: list[Group] = []

    def chain(self) -> tuple[Group, ...]:
        """This group and every group enclosing it, innermost first."""
        out, g = [], self
        while g is not None:
            out.append(g)
            g = g.parent
        return tuple(out)


class AccountControls(Scope):
    """An account's control state (present once it has control limits or a group).

    The ``plan_*`` tuples flatten what the order path checks and updates over the account
    and every enclosing group, so that a decision loops over prepared tuples instead of
    walking scopes and limits (derived: rebuilt by :meth:`replan` whenever limits or
    membership change, never stored)."""

    __slots__ = (
        "active", "baseline_usd", "book", "groups", "plan_alerts", "plan_class", "plan_credit",
        "plan_exposures", "plan_loss", "plan_notional", "plan_orders", "plan_windows",
        "track",
    )  # fmt: skip

    def __init__(self, limits: ControlLimits | None, book: ControlBook) -> None:
        super().__init__(limits)
        self.book = book  # where alerts are queued
        self.baseline_usd = 0.0  # equity at the start of the trading day, deposits added
        self.groups: tuple[Group, ...] = ()  # enclosing groups, innermost first
        self.replan()

    def replan(self) -> None:
        scopes: tuple[Scope, ...] = (self, *self.groups)
        orders, notional, credit, alerts, windows = [], [], [], [], []
        for sc in scopes:
            lim = sc.limits
            if lim is None:
                continue
            if sc.orders_window is not None:
                orders.append((sc.orders_window, sc.orders_window.width_ns, lim.max_orders, sc))
                windows.append(sc.orders_window)
            if sc.notional_window is not None:
                cap = round(lim.max_notional_usd * MICRO)  # type: ignore[operator]
                nw = sc.notional_window
                notional.append((nw, nw.width_ns, cap, sc))
                windows.append(nw)
            if lim.credit:
                gross = None if lim.max_gross_usd is None else round(lim.max_gross_usd * MICRO)
                net = None if lim.max_net_usd is None else round(lim.max_net_usd * MICRO)
                credit.append((sc.exposure, gross, net, sc))
                f = lim.credit_warning_fraction
                if f is not None:
                    # the usage (micro-USD) at which each credit usage warns, or None
                    alerts.append((
                        sc.exposure, sc.alerted, None if gross is None else f * gross,
                        None if net is None else f * net, sc,
                    ))  # fmt: skip
        self.plan_orders = tuple(orders)
        self.plan_notional = tuple(notional)
        self.plan_credit = tuple(credit)
        self.plan_alerts = tuple(alerts)
        self.plan_windows = tuple(windows)
        self.plan_exposures = tuple(sc.exposure for sc in scopes)
        # credit usage is kept only while a credit limit of the account or a group needs it
        # (turning it on recomputes it: track.recompute); the order path runs the controls'
        # step only when something is to be checked
        self.track = bool(credit)
        lim = self.limits
        # per instrument kind: (class, max quantity or None, price band or None), or None
        # when the account has no class limit
        self.plan_class = None
        if lim is not None and (lim.class_max_quantity or lim.class_price_band):
            self.plan_class = {
                kind: (cls, lim.class_max_quantity.get(cls), lim.class_price_band.get(cls))
                for kind, cls in KIND_CLASS.items()
            }
        self.plan_loss = None if lim is None else lim.max_loss_usd
        self.active = bool(orders or notional or credit) or (
            lim is not None
            and (lim.max_loss_usd is not None or bool(lim.class_max_quantity)
                 or bool(lim.class_price_band))
        )  # fmt: skip

    @property
    def group_id(self) -> str:
        return self.groups[0].group_id if self.groups else ""

    @property
    def needed(self) -> bool:
        return self.limits is not None or bool(self.groups)


@dataclass(eq=False)
class ControlBook:
    """The book's share of the controls: groups, the trading day, and what apply queued for
    the engine to act on (loss breaches to trip, credit alerts to publish)."""

    groups: dict[str, Group] = field(default_factory=dict)
    day_start_ns: int = 0  # start of the current trading day (0: none started yet)
    # account ids and group ids whose loss may have crossed their limit (engine checks)
    loss_candidates: dict[tuple[bool, str], None] = field(default_factory=dict)
    # (account id or "", group id or "", limit name, limit USD, usage USD, fraction)
    alerts: list[tuple[str, str, str, float, float, float]] = field(default_factory=list)
