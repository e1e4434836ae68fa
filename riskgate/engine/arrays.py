"""The array book: the scenario states of every account pool as rows of a few 2-D arrays.

Per pool currency and state shape a :class:`Segment` holds, for every account pool of that
currency, three rows (its ``P``, ``B`` and ``S`` states): ``pnl[rows, n_u, cells]`` and
``aux[rows, n_u, N_AUX]``, which the pool states use as their own arrays (numpy views), and
the holdings of each row as a sparse matrix (ELLPACK: ``pos_id`` / ``pos_q`` / ``n_pos``,
book-wide instrument ids, kept by :meth:`PoolState.set_quantity` in the order of the
state's holdings). Rows live in chunks that are never reallocated, so a view never goes
stale; a new chunk is added, twice the size of the last, when the free rows run out (the
array book keeps spare rows so that this happens off the order path, see
:meth:`ArrayBook.reserve`).

A market update is then one kernel call per chunk (:mod:`riskgate.kernels.book_rows`):
every row rebuilt from its holdings on the new risk table and margined, into a second set
of arrays, with the GIL released. Each account adopts its rows from there when it is bound
to the new market (:func:`riskgate.engine.apply.bind`): a copy of three rows and the margin
figures the kernel computed, instead of a rebuild. A pool whose holdings changed after the
kernel read them (its generation count moved), or that the kernel could not price, is
rebuilt on its own, with the same arithmetic: adopted or rebuilt, the state is equal bit for
bit, so replay reproduces the book exactly whichever way each account took.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from riskgate.kernels import book_rows
from riskgate.kernels import margin as mk

if TYPE_CHECKING:
    from riskgate.engine.market import MarketState
    from riskgate.models.risk_table import RiskTable

FIRST_CHUNK_POOLS = 64
MAX_CHUNK_POOLS = 8192
FIRST_SLOTS = 8  # holdings per row before a chunk's slot arrays widen
# an account bound lazily is bound by the update this many versions after its last bind at
# the latest: only that many old markets stay referenced
MAX_LAZY_VERSIONS = 32
# Chunk.mode: how a market update may treat the pool's account
MODE_EAGER = 0  # bind it now (several pools, futures, rules-based, not in the array book)
MODE_PORTFOLIO = 1  # one USD pool, portfolio margin: lazily unless its status changes
MODE_AUTO = 2  # as PORTFOLIO, margin method AUTO: also bind now if it would switch


class Chunk:
    """``pools`` account pools' rows (3 each) of one segment."""

    __slots__ = (
        "accounts", "alive", "aux", "base", "bound", "cash", "copied", "failed", "failed1", "gen", "lazy", "mode", "n_pos",
        "owners", "pnl", "pools", "pos_id", "pos_q", "result_aux", "result_gen",
        "result_market", "result_out", "result_pnl", "spare", "status",
    )  # fmt: skip

    def __init__(self, base: int, pools: int, n_u: int, n_cells: int) -> None:
        rows = 3 * pools
        self.base = base  # pool index of this chunk's first pool in the segment
        self.pools = pools
        self.pnl = np.zeros((rows, n_u, n_cells))
        self.aux = np.zeros((rows, n_u, mk.N_AUX))
        self.pos_id = np.full((rows, FIRST_SLOTS), -1, dtype=np.int64)
        self.pos_q = np.zeros((rows, FIRST_SLOTS))
        self.n_pos = np.zeros(rows, dtype=np.int64)
        # bumped on every change of a pool's holdings and on each (re)allocation
        self.gen = np.zeros(pools, dtype=np.int64)
        self.owners: list[weakref.ref[Any] | None] = [None] * pools
        # what a market update needs to know, per pool, to leave its account to bind
        # lazily (Account.mirror writes them): the account, its kind (MODE_*), its margin
        # status and the market version it was last bound to; and each state's cash
        self.accounts: list[Any] = [None] * pools
        self.mode = np.zeros(pools, dtype=np.int64)
        self.status = np.zeros(pools, dtype=np.int64)
        self.bound = np.zeros(pools, dtype=np.int64)
        self.cash = np.zeros(rows)
        self.lazy = [np.zeros(pools, dtype=np.bool_), np.zeros(pools, dtype=np.bool_)]
        self.alive = np.zeros(pools, dtype=np.bool_)
        self.copied = np.zeros(rows, dtype=np.int64)  # the kernel's scratch
        self.failed1 = np.zeros(rows, dtype=np.bool_)  # the one-pool kernel's scratch
        # two result sets, alternating between market updates, so that a late adoption of
        # one update never reads rows the next one is writing
        self.result_pnl = [np.zeros_like(self.pnl), np.zeros_like(self.pnl)]
        self.result_aux = [np.zeros_like(self.aux), np.zeros_like(self.aux)]
        self.result_out = [np.zeros((rows, n_u + 1, mk.N_OUT)) for _ in range(2)]
        self.failed = [np.zeros(rows, dtype=np.bool_), np.zeros(rows, dtype=np.bool_)]
        self.result_gen = [np.full(pools, -1, dtype=np.int64) for _ in range(2)]
        self.result_market: list[Any] = [None, None]
        self.spare = list(range(pools - 1, -1, -1))  # free pool slots (pop: lowest first)

    def widen(self) -> None:
        """Twice the holdings slots per row (the caller holds the segment's lock)."""
        rows, width = self.pos_id.shape
        pos_id = np.full((rows, 2 * width), -1, dtype=np.int64)
        pos_q = np.zeros((rows, 2 * width))
        pos_id[:, :width] = self.pos_id
        pos_q[:, :width] = self.pos_q
        self.pos_id, self.pos_q = pos_id, pos_q


