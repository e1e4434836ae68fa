"""Attribution: what each holding gains or loses in the scenario that sets the margin.

For a pool state and the margin kernel's output block of exactly that state, each holding
(instrument or coin collateral) gets ``q × risk[row, cell]``: its weighted P&L in pool
currency in the worst scenario, the one cell of the pool under ``deribit`` (coins summed cell
by cell), its own coin's worst cell under ``span`` and ``tims`` (each coin scanned alone).
What the model does beyond summing those P&Ls — deribit's scaling of gains by
``pnl_offset`` and its extended-cell dampener, a coin that loses in no scenario under
span/tims (its cell's gains do not offset another coin's loss) — is one more entry,
``aggregation``, so that the entries sum to ``−worst_case``.

Pure reads of the state: never on the accept path of an order (a margin reject, a WhatIf
that asks for it, ``riskgate margin``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from riskgate.engine.engine import RiskEngine
    from riskgate.engine.state import PoolState
    from riskgate.engine.types import Decision, OrderRequest

from riskgate.kernels import margin as mk
from riskgate.models.risk_table import RiskTable

_THREAD = threading.local()


@contextmanager
def suppressed() -> Iterator[None]:
    """No attribution for rejects decided on this thread meanwhile: MaxQuantity's probes
    (a bisection of what-ifs, most of them rejected) need only accept or reject."""
    before = getattr(_THREAD, "off", False)
    _THREAD.off = True
    try:
        yield
    finally:
        _THREAD.off = before


def wanted() -> bool:
    """Whether a reject decided on this thread carries its attribution."""
    return not getattr(_THREAD, "off", False)


AGGREGATION = "aggregation"
OTHER_LEGS = "other legs"
TOP_LEGS = 5  # legs a decision carries; the rest are summed into "other legs"


class LegPnl(NamedTuple):
    symbol: str  # instrument, collateral:<COIN>, "other legs" or "aggregation"
    quantity: float  # coin (× multiplier); collateral in coin; 0 for the two summaries
    pnl: float  # pool currency, in the worst scenario (negative: a loss)


def _leg_pnls(
    table: RiskTable, units: Mapping[str, float], out: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, float]:
    """(symbols, rows, quantities in units, P&Ls, worst_case) of the non-zero holdings,
    vectorised: one dict lookup per leg in Python, the rest in numpy."""
    total = out.shape[0] - 1
    worst = float(out[total, mk.O_WORST])
    symbols = list(units)
    row = table.row
    rows = np.array([row[s] for s in symbols], dtype=np.int64)
    q = np.array(list(units.values()), dtype=np.float64)
    held = q != 0.0
    if not held.all():
        symbols = [s for s, h in zip(symbols, held.tolist(), strict=True) if h]
        rows, q = rows[held], q[held]
    if table.model.pool_shares_cells:
        cells = np.full(len(symbols), int(out[total, mk.O_CELL]), dtype=np.int64)
    else:
        cells = out[table.attr[rows, mk.A_UND].astype(np.int64), mk.O_CELL].astype(np.int64)
    pnl = q * table.risk[rows, cells]
    return symbols, rows, q, pnl, worst


def _quantity(table: RiskTable, row: int, q: float) -> float:
    """Coin (× multiplier): an inverse future's USD notional at the table's mark."""
    inst = table.instruments[row]
    return inst.to_quantity(q, table.snapshot.future_mark(inst)) if inst.sized_in_usd else q


def attribute(
    table: RiskTable, units: Mapping[str, float], out: np.ndarray
) -> tuple[list[LegPnl], float, float]:
    """``(legs sorted by P&L, largest loss first; aggregation; worst_case)`` of the holdings
    ``units`` (symbol -> quantity in the table's units) whose kernel output is ``out``.
    ``sum(leg pnl) + aggregation == -worst_case`` up to rounding."""
    symbols, rows, q, pnl, worst = _leg_pnls(table, units, out)
    legs = [
        LegPnl(s, _quantity(table, int(r), float(x)), float(p))
        for s, r, x, p in zip(symbols, rows, q, pnl, strict=True)
    ]
    legs.sort(key=lambda leg: (leg.pnl, leg.symbol))
    return legs, -worst - math.fsum(pnl.tolist()), worst


def top_attribution(
    table: RiskTable, units: Mapping[str, float], out: np.ndarray, n: int = TOP_LEGS
) -> tuple[LegPnl, ...]:
    """The ``n`` largest losses, the rest summed as ``other legs``, then ``aggregation``:
    what a decision carries (the entries still sum to ``−worst_case``). Only the ``n``
    legs shown are converted to Python objects."""
    symbols, rows, q, pnl, worst = _leg_pnls(table, units, out)
    order = np.argsort(pnl, kind="stable")
    head = order[:n].tolist()
    out_legs = [
        LegPnl(symbols[k], _quantity(table, int(rows[k]), float(q[k])), float(pnl[k])) for k in head
    ]
    total = float(pnl.sum())  # pairwise summation: exact enough for a sum check to 1e-9
    if len(order) > n:
        out_legs.append(LegPnl(OTHER_LEGS, 0.0, total - math.fsum(leg.pnl for leg in out_legs)))
    out_legs.append(LegPnl(AGGREGATION, 0.0, -worst - total))
    return tuple(out_legs)


def explain_side(
    state: PoolState, out: np.ndarray, symbol: str, signed_units: float
) -> tuple[LegPnl, ...]:
    """The top legs of ``state`` after adding ``signed_units`` on ``symbol``, ``out`` being
    the kernel output of that what-if (``state.whatif_out``)."""
    after = dict(state.qty)
    after[symbol] = after.get(symbol, 0.0) + signed_units
    return top_attribution(state.table, after, out)


def explain_state(state: PoolState) -> tuple[LegPnl, ...]:
    """The top legs of ``state`` as it is."""
    return top_attribution(state.table, state.qty, state.margin_out())


def explain_order(engine: RiskEngine, order: OrderRequest, d: Decision) -> tuple[LegPnl, ...]:
    """A WhatIf's attribution (``explain``), after its decision ``d``: the legs of the state
    that sets the pool's margin after the order, as the margin step chose it."""
    from riskgate.engine.apply import order_unit
    from riskgate.engine.book import AccountPool
    from riskgate.engine.types import MarginMethod, Side

    acc = engine.accounts.get(order.account_id)
    market = engine.book.market
    if acc is None or market is None or d.margin_method is MarginMethod.RULES_BASED:
        return ()
    inst = market.instruments.get(order.symbol)
    if inst is None:
        return ()
    with acc.lock:
        engine._bind(acc)
        pool = acc.pools.get(d.pool_currency) or AccountPool(market.tables[d.pool_currency])
        buy = order.side is Side.BUY
        units = order.quantity * order_unit(inst, order.price, market.quotes[inst.symbol].mark)
        signed = units if buy else -units
        state, other = (pool.B, pool.S) if buy else (pool.S, pool.B)
        out = state.whatif_out(inst.symbol, signed)
        side_im = float(out[out.shape[0] - 1, mk.O_IM])
        if (pool.im_S if buy else pool.im_B) > side_im:  # the other side sets the margin
            return explain_state(other)
        return explain_side(state, out, inst.symbol, signed)
