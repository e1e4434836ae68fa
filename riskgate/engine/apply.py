"""The one writer: :func:`apply` changes the book by one event, and nothing else changes it.

``apply`` is deterministic: it reads only the event and the book (no clock, no randomness, no
I/O), iterates in insertion order only, and so rebuilds bit for bit the same book from the
same events, whether they come from live decisions or from the journal. It trusts its event:
deciding (``decide``, ``admin``, ``lifecycle``, ``market_update``) has validated it.

The live engine calls it with the account's lock and the commit lock held; a ``hint`` may
hand over work a decision has already done (the what-if arrays of an accepted order), which
changes the speed of ``apply``, never its result.

Units and settlement. Positions are held in units (:mod:`riskgate.engine.book`): an inverse
future's or perpetual's is a fixed USD notional ``N``, converted from coin at the fill price
(at the mark for a reconciliation). Futures and perpetuals settle their variation margin
against a basis ``b`` per position — ``b − N / m`` coin (inverse), ``q × multiplier × m − b``
USD (linear) at mark ``m`` — recomputed from the current mark on every market update rather
than accumulated update by update, so the settlement is a function of the mark alone: a
path of marks that comes back to where it started settles exactly zero, and any path
settles what one step from its start to its end does (per update, ``N (1/m0 − 1/m1)``).
The collateral an account shows and margins is its balance plus that variation margin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from riskgate.domain.instruments import USD_LIKE, Instrument, Kind
from riskgate.engine import lifecycle
from riskgate.engine.book import (
    Account,
    AccountPool,
    Book,
    WorkingOrder,
    margin_status,
    pool_currency,
    side_figures,
)
from riskgate.engine.controls import handlers as controls
from riskgate.engine.controls import track as control_track
from riskgate.engine.events import (
    AccountUpserted,
    Audited,
    DecisionRemembered,
    Event,
    MarketApplied,
    MarketSourced,
    OrderAccepted,
    OrderStep,
    PositionsSet,
    ReservationsExpired,
    TradingStateSet,
)
from riskgate.engine.market import MarketState, build_market_state
from riskgate.engine.types import (
    Acknowledged,
    Amended,
    Decision,
    Filled,
    MarginMethod,
    MarginStatus,
    OrderRequest,
    OrderStatus,
    PoolMode,
    Side,
    TradingState,
)
from riskgate.models.risk_table import USD

_EPS = 1e-12
_BUY = Side.BUY
_RULES = MarginMethod.RULES_BASED
_FUTURES = (Kind.FUTURE, Kind.PERPETUAL)


class AcceptHint(NamedTuple):
    """What the decision of an accepted order computed: its pool (perhaps not yet the
    account's) with the what-if staged, and the side's (IM, MM, scenario key) after it."""

    pool: AccountPool
    side_after: tuple[float, float, tuple[int, int, float]]


def apply(book: Book, event: Event, hint: Any = None) -> None:
    """Change ``book`` by ``event``."""
    _HANDLERS[type(event)](book, event, hint)


# ------------------------------------------------------------------ market data


def _market_applied(book: Book, ev: MarketApplied, hint: MarketState | None) -> None:
    # accounts follow lazily (bind): each before the next event that touches it; the live
    # engine binds at once those whose status the update changes (accounts_to_bind), replay
    # binds all of them: either way an account binds to the same bits
    if hint is None:
        hint = build_market_state(ev.version, ev.snapshot, book.model, book.rules_params)
        hint.received_ns = ev.received_ns
    # the whole book re-margined on the new tables in one kernel call per chunk of rows,
    # before the market is current (no account can bind to it half-computed); each
    # account adopts its rows when it binds
    book.arrays.remargin(hint, book.config.pm_equity_minimum_usd)
    book.market = hint


def bind(book: Book, acc: Account) -> None:
    """Bring an account to the book's market: futures settle their variation margin at the
    new marks, the pools are rebuilt and margined on the new risk tables, the status is
    refreshed."""
    new, old = book.market, acc.market
    if new is old or new is None:
        return
    if old is not None:
        for ccy in dict.fromkeys(settle_currency(new.instruments[s]) for s in acc.basis):
            _sync_collateral(acc, new, ccy, rebuild_next=True)
    # holdings (collateral rows included) are rebuilt on the new tables; cash is kept
    margins = {ccy: pool.rebind(new, new.tables[ccy]) for ccy, pool in acc.pools.items()}
    acc.market = new
    if acc.controls is not None and acc.controls.track:
        control_track.recompute(book, acc)  # credit usage at the new marks
    refresh_account(book, acc, margins)


def bind_all(book: Book) -> None:
    """Every account on the current market (replay: right after each MarketApplied)."""
    for acc in book.accounts.values():
        bind(book, acc)


def accounts_to_bind(book: Book) -> list[Account]:
    """The accounts the current market must be bound to right away (the live engine's
    market update; the others bind, to the same state, when next touched)."""
    market = book.market
    if market is None:
        return []
    out = [a for a in book.arrays.accounts_to_bind(market) if a.market is not market]
    # pre-trade controls follow the marks (loss limits trip on a market move; a group's
    # credit usage sums its members at their marks): such accounts never bind lazily
    chosen = {id(a) for a in out}
    out.extend(
        a
        for a in book.accounts.values()
        if a.controls is not None and a.market is not market and id(a) not in chosen
    )
    return out


# ------------------------------------------------------------------ administration


def _account_upserted(book: Book, ev: AccountUpserted, hint: Any) -> None:
    market = book.market
    assert market is not None
    acc = book.accounts.get(ev.account_id)
    created = acc is None
    if acc is None:
        halted, why = book.halt_all
        acc = Account(
            ev.account_id,
            ev.pool_mode or PoolMode.CROSS,
            ev.margin_method or MarginMethod.AUTO,
            ev.limits or book.config.default_limits,
            TradingState.HALTED if halted else TradingState.ACTIVE,
            why if halted else "",
            market=market,
            arrays=book.arrays,
        )
        book.accounts[ev.account_id] = acc
    eq0 = None
    if not created:
        bind(book, acc)
        if acc.controls is not None:
            eq0 = control_track.equity_usd(acc, market)
        if ev.pool_mode is not None and ev.pool_mode != acc.pool_mode:
            # only while the account holds nothing (checked when deciding)
            acc.pool_mode = ev.pool_mode
            acc.pools.clear()
            for ccy, amount in acc.collateral.items():
                _pool_of_collateral(acc, market, ccy).set_collateral(ccy, amount)
        if ev.limits is not None:
            acc.limits = ev.limits
    if ev.margin_method is not None:
        acc.margin_method = ev.margin_method
    for ccy, amount in ev.collateral:
        # the balance becomes the amount: what the open futures settled into it so far is in
        # the amount, so they settle from the current marks on
        acc.collateral[ccy] = amount
        _rebase(acc, market, ccy)
        _sync_collateral(acc, market, ccy)
    if created and not acc.pools:
        acc.pool(market, USD)
    refresh_account(book, acc)
    controls.account_upserted(book, acc, ev, eq0)


def _positions_set(book: Book, ev: PositionsSet, hint: Any) -> None:
    acc = book.accounts[ev.account_id]
    bind(book, acc)
    market = acc.market
    assert market is not None
    current = acc.positions
    target = {sym: _reconciled_units(market, sym, qty, current) for sym, qty, _ in ev.positions}
    for sym in dict.fromkeys([*current, *target]):  # insertion order: deterministic
        dq = target.get(sym, 0.0) - current.get(sym, 0.0)
        if dq != 0.0:
            ccy = acc.pool_currency(market, sym)
            pool = acc.pool(market, ccy)
            pool.change(market, sym, dq, 0.0, 0.0)
            inst = market.instruments[sym]
            if inst.kind in _FUTURES:
                # reconciled at the mark: no settlement now
                mark = market.quotes[sym].mark
                _futures_step(
                    acc, market, inst, sym, pool.P.qty.get(sym, 0.0), at_mark(inst, dq, mark)
                )
    acc.avg_price = {sym: avg for sym, _, avg in ev.positions if avg is not None}
    for pool in acc.pools.values():
        acc.refresh_margin(pool)
    if acc.controls is not None:
        control_track.recompute(book, acc)
    refresh_account(book, acc)


def _trading_state_set(book: Book, ev: TradingStateSet, hint: Any) -> None:
    if ev.all_accounts:
        book.halt_all = (ev.state == TradingState.HALTED, ev.reason)
        targets = list(book.accounts.values())
    else:
        targets = [book.accounts[ev.account_id]]
    for acc in targets:
        acc.trading_state = ev.state
        acc.trading_state_reason = ev.reason


# ------------------------------------------------------------------ decisions


def _reconciled_units(
    market: MarketState, sym: str, qty: float, current: Mapping[str, float]
) -> float:
    """A reconciled quantity in units: an inverse future's converted at the mark, unless it
    is the quantity the account shows now (then the notional stays exactly as it is)."""
    inst = market.instruments[sym]
    if not inst.sized_in_usd:
        return qty
    mark = market.quotes[sym].mark
    now = current.get(sym, 0.0)
    if now != 0.0 and inst.to_quantity(now, mark) == qty:
        return now
    return inst.to_units(qty, mark)


def order_unit(inst: Instrument, price: float | None, mark: float) -> float:
    """Units an order reserves per unit of quantity: an inverse future's or perpetual's USD
    notional at the order's limit price (at the mark without one), else 1."""
    if not inst.sized_in_usd:
        return 1.0
    return inst.units_per_quantity(mark if price is None else price)


def _order_accepted(book: Book, ev: OrderAccepted, hint: AcceptHint | None) -> None:
    req = ev.request
    acc = book.accounts[req.account_id]
    bind(book, acc)
    market = acc.market
    assert market is not None
    table = market.tables[ev.pool]
    if hint is not None and hint.pool.table is not table:
        hint = None  # the market moved on between the decision and its commit
    pool = acc.pools.get(ev.pool)
    if pool is None:
        pool = (
            hint.pool
            if hint is not None
            else AccountPool(table, acc.method_in_use is _RULES, acc.arrays)
        )
        acc.pools[ev.pool] = pool
        acc.mirror()
    side = Side(req.side)
    qty = float(req.quantity)
    unit = order_unit(market.instruments[ev.symbol], req.price, market.quotes[ev.symbol].mark)
    _work(acc, market, pool, ev.symbol, side, qty * unit)
    if hint is not None:
        # the side's state took the change its what-if evaluated: same figures
        if side is _BUY:
            pool.im_B, pool.mm_B, pool.scen_B = hint.side_after
        else:
            pool.im_S, pool.mm_S, pool.scen_S = hint.side_after
        pool.im = max(pool.im_B, pool.im_S)
        pool.mm = max(pool.mm_B, pool.mm_S)
    else:
        acc.refresh_margin(pool)
    coid = req.client_order_id
    acc.orders[coid] = WorkingOrder(
        req, ev.symbol, side, ev.pool, qty, req.price, ev.accepted_ns, ev.reserve_until_ns,
        unit=unit,
    )  # fmt: skip
    acc.open_orders += 1
    if acc.controls is not None and acc.controls.plan_windows:
        # the velocity windows count it at its decision time
        control_track.order_accepted(acc, market, ev.symbol, ev.accepted_ns, qty * unit)
    acc.pending[coid] = ev.reserve_until_ns
    book.pending_accounts.add(acc)
    _remember(book, acc, req, ev.decision, ev.accepted_ns)


def _decision_remembered(book: Book, ev: DecisionRemembered, hint: Any) -> None:
    acc = book.accounts[ev.request.account_id]
    _remember(book, acc, ev.request, ev.decision, ev.decided_ns)


def _remember(book: Book, acc: Account, req: OrderRequest, d: Decision, now_ns: int) -> None:
    cfg = book.config
    acc.remember(d, req, now_ns, cfg.idempotency_window, cfg.idempotency_ttl_ns)


# ------------------------------------------------------------------ order lifecycle


def _order_step(book: Book, ev: OrderStep, hint: Any) -> None:
    acc = book.accounts[ev.account_id]
    bind(book, acc)
    market = acc.market
    assert market is not None
    order = acc.orders[ev.client_order_id]
    body = ev.body
    new_status = lifecycle.next_status(order, body)
    if isinstance(body, Acknowledged):
        if order.status == OrderStatus.PENDING_ACK:
            acc.pending.pop(ev.client_order_id, None)
        order.venue_order_id = body.venue_order_id or order.venue_order_id
    elif isinstance(body, Filled):
        _fill(acc, market, order, body)
    elif isinstance(body, Amended):
        _amend(acc, market, order, body)
    else:  # venue rejected, cancelled, expired: the rest of the order stops working
        _work(acc, market, acc.pools[order.pool], order.symbol, order.side, -order.working_units)
    was_working = order.status.is_working
    order.status = new_status
    if new_status == OrderStatus.PARTIALLY_FILLED:
        acc.pending.pop(ev.client_order_id, None)
    if was_working and not new_status.is_working:
        acc.order_ended(order, book.config.idempotency_window)
    acc.refresh_margin(acc.pools[order.pool])
    refresh_account(book, acc)


def _amend(acc: Account, market: MarketState, order: WorkingOrder, body: Amended) -> None:
    """New quantity and / or price; an inverse future's reservation follows its price."""
    old_q, old_unit = order.quantity, order.unit
    new_q = old_q if body.new_quantity is None else body.new_quantity
    if body.new_price is not None:
        order.price = body.new_price
        inst = market.instruments[order.symbol]
        order.unit = order_unit(inst, body.new_price, market.quotes[order.symbol].mark)
    if order.unit == old_unit:
        d = (new_q - old_q) * old_unit
    else:
        d = (new_q - order.filled) * order.unit - (old_q - order.filled) * old_unit
    if d != 0.0:
        _work(acc, market, acc.pools[order.pool], order.symbol, order.side, d)
    order.quantity = new_q


def _fill(acc: Account, market: MarketState, order: WorkingOrder, ev: Filled) -> None:
    f = min(ev.fill_quantity, order.working)
    sym = order.symbol
    inst = market.instruments[sym]
    p = ev.fill_price
    signed = f if order.side is _BUY else -f
    pool = acc.pools[order.pool]
    q0 = pool.P.qty.get(sym, 0.0)
    # the position moves by the fill in units: an inverse future's USD notional at its price
    d = inst.to_units(signed, p)
    q1 = q0 + d
    if inst.sized_in_usd and q1 != 0.0 and abs(q1) <= _EPS * max(abs(q0), abs(d)):
        d = -q0  # the fill closes the position: what rounding would leave of it is dropped
    # position up by the fill, the working order down by what it reserved for it
    _work(acc, market, pool, sym, order.side, -f * order.unit, d)
    q1 = pool.P.qty.get(sym, 0.0)
    if q1 == 0.0:
        acc.avg_price.pop(sym, None)
    elif q0 == 0.0 or q0 * q1 < 0.0:
        acc.avg_price[sym] = p
    elif abs(q1) > abs(q0):
        a0 = acc.avg_price.get(sym, p)
        if inst.sized_in_usd:
            # the entry of a USD notional: notional over the coin it cost (harmonic mean)
            acc.avg_price[sym] = abs(q1) / (abs(q0) / a0 + abs(d) / p)
        else:
            acc.avg_price[sym] = (a0 * abs(q0) + p * f) / abs(q1)
    if inst.kind in _FUTURES:
        # the fill joins the position's basis at its price: N / p = q x multiplier coin
        # (inverse), q x multiplier x p USD (linear); against the mark that is its cash now
        _futures_step(
            acc, market, inst, sym, q1, signed * inst.multiplier * (1.0 if inst.is_inverse else p)
        )
    elif inst.is_option and inst.is_inverse:
        _add_cash(acc, market, inst.underlying, -signed * inst.multiplier * p)
    else:  # spot and linear options pay the premium / price in USD
        _add_cash(acc, market, USD, -signed * inst.multiplier * p)
    order.filled += f
    if ev.fill_id:
        if order.fill_ids is None:
            order.fill_ids = set()
        order.fill_ids.add(ev.fill_id)


def _reservations_expired(book: Book, ev: ReservationsExpired, hint: Any) -> None:
    acc = book.accounts[ev.account_id]
    bind(book, acc)
    market = acc.market
    assert market is not None
    for coid in ev.client_order_ids:
        o = acc.orders[coid]
        _work(acc, market, acc.pools[o.pool], o.symbol, o.side, -o.working_units)
        o.status = OrderStatus.RESERVATION_EXPIRED
        acc.order_ended(o, book.config.idempotency_window)
    for pool in acc.pools.values():
        acc.refresh_margin(pool)
    if not acc.pending:
        book.pending_accounts.discard(acc)


# ------------------------------------------------------------------ shared steps


def _work(
    acc: Account,
    market: MarketState,
    pool: AccountPool,
    symbol: str,
    side: Side,
    d_working: float,
    d_position: float = 0.0,
) -> None:
    """The one place a working quantity changes (with a position change, for a fill): the
    side's state and the account's working total of that side move together (in units)."""
    buy = side is _BUY
    st = acc.controls
    if st is not None and not st.track:
        st = None
    if st is not None:  # credit usage follows the symbol's position and working orders
        before = (
            pool.P.qty.get(symbol, 0.0), acc.working_buy.get(symbol, 0.0),
            acc.working_sell.get(symbol, 0.0),
        )  # fmt: skip
    if buy:
        pool.change(market, symbol, d_position, d_working, 0.0)
        working = acc.working_buy
    else:
        pool.change(market, symbol, d_position, 0.0, d_working)
        working = acc.working_sell
    v = working.get(symbol, 0.0) + d_working
    if abs(v) <= _EPS * max(1.0, abs(d_working)):
        working.pop(symbol, None)
        if d_working < 0.0:
            # released to nothing: the side's state is the position again, exactly
            pool.align(market, symbol, buy)
    else:
        working[symbol] = v
    if st is not None:
        q1 = pool.P.qty.get(symbol, 0.0)
        control_track.exposure_changed(acc, market, q1, symbol, *before)


def _pool_of_collateral(acc: Account, market: MarketState, ccy: str) -> AccountPool:
    if ccy in USD_LIKE or not acc.segregated:
        return acc.pool(market, USD)
    return acc.pool(market, ccy)


def _add_cash(acc: Account, market: MarketState, ccy: str, amount: float) -> None:
    if amount == 0.0:
        return
    acc.collateral[ccy] = acc.collateral.get(ccy, 0.0) + amount
    _sync_collateral(acc, market, ccy)


# ------------------------------------------------------------------ futures settlement


def settle_currency(inst: Instrument) -> str:
    """Where a future's variation margin settles: its coin (inverse) or USD (linear)."""
    return inst.underlying if inst.is_inverse else USD


def variation_margin(inst: Instrument, units: float, basis: float, mark: float) -> float:
    """What a futures position has settled against its basis at ``mark``: ``b − N / m`` coin
    for an inverse one (units: USD notional ``N``), ``q × multiplier × m − b`` USD else."""
    if inst.is_inverse:
        return basis - units / mark
    return units * inst.multiplier * mark - basis


def at_mark(inst: Instrument, units: float, mark: float) -> float:
    """The basis of ``units`` entered at ``mark`` (its variation margin there is 0)."""
    if inst.is_inverse:
        return units / mark
    return units * inst.multiplier * mark


def _futures_step(
    acc: Account, market: MarketState, inst: Instrument, sym: str, q1: float, d_basis: float
) -> None:
    """A futures position became ``q1`` units and its basis moved by ``d_basis``; a closed
    position's settlement joins the balance."""
    b = acc.basis.get(sym, 0.0) + d_basis
    ccy = settle_currency(inst)
    if q1 == 0.0:
        acc.basis.pop(sym, None)
        vm = variation_margin(inst, 0.0, b, market.quotes[sym].mark)
        if vm != 0.0:
            acc.collateral[ccy] = acc.collateral.get(ccy, 0.0) + vm
    else:
        acc.basis[sym] = b
    _sync_collateral(acc, market, ccy)


def _rebase(acc: Account, market: MarketState, ccy: str) -> None:
    """The futures settling in ``ccy`` start settling afresh from the current marks."""
    for sym in acc.basis:
        inst = market.instruments[sym]
        if settle_currency(inst) == ccy:
            units = acc.position(acc.pool_currency(market, sym), sym)
            acc.basis[sym] = at_mark(inst, units, market.quotes[sym].mark)


def collateral_total(acc: Account, market: MarketState, ccy: str) -> float:
    """The balance in ``ccy`` plus what the futures settling in it have settled at the
    current marks (the same sum, in the same order, whatever path the marks took)."""
    total = acc.collateral.get(ccy, 0.0)
    for sym, b in acc.basis.items():
        inst = market.instruments[sym]
        if settle_currency(inst) == ccy:
            units = acc.position(acc.pool_currency(market, sym), sym)
            total += variation_margin(inst, units, b, market.quotes[sym].mark)
    return total


def collateral_view(acc: Account, market: MarketState) -> dict[str, float]:
    """Collateral per currency as the account shows it: balances plus variation margin (a
    currency only the futures settle in is shown once it is not zero)."""
    ccys = [*acc.collateral, *(settle_currency(market.instruments[s]) for s in acc.basis)]
    out = {}
    for ccy in dict.fromkeys(ccys):
        total = collateral_total(acc, market, ccy)
        if ccy in acc.collateral or total != 0.0:
            out[ccy] = total
    return out


def _sync_collateral(
    acc: Account, market: MarketState, ccy: str, rebuild_next: bool = False
) -> None:
    pool = _pool_of_collateral(acc, market, ccy)
    pool.set_collateral(ccy, collateral_total(acc, market, ccy), rebuild_next)


def equity_usd(acc: Account, market: MarketState) -> float:
    total = 0.0
    for ccy, pool in acc.pools.items():
        total += pool.P.equity * (1.0 if ccy == USD else market.snapshot.index(ccy))
    return total


def positions_margin(
    acc: Account, pool: AccountPool, out3: np.ndarray | None = None
) -> tuple[float, float]:
    """(IM, MM) of the pool's positions alone (no working orders)."""
    if acc.method_in_use == _RULES:
        return pool.rules["P"].im, pool.rules["P"].mm
    im, mm, _ = side_figures(pool.P.margin_out() if out3 is None else out3[0])
    return im, mm


def refresh_account(
    book: Book, acc: Account, margins: Mapping[str, np.ndarray] | None = None
) -> None:
    """Method in use, cached margins and margin status (a change is queued in
    ``book.status_changes``). ``margins``: per pool, what a rebind has just computed."""
    market = acc.market
    assert market is not None
    method = acc.margin_method
    if method == MarginMethod.AUTO:
        method = (
            MarginMethod.PORTFOLIO
            if equity_usd(acc, market) >= book.config.pm_equity_minimum_usd
            else MarginMethod.RULES_BASED
        )
    acc.method_in_use = method
    for pool in acc.pools.values():
        pool.set_track_rules(market, method == _RULES)
    worst = MarginStatus.OK
    worst_pool = None
    figures = (0.0, 0.0, 0.0)
    for ccy, pool in acc.pools.items():
        out3 = margins.get(ccy) if margins else None
        acc.refresh_margin(pool, out3)
        im, mm = positions_margin(acc, pool, out3)
        eq = pool.P.equity
        status = margin_status(eq, im, mm)
        if worst_pool is None or status > worst:
            worst, worst_pool, figures = status, ccy, (eq, im, mm)
    if worst != acc.status and worst_pool is not None:
        book.status_changes.append(
            (acc.account_id, acc.status, worst, worst_pool, *figures, market.version)
        )
        acc.status = worst
    acc.mirror()
    if acc.controls is not None:
        control_track.after_refresh(book, acc)


def pool_for_order(acc: Account, market: MarketState, symbol: str) -> str:
    return pool_currency(market.instruments[symbol], acc.segregated)


def _audited(book: Book, ev: Audited, hint: Any) -> None:
    pass  # the audit trail only: nothing changes


def _market_sourced(book: Book, ev: MarketSourced, hint: Any) -> None:
    book.market_seq = ev.market_seq


_HANDLERS = {
    Audited: _audited,
    MarketSourced: _market_sourced,
    MarketApplied: _market_applied,
    AccountUpserted: _account_upserted,
    PositionsSet: _positions_set,
    TradingStateSet: _trading_state_set,
    OrderAccepted: _order_accepted,
    DecisionRemembered: _decision_remembered,
    OrderStep: _order_step,
    ReservationsExpired: _reservations_expired,
    **controls.HANDLERS,
}
