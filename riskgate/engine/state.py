"""Incremental portfolio state: per pool, the scenario P&L vectors and add-on aggregates.

Every position or collateral change goes through :meth:`PoolState.set_quantity`, which
updates the pool's state in O(n_cells) with the ``apply_change`` kernel. ``margin()`` reads
the state; ``whatif()`` evaluates a change on scratch copies without touching it.

A what-if leaves the changed state in its scratch arrays. When the next ``set_quantity`` is
exactly the change that what-if evaluated (an order accepted right after its check), the
scratch arrays become the state: the same arithmetic as ``apply_change``, already done.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from riskgate.domain.instruments import USD_LIKE, Instrument
from riskgate.kernels import margin as mk
from riskgate.models.risk_table import (
    USD,
    RiskTable,
    build_table,
    collateral_symbol,
    table_quantity,
)

if TYPE_CHECKING:
    from riskgate.engine.arrays import Chunk, Segment


class StateError(ValueError):
    """A change the state cannot take (instrument not in the pool's table...)."""


@dataclass(frozen=True)
class UnderlyingMargin:
    coin: str
    initial_margin: float
    maintenance_margin: float
    worst_case: float
    worst_scenario: dict[str, Any]
    add_ons: dict[str, float]


@dataclass(frozen=True)
class PoolMargin:
    """Margin of one pool, in its currency, with the breakdown of docs/architecture.md §4."""

    currency: str
    model: str
    equity: float
    initial_margin: float
    maintenance_margin: float
    worst_case: float
    worst_scenario: dict[str, Any]
    add_ons: dict[str, float]
    net_option_value: float
    underlyings: dict[str, UnderlyingMargin] = field(default_factory=dict)


def read_margin(
    table: RiskTable, out: np.ndarray, equity: float, nov: float, active: np.ndarray
) -> PoolMargin:
    """Turn a kernel ``out`` block into a :class:`PoolMargin` (coins where ``active``)."""
    model = table.model
    total = len(table.coins)
    unders: dict[str, UnderlyingMargin] = {}
    coins = [c for u, c in enumerate(table.coins) if active[u]]
    best_coin = coins[0] if coins else table.coins[0]
    best = -1.0
    for u, coin in enumerate(table.coins):
        if not active[u]:
            continue
        row = out[u]
        if row[mk.O_WORST] > best:
            best, best_coin = row[mk.O_WORST], coin
        unders[coin] = UnderlyingMargin(
            coin=coin,
            initial_margin=float(row[mk.O_IM]),
            maintenance_margin=float(row[mk.O_MM]),
            worst_case=float(row[mk.O_WORST]),
            worst_scenario=table.cell_label(coin, int(row[mk.O_CELL])),
            add_ons={n: float(row[mk.O_ADDON0 + k]) for k, n in enumerate(model.addon_names)},
        )
    row = out[total]
    cell = int(row[mk.O_CELL])
    label = table.cell_label(best_coin, cell) if table.coins else {}
    scenario = label
    if model.name == "deribit":
        # the pool's worst cell is shared by all coins: report each coin's move there
        scenario = {
            "cell": cell,
            "vol_move": label.get("vol_move"),
            "price_move": {c: float(table.grids[c].moves[cell]) for c in coins},
        }
        if "name" in label:  # a stress scenario: its name
            scenario["name"] = label["name"]
    else:
        scenario = {**scenario, "underlying": best_coin}
    return PoolMargin(
        currency=table.currency,
        model=model.name,
        equity=equity,
        initial_margin=float(row[mk.O_IM]),
        maintenance_margin=float(row[mk.O_MM]),
        worst_case=float(row[mk.O_WORST]),
        worst_scenario=scenario,
        add_ons={n: float(row[mk.O_ADDON0 + k]) for k, n in enumerate(model.addon_names)},
        net_option_value=nov,
        underlyings=unders,
    )


class PoolState:
    """One margin pool of one account.

    Its ``pnl`` and ``aux`` arrays are its own, or, for the state of an account pool of a
    book, a row of the book's array book (:mod:`riskgate.engine.arrays`), whose holdings
    matrix it then keeps in step with ``qty``."""

    __slots__ = (
        "_aux", "_cash", "_chunk", "_out", "_pnl", "_qty", "_r", "_saux", "_seg", "_slots",
        "_spnl", "_staged", "cash_balances", "table",
    )  # fmt: skip

    def __init__(
        self, table: RiskTable, seg: Segment | None = None, chunk: Chunk | None = None,
        row: int = -1,
    ) -> None:  # fmt: skip
        self.table = table
        n_u, n_cells = len(table.coins), table.n_cells
        self._seg, self._chunk, self._r = seg, chunk, row
        self._slots: dict[str, int] = {}  # symbol -> slot of the row's holdings
        if chunk is None:
            self._pnl = np.zeros((n_u, n_cells))
            self._aux = np.zeros((n_u, mk.N_AUX))
        else:
            self._pnl = chunk.pnl[row]
            self._aux = chunk.aux[row]
        self._spnl = np.zeros((n_u, n_cells))
        self._saux = np.zeros((n_u, mk.N_AUX))
        self._out = np.zeros((n_u + 1, mk.N_OUT))
        self._qty: dict[str, float] = {}
        self.cash_balances: dict[str, float] = {}
        self._cash = 0.0  # collateral that never moves in this pool's currency
        # (symbol, quantity) whose state the scratch arrays hold, until the state changes
        self._staged: tuple[str, float] | None = None

    @property
    def cash(self) -> float:
        return self._cash

    @cash.setter
    def cash(self, value: float) -> None:
        self._cash = value
        if self._chunk is not None:
            self._chunk.cash[self._r] = value

    @property
    def pnl(self) -> np.ndarray:
        return self._pnl

    @pnl.setter
    def pnl(self, value: np.ndarray) -> None:
        if self._chunk is None:
            self._pnl = value
        else:
            self._pnl[...] = value

    @property
    def aux(self) -> np.ndarray:
        return self._aux

    @aux.setter
    def aux(self, value: np.ndarray) -> None:
        if self._chunk is None:
            self._aux = value
        else:
            self._aux[...] = value

    @property
    def qty(self) -> dict[str, float]:
        return self._qty

    @qty.setter
    def qty(self, value: dict[str, float]) -> None:
        """Holdings replaced wholesale (a snapshot being restored)."""
        for symbol in list(self._qty):
            self._hold(symbol, 0.0)
        self._qty = {}
        for symbol, q in value.items():
            self._qty[symbol] = q
            self._hold(symbol, q)

    @property
    def currency(self) -> str:
        return self.table.currency

    def _row(self, symbol: str) -> int:
        try:
            return self.table.row[symbol]
        except KeyError:
            raise StateError(f"{symbol}: not in the {self.currency} pool's risk table") from None

    def set_quantity(self, symbol: str, quantity: float, rebuild_next: bool = False) -> None:
        """The one place a pool's holdings change (``rebuild_next``: only the holdings, the
        arrays are rebuilt from them next, as a bind does)."""
        if not math.isfinite(quantity):
            raise StateError(f"{symbol}: quantity must be finite")
        i = self._row(symbol)
        if rebuild_next:
            pass
        elif self._staged == (symbol, quantity):
            # the last what-if computed exactly this state: adopt it
            if self._chunk is None:
                self._pnl, self._spnl = self._spnl, self._pnl
                self._aux, self._saux = self._saux, self._aux
            else:  # the state's arrays are the array book's row: copy into it
                np.copyto(self._pnl, self._spnl)
                np.copyto(self._aux, self._saux)
        else:
            t = self.table
            mk.apply_change(
                self._pnl, self._aux, t.risk, t.attr, i, self._qty.get(symbol, 0.0), quantity
            )
        self._staged = None
        if self._chunk is not None and self._qty.get(symbol, 0.0) != quantity:
            self._hold(symbol, quantity)
        if quantity == 0.0:
            self._qty.pop(symbol, None)
        else:
            self._qty[symbol] = quantity

    def _hold(self, symbol: str, quantity: float) -> None:
        """The array book's holdings row follows a change of ``qty`` (same order)."""
        chunk, seg, r = self._chunk, self._seg, self._r
        if chunk is None or seg is None:
            return
        slots = self._slots
        with seg.lock:
            k = slots.get(symbol)
            if quantity == 0.0:
                if k is None:
                    return
                del slots[symbol]
                n = len(slots)
                pos_id, pos_q = chunk.pos_id, chunk.pos_q
                pos_id[r, k:n] = pos_id[r, k + 1 : n + 1]
                pos_q[r, k:n] = pos_q[r, k + 1 : n + 1]
                pos_id[r, n] = -1
                pos_q[r, n] = 0.0
                for s, j in slots.items():
                    if j > k:
                        slots[s] = j - 1
                chunk.n_pos[r] = n
            elif k is None:
                k = len(slots)
                if k == chunk.pos_id.shape[1]:
                    chunk.widen()
                chunk.pos_id[r, k] = seg.arrays.instrument_id(symbol)
                chunk.pos_q[r, k] = quantity
                slots[symbol] = k
                chunk.n_pos[r] = k + 1
            else:
                chunk.pos_q[r, k] = quantity
            chunk.gen[r // 3] += 1

    def add_quantity(self, symbol: str, delta_qty: float) -> None:
        self.set_quantity(symbol, self._qty.get(symbol, 0.0) + delta_qty)

    def set_collateral(self, currency: str, amount: float, rebuild_next: bool = False) -> None:
        if currency == self.currency or (self.currency == USD and currency in USD_LIKE):
            self.cash_balances[currency] = amount
            self.cash = sum(self.cash_balances.values())
        else:
            self.set_quantity(collateral_symbol(currency), amount, rebuild_next)

    @property
    def equity(self) -> float:
        # summed left to right, as the array book's kernel sums it (book_rows.lazy_pools)
        v = 0.0
        for x in self._aux[:, mk.X_VALUE].tolist():
            v += x
        return self._cash + v

    def net_option_value(self) -> float:
        t = self.table
        return sum(
            q * float(t.attr[t.row[s], mk.A_VALUE])
            for s, q in self._qty.items()
            if t.attr[t.row[s], mk.A_CALL] + t.attr[t.row[s], mk.A_PUT] > 0
        )

    def margin_out(self) -> np.ndarray:
        """Kernel output block of the state as it is (scratch: read it, don't keep it)."""
        t = self.table
        t.model.margin_kernel(self._pnl, self._aux, t.und_price, t.gparams, t.uparams, self._out)
        return self._out

    def margin(self) -> PoolMargin:
        t = self.table
        t.model.margin_kernel(self._pnl, self._aux, t.und_price, t.gparams, t.uparams, self._out)
        active = (self._pnl != 0.0).any(axis=1) | (self._aux != 0.0).any(axis=1)
        return read_margin(t, self._out, self.equity, self.net_option_value(), active)

    def whatif_out(self, symbol: str, delta_qty: float) -> np.ndarray:
        """Kernel output block after adding ``delta_qty``; the state is unchanged.

        The returned array is scratch reused by the next call: read it, don't keep it.
        """
        t = self.table
        i = self._row(symbol)
        q0 = self._qty.get(symbol, 0.0)
        q1 = q0 + delta_qty
        t.model.whatif_kernel(
            self._pnl, self._aux, t.risk, t.attr, i, q0, q1,
            t.und_price, t.gparams, t.uparams, self._spnl, self._saux, self._out,
        )  # fmt: skip
        self._staged = (symbol, q1)
        return self._out

    def whatif(self, symbol: str, delta_qty: float) -> tuple[float, float]:
        """(initial margin, maintenance margin) of the pool after adding ``delta_qty``."""
        out = self.whatif_out(symbol, delta_qty)
        total = out.shape[0] - 1
        return float(out[total, mk.O_IM]), float(out[total, mk.O_MM])

    def rebind(self, table: RiskTable) -> None:
        """Re-margin on a new table (market update): rebuild the state from holdings, in
        their order (the arithmetic of the array book's whole-book kernel)."""
        try:
            rows = np.array([table.row[s] for s in self._qty], dtype=np.int64)
        except KeyError as exc:
            raise StateError(f"{exc.args[0]}: not in the new {table.currency} risk table") from None
        qty = np.array(list(self._qty.values()), dtype=np.float64)
        self.retable(table)
        mk.rebuild_state(self._pnl, self._aux, table.risk, table.attr, rows, qty)

    def retable(self, table: RiskTable) -> None:
        """Point the state at a new table; its arrays must be rebuilt from holdings next
        (:meth:`rebind`, or a pool's rebind for its three states together). A market that
        adds a coin changes the arrays' shape (and the coins' rows): they are reallocated,
        and a state of the array book leaves it for arrays of its own."""
        n_u, n_cells = len(table.coins), table.n_cells
        if self._pnl.shape != (n_u, n_cells):
            if self._chunk is not None:
                self._chunk.cash[self._r] = 0.0
            self._chunk = self._seg = None
            self._slots = {}
            self._pnl = np.zeros((n_u, n_cells))
            self._aux = np.zeros((n_u, mk.N_AUX))
            self._spnl = np.zeros((n_u, n_cells))
            self._saux = np.zeros((n_u, mk.N_AUX))
            self._out = np.zeros((n_u + 1, mk.N_OUT))
        self.table = table
        self._staged = None

    @property
    def in_array_book(self) -> bool:
        return self._chunk is not None


class PortfolioState:
    """All pools of one account: ``cross`` (one USD pool) or ``segregated``."""

    def __init__(self, tables: Mapping[str, RiskTable], segregated: bool) -> None:
        self.tables = dict(tables)
        self.segregated = segregated
        self.pools: dict[str, PoolState] = {}

    def pool_for(self, inst: Instrument) -> PoolState:
        ccy = inst.underlying if self.segregated and inst.is_inverse else USD
        return self._pool(ccy)

    def _pool(self, currency: str) -> PoolState:
        pool = self.pools.get(currency)
        if pool is None:
            try:
                table = self.tables[currency]
            except KeyError:
                raise StateError(f"no risk table for pool {currency}") from None
            pool = self.pools[currency] = PoolState(table)
        return pool

    def units(self, inst: Instrument, quantity: float) -> float:
        """A quantity (coin × multiplier) in the units of the instrument's pool state: an
        inverse future's or perpetual's USD notional at the mark, else the quantity."""
        return table_quantity(inst, quantity, self.pool_for(inst).table.snapshot)

    def set_position(self, inst: Instrument, quantity: float) -> None:
        """``quantity`` in coin × multiplier (an inverse future's converted at the mark)."""
        self.pool_for(inst).set_quantity(inst.symbol, self.units(inst, quantity))

    def set_collateral(self, currency: str, amount: float) -> None:
        ccy = currency.upper()
        if not math.isfinite(amount):
            raise StateError(f"collateral.{ccy}: must be finite")
        if ccy in USD_LIKE:
            self._pool(USD).set_collateral(ccy, amount)
        elif self.segregated:
            self._pool(ccy).set_collateral(ccy, amount)
        else:
            self._pool(USD).set_collateral(ccy, amount)

    def margin(self) -> dict[str, PoolMargin]:
        return {ccy: pool.margin() for ccy, pool in sorted(self.pools.items())}


def build_tables(
    model: Any, snapshot: Any, instruments: Iterable[Instrument], segregated: bool
) -> dict[str, RiskTable]:
    """The tables an account in this mode needs: USD always, plus one per coin if segregated."""
    insts = list(instruments)
    tables = {USD: build_table(model, snapshot, insts, USD)}
    if segregated:
        for coin in sorted(snapshot.index_usd):
            tables[coin] = build_table(model, snapshot, insts, coin)
    return tables
