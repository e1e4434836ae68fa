"""What ``apply`` does for the controls: windows, exposure, loss candidates, alerts.

Called only from :mod:`riskgate.engine.apply` (the one writer) and so deterministic: times
come from events, sums of USD are integers of micro-USD, iteration is in insertion order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskgate.engine.controls.model import (
    BUCKETS,
    MICRO,
    AccountControls,
    ControlBook,
    Group,
    Scope,
)
from riskgate.models.risk_table import USD

if TYPE_CHECKING:
    from riskgate.domain.instruments import Instrument
    from riskgate.engine.book import Account, Book
    from riskgate.engine.market import MarketState, Quote


def unit_usd(inst: Instrument, quote: Quote) -> float:
    """USD notional of one unit at mark: an inverse future's unit is a USD (its face); an
    option counts its underlying (multiplier x index); the others multiplier x mark."""
    if inst.sized_in_usd:
        return 1.0
    if inst.is_option:
        return quote.notional_usd
    return quote.mark * quote.usd_per_quote * inst.multiplier


def contrib(q: float, wb: float, ws: float, n: float) -> tuple[int, int, int]:
    """(gross, net buy side, net sell side) micro-USD of one symbol: position ``q``,
    working buys ``wb`` and sells ``ws`` (units), ``n`` USD per unit."""
    b = q + wb
    s = q - ws
    return round(max(abs(b), abs(s)) * n * MICRO), round(b * n * MICRO), round(s * n * MICRO)


def equity_usd(acc: Account, market: MarketState) -> float:
    total = 0.0
    for ccy, pool in acc.pools.items():
        total += pool.equity * (1.0 if ccy == USD else market.snapshot.index(ccy))
    return total


def day_pnl_usd(acc: Account, st: AccountControls) -> float:
    market = acc.market
    return 0.0 if market is None else equity_usd(acc, market) - st.baseline_usd


def _symbol_contrib(acc: Account, market: MarketState, sym: str) -> tuple[int, int, int]:
    inst = market.instruments[sym]
    ccy = acc.pool_currency(market, sym)
    return contrib(
        acc.position(ccy, sym), acc.working_buy.get(sym, 0.0), acc.working_sell.get(sym, 0.0),
        unit_usd(inst, market.quotes[sym]),
    )  # fmt: skip


def usd_per_unit(market: MarketState, sym: str) -> float:
    """:func:`unit_usd` of ``sym`` at ``market``, kept in ``market.units_usd`` (computed once
    per symbol and market version; the order path reads it for every order)."""
    n = market.units_usd.get(sym)
    if n is None:
        n = market.units_usd[sym] = unit_usd(market.instruments[sym], market.quotes[sym])
    return n


def exposure_changed(
    acc: Account, market: MarketState, q1: float, sym: str, q0: float, wb0: float, ws0: float
) -> None:
    """A symbol's position or working orders changed from (q0, wb0, ws0) to position ``q1``
    and the working totals the account holds now (the arithmetic of :func:`contrib` and of
    :func:`_push`, inline: this runs for every accepted order)."""
    st: AccountControls = acc.controls  # type: ignore[assignment]
    n = market.units_usd.get(sym)
    if n is None:
        n = usd_per_unit(market, sym)
    n *= MICRO
    b0 = q0 + wb0
    s0 = q0 - ws0
    b1 = q1 + acc.working_buy.get(sym, 0.0)
    s1 = q1 - acc.working_sell.get(sym, 0.0)
    # an order moves one side only: an unchanged side (or gross) contributes exactly 0,
    # so its two roundings are skipped (same integers as contrib(after) - contrib(before))
    db = 0 if b1 == b0 else round(b1 * n) - round(b0 * n)
    ds = 0 if s1 == s0 else round(s1 * n) - round(s0 * n)
    g0 = max(abs(b0), abs(s0))
    g1 = max(abs(b1), abs(s1))
    dg = 0 if g1 == g0 else round(g1 * n) - round(g0 * n)
    if not (dg or db or ds):
        return
    for e in st.plan_exposures:  # the account's and every enclosing group's
        e.gross += dg
        e.net_buy += db
        e.net_sell += ds
    for e, flags, gross_at, net_at, sc in st.plan_alerts:
        if (gross_at is not None and (e.gross >= gross_at) is not flags[0]) or (
            net_at is not None and (max(abs(e.net_buy), abs(e.net_sell)) >= net_at) is not flags[1]
        ):
            _alert(st.book, sc, acc.account_id)


def recompute(book: Book, acc: Account) -> None:
    """The account's whole exposure at its market (marks moved, positions reconciled)."""
    st = acc.controls
    market = acc.market
    if st is None or market is None or not st.track:
        return
    g = b = s = 0
    syms = dict.fromkeys([*acc.positions, *acc.working_buy, *acc.working_sell])
    for sym in syms:
        dg, db, ds = _symbol_contrib(acc, market, sym)
        g += dg
        b += db
        s += ds
    e = st.exposure
    if g != e.gross or b != e.net_buy or s != e.net_sell:
        _push(book.controls, acc, st, g - e.gross, b - e.net_buy, s - e.net_sell)


