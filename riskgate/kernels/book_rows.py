"""Whole-book kernels: every state row of an array book re-margined in one call.

A segment of the array book (:mod:`riskgate.engine.arrays`) holds the scenario states of many
pools as rows of preallocated arrays, ``pnl[R, n_u, C]`` and ``aux[R, n_u, N_AUX]``, and
their holdings as a sparse matrix in ELLPACK form (a fixed number of slots per row, the
slots used first and in the order the holdings were taken, which is their insertion order):
``pos_id[R, K]`` (book-wide instrument ids), ``pos_q[R, K]`` (units) and ``n_pos[R]``.

On a market update, ``remargin_rows_*`` multiply those holdings by the new risk table (an
instrument id maps to its table row through ``id_row``) and margin each row: exactly the
arithmetic of :func:`riskgate.kernels.margin.rebuild_state` then the model's margin kernel,
so that a row computed here and a state rebuilt on its own are equal bit for bit. The
results go to new arrays (``pnl_out`` ..., the caller swaps them in per account); a row
holding an instrument the table does not price is flagged in ``failed`` and left zero.
"""

from __future__ import annotations

import numpy as np

from riskgate.kernels._jit import kernel, kernel_nogil
from riskgate.kernels.margin import (
    O_IM,
    O_MM,
    X_VALUE,
    apply_change,
    margin_deribit,
    margin_span,
    margin_tims,
)

_EPS = 1e-12  # riskgate.engine.book.margin_status's


@kernel_nogil
def _same_holdings(pos_id, pos_q, n_pos, a, b) -> bool:
    n = n_pos[a]
    if n_pos[b] != n:
        return False
    same = True
    for k in range(n):
        same = same and pos_id[a, k] == pos_id[b, k] and pos_q[a, k] == pos_q[b, k]
    return same


@kernel_nogil
def _rebuild_row(pos_id, pos_q, n_pos, r, id_row, risk, attr, pnl_out, aux_out, failed) -> None:
    pnl_out[r, :, :] = 0.0
    aux_out[r, :, :] = 0.0
    failed[r] = False
    n_ids = id_row.shape[0]
    for k in range(n_pos[r]):
        g = pos_id[r, k]
        i = id_row[g] if 0 <= g < n_ids else -1
        if i < 0:
            failed[r] = True
            pnl_out[r, :, :] = 0.0
            aux_out[r, :, :] = 0.0
            return
        apply_change(pnl_out[r], aux_out[r], risk, attr, i, 0.0, pos_q[r, k])


@kernel_nogil
def rebuild_rows(
    pos_id: np.ndarray,  # int64[R, K]
    pos_q: np.ndarray,  # float64[R, K]
    n_pos: np.ndarray,  # int64[R]
    alive: np.ndarray,  # bool[R // 3]: pools in use (the others are skipped)
    id_row: np.ndarray,  # int64[n_ids]: table row of an instrument id, -1 if none
    risk: np.ndarray,
    attr: np.ndarray,
    pnl_out: np.ndarray,  # float64[R, n_u, C]
    aux_out: np.ndarray,  # float64[R, n_u, N_AUX]
    failed: np.ndarray,  # bool[R]
    copied: np.ndarray,  # int64[R]: the row this one's result was copied from, or itself
) -> None:
    """Every live pool's three rows rebuilt from their holdings on the table ``risk`` /
    ``attr``. A ``B`` or ``S`` row holding exactly what the ``P`` row holds (no order works
    on that side) takes ``P``'s result: the same arithmetic, done once."""
    for p in range(alive.shape[0]):
        if not alive[p]:
            continue
        r = 3 * p
        _rebuild_row(pos_id, pos_q, n_pos, r, id_row, risk, attr, pnl_out, aux_out, failed)
        copied[r] = r
        for s in (r + 1, r + 2):
            if _same_holdings(pos_id, pos_q, n_pos, r, s):
                pnl_out[s] = pnl_out[r]
                aux_out[s] = aux_out[r]
                failed[s] = failed[r]
                copied[s] = r
            else:
                _rebuild_row(pos_id, pos_q, n_pos, s, id_row, risk, attr, pnl_out, aux_out, failed)
                copied[s] = s


@kernel_nogil
def remargin_rows_deribit(
    pos_id, pos_q, n_pos, alive, id_row, risk, attr, und_price, gparams, uparams,
    pnl_out, aux_out, out, failed, copied,
) -> None:  # fmt: skip
    """:func:`rebuild_rows`, then each row's margin into ``out[r]`` (``[n_u + 1, N_OUT]``)."""
    rebuild_rows(pos_id, pos_q, n_pos, alive, id_row, risk, attr, pnl_out, aux_out, failed, copied)
    for p in range(alive.shape[0]):
        if alive[p]:
            for r in range(3 * p, 3 * p + 3):
                if copied[r] == r:
                    margin_deribit(pnl_out[r], aux_out[r], und_price, gparams, uparams, out[r])
                else:
                    out[r] = out[copied[r]]


@kernel_nogil
def remargin_rows_span(
    pos_id, pos_q, n_pos, alive, id_row, risk, attr, und_price, gparams, uparams,
    pnl_out, aux_out, out, failed, copied,
) -> None:  # fmt: skip
    """:func:`rebuild_rows`, then each row's margin into ``out[r]``."""
    rebuild_rows(pos_id, pos_q, n_pos, alive, id_row, risk, attr, pnl_out, aux_out, failed, copied)
    for p in range(alive.shape[0]):
        if alive[p]:
            for r in range(3 * p, 3 * p + 3):
                if copied[r] == r:
                    margin_span(pnl_out[r], aux_out[r], und_price, gparams, uparams, out[r])
                else:
                    out[r] = out[copied[r]]


