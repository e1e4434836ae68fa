"""Read-only views of an account: margin per pool, positions, working orders, status."""

from __future__ import annotations

import numpy as np

from riskgate.engine.apply import collateral_view, positions_margin
from riskgate.engine.book import Account, margin_status, scenario_info
from riskgate.engine.market import MarketState
from riskgate.engine.types import (
    AccountView,
    MarginStatusEvent,
    OrderType,
    PoolView,
    PositionView,
    ScenarioInfo,
    WorkingOrderView,
)
from riskgate.kernels import margin as mk
from riskgate.models.risk_table import USD


def account_view(acc: Account) -> AccountView:
    """Everything about one account (call with its lock held, the account bound)."""
    market = acc.market
    assert market is not None
    pools: list[PoolView] = []
    eq_usd = im_usd = mm_usd = 0.0
    worst: ScenarioInfo | None = None
    worst_loss = -1.0
    for ccy, pool in sorted(acc.pools.items()):
        im_p, mm_p = positions_margin(acc, pool)
        # scenario and add-ons of the state that sets the pool's IM (orders included)
        binding = pool.B if pool.im_B >= pool.im_S else pool.S
        t = pool.table
        out = np.zeros((len(t.coins) + 1, mk.N_OUT))
        t.model.margin_kernel(binding.pnl, binding.aux, t.und_price, t.gparams, t.uparams, out)
        total = out.shape[0] - 1
        row = out[total]
        scen = scenario_info(t, (int(row[mk.O_CELL]), int(row[mk.O_UND]), float(row[mk.O_WORST])))
        eq = pool.P.equity
        add_ons = {
            n: float(out[total, mk.O_ADDON0 + k]) for k, n in enumerate(market.model.addon_names)
        }
        pools.append(
            PoolView(
                ccy, eq, pool.im, pool.mm, im_p, mm_p, scen, add_ons,
                margin_status(eq, im_p, mm_p), acc.method_in_use,
            )
        )  # fmt: skip
        fx = 1.0 if ccy == USD else market.snapshot.index(ccy)
        eq_usd += eq * fx
        im_usd += pool.im * fx
        mm_usd += pool.mm * fx
        if scen.loss * fx > worst_loss:
            worst_loss, worst = scen.loss * fx, scen
    return AccountView(
        acc.account_id, acc.trading_state, acc.trading_state_reason, acc.pool_mode,
        acc.method_in_use, acc.status, eq_usd, im_usd, mm_usd, worst, pools,
        positions_view(acc, market), working_orders_view(acc), collateral_view(acc, market),
        acc.limits,
        market.version, int(market.valuation_time.timestamp() * 1e9),
    )  # fmt: skip


def positions_view(acc: Account, market: MarketState) -> list[PositionView]:
    out = []
    for sym, q in sorted(acc.positions.items()):
        ccy = acc.pool_currency(market, sym)
        value = q * market.tables[ccy].value(sym)
        inst = market.instruments[sym]
        mark = market.quotes[sym].mark
        # q is in units: an inverse future's USD notional, shown as its coin at the mark
        notional = q if inst.sized_in_usd else None
        out.append(
            PositionView(
                sym, inst.to_quantity(q, mark), acc.avg_price.get(sym), mark, value, ccy, notional
            )
        )
    return out


def working_orders_view(acc: Account) -> list[WorkingOrderView]:
    return [
        WorkingOrderView(
            o.request.client_order_id, o.symbol, o.side, OrderType(o.request.order_type),
            o.quantity, o.filled, o.working, o.price, o.request.reduce_only, o.status,
            o.venue_order_id, o.accepted_ns, o.request.time_in_force,
        )
        for o in acc.orders.values()
        if o.status.is_working
    ]  # fmt: skip


def status_event(acc: Account, view: AccountView, time_ns: int) -> MarginStatusEvent:
    """The account's current status with the figures of its worst pool (the shape of a
    change event)."""
    worst = max(view.pools, key=lambda p: p.margin_status, default=None)
    ccy, eq, im, mm = (
        (worst.currency, worst.equity, worst.positions_initial_margin,
         worst.positions_maintenance_margin)
        if worst is not None else (USD, 0.0, 0.0, 0.0)
    )  # fmt: skip
    return MarginStatusEvent(
        acc.account_id, acc.status, acc.status, ccy, eq, im, mm, time_ns, view.market_version
    )