class Segment:
    """The rows of every pool of one currency whose states have one shape."""

    def __init__(self, arrays: ArrayBook, n_u: int, n_cells: int) -> None:
        self.arrays = arrays
        self.shape = (n_u, n_cells)
        self.chunks: list[Chunk] = []
        self.lock = threading.Lock()
        self._released: list[tuple[Chunk, int]] = []  # appended by GC callbacks, lock-free
        self.live = 0

    def capacity(self) -> int:
        return sum(c.pools for c in self.chunks)

    def free(self) -> int:
        return sum(len(c.spare) for c in self.chunks) + len(self._released)

    def _add_chunk(self) -> None:
        last = self.chunks[-1].pools if self.chunks else FIRST_CHUNK_POOLS // 2
        pools = min(2 * last, MAX_CHUNK_POOLS)
        self.chunks.append(Chunk(self.capacity(), pools, *self.shape))

    def _drain(self) -> None:
        while self._released:
            chunk, p = self._released.pop()
            chunk.owners[p] = None
            chunk.alive[p] = False
            chunk.accounts[p] = None
            chunk.mode[p] = MODE_EAGER
            chunk.n_pos[3 * p : 3 * p + 3] = 0
            chunk.gen[p] += 1
            chunk.spare.append(p)
            self.live -= 1

    def allocate(self, owner: Any) -> tuple[Chunk, int]:
        """Three rows for ``owner`` (an account pool): its chunk and pool index there. The
        rows are returned to the segment when the owner is garbage."""
        with self.lock:
            self._drain()
            chunk = next((c for c in self.chunks if c.spare), None)
            if chunk is None:
                self._add_chunk()
                chunk = self.chunks[-1]
            p = chunk.spare.pop()
            r = 3 * p
            chunk.pnl[r : r + 3] = 0.0
            chunk.aux[r : r + 3] = 0.0
            chunk.n_pos[r : r + 3] = 0
            chunk.cash[r : r + 3] = 0.0
            chunk.accounts[p] = None
            chunk.mode[p] = MODE_EAGER
            chunk.gen[p] += 1
            released = self._released
            chunk.owners[p] = weakref.ref(owner, lambda _, c=chunk, p=p: released.append((c, p)))
            chunk.alive[p] = True
            self.live += 1
        return chunk, p

    def reserve(self, pools: int) -> None:
        """At least ``pools`` free pool slots, allocating chunks now if need be."""
        with self.lock:
            self._drain()
            while self.free() < pools:
                self._add_chunk()

    def remargin(
        self, market: MarketState, table: RiskTable, id_row: np.ndarray, pm_minimum_usd: float
    ) -> None:
        """Every allocated row rebuilt and margined on ``table``, into the result set of
        ``market`` (the GIL is released inside the kernel), and which pools' accounts may
        bind lazily."""
        model = table.model
        for chunk in list(self.chunks):
            k = market.version & 1
            with self.lock:  # generations as the kernel reads the holdings
                np.copyto(chunk.result_gen[k], chunk.gen)
                pos_id, pos_q, n_pos = chunk.pos_id, chunk.pos_q, chunk.n_pos
                alive = chunk.alive.copy()
            chunk.result_market[k] = None
            model.remargin_rows_kernel(
                pos_id, pos_q, n_pos, alive, id_row, table.risk, table.attr,
                table.und_price, table.gparams, table.uparams, chunk.result_pnl[k],
                chunk.result_aux[k], chunk.result_out[k], chunk.failed[k], chunk.copied,
            )  # fmt: skip
            book_rows.lazy_pools(
                chunk.result_out[k], chunk.result_aux[k], chunk.cash, chunk.failed[k],
                chunk.mode, chunk.status, chunk.bound, alive, chunk.pools, market.version,
                MAX_LAZY_VERSIONS, pm_minimum_usd, chunk.lazy[k],
            )  # fmt: skip
            chunk.result_market[k] = market