@kernel_nogil
def remargin_rows_tims(
    pos_id, pos_q, n_pos, alive, id_row, risk, attr, und_price, gparams, uparams,
    pnl_out, aux_out, out, failed, copied,
) -> None:  # fmt: skip
    """:func:`rebuild_rows`, then each row's margin into ``out[r]``."""
    rebuild_rows(pos_id, pos_q, n_pos, alive, id_row, risk, attr, pnl_out, aux_out, failed, copied)
    for p in range(alive.shape[0]):
        if alive[p]:
            for r in range(3 * p, 3 * p + 3):
                if copied[r] == r:
                    margin_tims(pnl_out[r], aux_out[r], und_price, gparams, uparams, out[r])
                else:
                    out[r] = out[copied[r]]


@kernel
def _rebuild_pool(pos_id, pos_q, n_pos, p, id_row, risk, attr, pnl, aux, failed) -> bool:
    ok = True
    for r in range(3 * p, 3 * p + 3):
        _rebuild_row(pos_id, pos_q, n_pos, r, id_row, risk, attr, pnl, aux, failed)
        ok = ok and not failed[r]
    return ok


@kernel
def remargin_pool_deribit(
    pos_id, pos_q, n_pos, p, id_row, risk, attr, und_price, gparams, uparams, pnl, aux, out3,
    failed,
) -> bool:  # fmt: skip
    """One pool's three rows rebuilt in place from their holdings and margined into
    ``out3`` (a pool binding on its own: the arithmetic of :func:`remargin_rows_deribit`);
    False if the table does not price a holding (the rows are then left zero)."""
    if not _rebuild_pool(pos_id, pos_q, n_pos, p, id_row, risk, attr, pnl, aux, failed):
        return False
    for k in range(3):
        margin_deribit(pnl[3 * p + k], aux[3 * p + k], und_price, gparams, uparams, out3[k])
    return True


@kernel
def remargin_pool_span(
    pos_id, pos_q, n_pos, p, id_row, risk, attr, und_price, gparams, uparams, pnl, aux, out3,
    failed,
) -> bool:  # fmt: skip
    """:func:`remargin_pool_deribit` for SPAN."""
    if not _rebuild_pool(pos_id, pos_q, n_pos, p, id_row, risk, attr, pnl, aux, failed):
        return False
    for k in range(3):
        margin_span(pnl[3 * p + k], aux[3 * p + k], und_price, gparams, uparams, out3[k])
    return True


@kernel
def remargin_pool_tims(
    pos_id, pos_q, n_pos, p, id_row, risk, attr, und_price, gparams, uparams, pnl, aux, out3,
    failed,
) -> bool:  # fmt: skip
    """:func:`remargin_pool_deribit` for TIMS."""
    if not _rebuild_pool(pos_id, pos_q, n_pos, p, id_row, risk, attr, pnl, aux, failed):
        return False
    for k in range(3):
        margin_tims(pnl[3 * p + k], aux[3 * p + k], und_price, gparams, uparams, out3[k])
    return True


@kernel_nogil
def lazy_pools(
    out: np.ndarray,  # float64[R, n_u + 1, N_OUT]: the rows' margins on the new tables
    aux: np.ndarray,  # float64[R, n_u, N_AUX]: the rows' new aggregates
    cash: np.ndarray,  # float64[R]
    failed: np.ndarray,  # bool[R]
    mode: np.ndarray,  # int64[pools]: riskgate.engine.arrays.MODE_*
    status: np.ndarray,  # int64[pools]: the account's margin status now
    bound: np.ndarray,  # int64[pools]: market version the account was last bound to
    alive: np.ndarray,  # bool[pools]
    n_pools: int,
    version: int,
    max_lazy: int,
    pm_minimum_usd: float,
    lazy: np.ndarray,  # bool[pools], out
) -> None:
    """Which pools' accounts may bind lazily: one USD pool under portfolio margin (mode 1,
    or 2 for AUTO, which must stay portfolio: equity >= ``pm_minimum_usd``) whose margin
    status on the new market is the one it has, bound less than ``max_lazy`` versions ago.
    The figures are computed as :func:`riskgate.engine.apply.refresh_account` does, in the
    same order (equity: cash + the per-coin values summed left to right), so that the
    verdict is exact, not approximate."""
    total = out.shape[1] - 1
    n_u = aux.shape[1]
    for p in range(n_pools):
        lazy[p] = False
        if not alive[p]:
            continue
        m = mode[p]
        if m == 0 or version - bound[p] >= max_lazy:
            continue
        r = 3 * p
        if failed[r] or failed[r + 1] or failed[r + 2]:
            continue
        v = 0.0
        for u in range(n_u):
            v += aux[r, u, X_VALUE]
        eq = cash[r] + v
        if m == 2 and not (0.0 + eq * 1.0 >= pm_minimum_usd):
            continue
        im = out[r, total, O_IM]
        mm = out[r, total, O_MM]
        if eq < mm - _EPS:
            st = 3
        elif eq < im - _EPS:
            st = 2
        else:
            st = 1
        lazy[p] = st == status[p]