def _push(cb: ControlBook, acc: Account, st: AccountControls, dg: int, db: int, ds: int) -> None:
    for e in st.plan_exposures:  # the account's and every enclosing group's
        e.gross += dg
        e.net_buy += db
        e.net_sell += ds
    for e, flags, gross_at, net_at, sc in st.plan_alerts:
        if (gross_at is not None and (e.gross >= gross_at) is not flags[0]) or (
            net_at is not None and (e.net >= net_at) is not flags[1]
        ):
            _alert(cb, sc, acc.account_id)


def move_exposure(cb: ControlBook, st: AccountControls, groups: tuple[Group, ...], sign: int):
    """Add (sign 1) or remove (-1) the account's exposure to ``groups``."""
    e = st.exposure
    for grp in groups:
        grp.exposure.add(sign * e.gross, sign * e.net_buy, sign * e.net_sell)
        _alert(cb, grp, "")


def _alert(cb: ControlBook, sc: Scope, account_id: str) -> None:
    """Alerted flags follow usage >= warning x limit; the alert is queued on the rise only
    (so the flags depend on the usage alone, not on the path to it). ``account_id``: the
    account whose change it is (a group's alert names the group instead)."""
    if isinstance(sc, Group):
        account_id, group_id = "", sc.group_id
    else:
        group_id = ""
    lim = sc.limits
    if lim is None or lim.credit_warning_fraction is None:
        return
    f = lim.credit_warning_fraction
    for k, (limit, used) in enumerate(
        ((lim.max_gross_usd, sc.exposure.gross), (lim.max_net_usd, sc.exposure.net))
    ):
        if limit is None:
            continue
        above = used >= f * round(limit * MICRO)
        if above and not sc.alerted[k]:
            name = ("gross_notional", "net_notional")[k]
            cb.alerts.append((account_id, group_id, name, limit, used / MICRO, f))
        sc.alerted[k] = above


def order_accepted(
    acc: Account, market: MarketState, sym: str, accepted_ns: int, units: float
) -> None:
    """An accepted order of ``units`` of ``sym`` counts, at its USD notional, in the
    account's and every enclosing group's windows."""
    st: AccountControls = acc.controls  # type: ignore[assignment]
    n = market.units_usd.get(sym)
    if n is None:
        n = usd_per_unit(market, sym)
    amount = round(units * n * MICRO)
    for w in st.plan_windows:
        last = w.last
        if accepted_ns // w.width_ns == last:
            slot = last % BUCKETS  # the newest bucket (it holds ``last``): nothing to expire
            w.counts[slot] += 1
            w.sums[slot] += amount
            w.count += 1
            w.total += amount
        else:
            w.add(accepted_ns, amount)


def after_refresh(book: Book, acc: Account) -> None:
    """The account was re-margined: its (or a group's) loss may have crossed its limit."""
    st = acc.controls
    loss = st.plan_loss
    if loss is not None and not st.tripped and day_pnl_usd(acc, st) < -loss:
        book.controls.loss_candidates[(False, acc.account_id)] = None
    if not st.groups:
        return
    cands = book.controls.loss_candidates
    for grp in st.groups:
        gl = grp.limits
        if gl is not None and gl.max_loss_usd is not None and not grp.tripped:
            cands[(True, grp.group_id)] = None


def group_accounts(book: Book, grp: Group) -> list[Account]:
    """Every account of the group and of the groups inside it, in a fixed order."""
    out = [book.accounts[a] for a in grp.members]
    for child in grp.children:
        out.extend(group_accounts(book, child))
    return out


def group_pnl_usd(book: Book, grp: Group) -> float:
    total = 0.0
    for acc in group_accounts(book, grp):
        total += day_pnl_usd(acc, acc.controls)
    return total