class ArrayBook:
    """Segments by (pool currency, state shape), and the book-wide instrument ids."""

    def __init__(self) -> None:
        self.segments: dict[tuple[str, int, int], Segment] = {}
        self.ids: dict[str, int] = {}
        self._lock = threading.Lock()
        # id -> row maps of the current market's tables (a pool binding on its own)
        self._id_rows: dict[int, tuple[RiskTable, np.ndarray]] = {}

    def instrument_id(self, symbol: str) -> int:
        i = self.ids.get(symbol)
        if i is None:
            with self._lock:
                i = self.ids.setdefault(symbol, len(self.ids))
        return i

    def segment(self, table: RiskTable) -> Segment:
        key = (table.currency, len(table.coins), table.n_cells)
        seg = self.segments.get(key)
        if seg is None:
            with self._lock:
                seg = self.segments.setdefault(key, Segment(self, key[1], key[2]))
        return seg

    def cached_id_rows(self, table: RiskTable) -> np.ndarray | None:
        """The id -> row map of ``table`` if it is one of the current market's."""
        hit = self._id_rows.get(id(table))
        return hit[1] if hit is not None and hit[0] is table else None

    def id_rows(self, table: RiskTable) -> np.ndarray:
        """Table row of every instrument id (-1: not in ``table``)."""
        ids = dict(self.ids)
        id_row = np.full(len(ids), -1, dtype=np.int64)
        row = table.row
        for sym, i in ids.items():
            r = row.get(sym)
            if r is not None:
                id_row[i] = r
        return id_row

    def remargin(self, market: MarketState, pm_minimum_usd: float) -> None:
        """Every segment whose shape matches its currency's table in ``market`` computed on
        it (a segment of another shape is left to the per-account rebuild)."""
        self._id_rows = {
            id(t): (t, self.id_rows(t)) for t in market.tables.values()
        }  # fmt: skip
        for (ccy, n_u, n_cells), seg in list(self.segments.items()):
            table = market.tables.get(ccy)
            if table is None or (len(table.coins), table.n_cells) != (n_u, n_cells):
                continue
            if seg.live:
                seg.remargin(market, table, self._id_rows[id(table)][1], pm_minimum_usd)
            # spare rows for the pools new accounts and orders will open before the next
            # update, so that growing stays off the order path
            seg.reserve(max(FIRST_CHUNK_POOLS, seg.live // 4))

    def accounts_to_bind(self, market: MarketState) -> list[Any]:
        """The accounts a market update must bind now: those whose margin status or method
        it changes, those it settles futures for, those of several pools or another
        method, those not bound for a while (so that old markets are let go), and those
        whose rows it did not compute. The others bind when next touched, to the same bits
        (:func:`riskgate.kernels.book_rows.lazy_pools`)."""
        k = market.version & 1
        out: dict[int, Any] = {}
        for seg in list(self.segments.values()):
            for chunk in list(seg.chunks):
                accounts = chunk.accounts
                if chunk.result_market[k] is market:
                    todo = np.flatnonzero(~chunk.lazy[k]).tolist()
                else:
                    todo = range(chunk.pools)
                for p in todo:
                    acc = accounts[p]
                    if acc is not None:
                        out[id(acc)] = acc
        return list(out.values())


def warm_up(table: RiskTable) -> None:
    """Compile (or load) the array book's kernels for ``table``'s model on throwaway rows."""
    arrays = ArrayBook()
    seg = arrays.segment(table)
    chunk, p = seg.allocate(warm_up)
    for k, sym in enumerate(list(table.row)[:3]):
        chunk.pos_id[3 * p, k] = arrays.instrument_id(sym)
        chunk.pos_q[3 * p, k] = 1.0
        chunk.n_pos[3 * p] = k + 1
    id_row = arrays.id_rows(table)
    model = table.model
    res = 0
    model.remargin_rows_kernel(
        chunk.pos_id, chunk.pos_q, chunk.n_pos, chunk.alive, id_row, table.risk, table.attr,
        table.und_price, table.gparams, table.uparams, chunk.result_pnl[res],
        chunk.result_aux[res], chunk.result_out[res], chunk.failed[res], chunk.copied,
    )  # fmt: skip
    book_rows.lazy_pools(
        chunk.result_out[res], chunk.result_aux[res], chunk.cash, chunk.failed[res],
        chunk.mode, chunk.status, chunk.bound, chunk.alive, chunk.pools, 1,
        MAX_LAZY_VERSIONS, 0.0, chunk.lazy[res],
    )  # fmt: skip
    out3 = np.zeros((3, len(table.coins) + 1, mk.N_OUT))
    model.remargin_pool_kernel(
        chunk.pos_id, chunk.pos_q, chunk.n_pos, p, id_row, table.risk, table.attr,
        table.und_price, table.gparams, table.uparams, chunk.pnl, chunk.aux, out3,
        chunk.failed1,
    )  # fmt: skip
