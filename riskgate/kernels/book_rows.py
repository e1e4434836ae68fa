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

from riskgate.kernels._jit import kernel_nogil
from riskgate.kernels.margin import apply_change, margin_deribit, margin_span, margin_tims


@kernel_nogil
def rebuild_rows(
    pos_id: np.ndarray,  # int64[R, K]
    pos_q: np.ndarray,  # float64[R, K]
    n_pos: np.ndarray,  # int64[R]
    n_rows: int,
    id_row: np.ndarray,  # int64[n_ids]: table row of an instrument id, -1 if none
    risk: np.ndarray,
    attr: np.ndarray,
    pnl_out: np.ndarray,  # float64[R, n_u, C]
    aux_out: np.ndarray,  # float64[R, n_u, N_AUX]
    failed: np.ndarray,  # bool[R]
) -> None:
    """Rows ``0 .. n_rows-1`` rebuilt from their holdings on the table ``risk``/``attr``."""
    n_ids = id_row.shape[0]
    for r in range(n_rows):
        pnl_out[r, :, :] = 0.0
        aux_out[r, :, :] = 0.0
        failed[r] = False
        for k in range(n_pos[r]):
            g = pos_id[r, k]
            i = id_row[g] if 0 <= g < n_ids else -1
            if i < 0:
                failed[r] = True
                pnl_out[r, :, :] = 0.0
                aux_out[r, :, :] = 0.0
                break
            apply_change(pnl_out[r], aux_out[r], risk, attr, i, 0.0, pos_q[r, k])


@kernel_nogil
def remargin_rows_deribit(
    pos_id, pos_q, n_pos, n_rows, id_row, risk, attr, und_price, gparams, uparams,
    pnl_out, aux_out, out, failed,
) -> None:  # fmt: skip
    """:func:`rebuild_rows`, then each row's margin into ``out[r]`` (``[n_u + 1, N_OUT]``)."""
    rebuild_rows(pos_id, pos_q, n_pos, n_rows, id_row, risk, attr, pnl_out, aux_out, failed)
    for r in range(n_rows):
        margin_deribit(pnl_out[r], aux_out[r], und_price, gparams, uparams, out[r])


@kernel_nogil
def remargin_rows_span(
    pos_id, pos_q, n_pos, n_rows, id_row, risk, attr, und_price, gparams, uparams,
    pnl_out, aux_out, out, failed,
) -> None:  # fmt: skip
    """:func:`rebuild_rows`, then each row's margin into ``out[r]``."""
    rebuild_rows(pos_id, pos_q, n_pos, n_rows, id_row, risk, attr, pnl_out, aux_out, failed)
    for r in range(n_rows):
        margin_span(pnl_out[r], aux_out[r], und_price, gparams, uparams, out[r])


@kernel_nogil
def remargin_rows_tims(
    pos_id, pos_q, n_pos, n_rows, id_row, risk, attr, und_price, gparams, uparams,
    pnl_out, aux_out, out, failed,
) -> None:  # fmt: skip
    """:func:`rebuild_rows`, then each row's margin into ``out[r]``."""
    rebuild_rows(pos_id, pos_q, n_pos, n_rows, id_row, risk, attr, pnl_out, aux_out, failed)
    for r in range(n_rows):
        margin_tims(pnl_out[r], aux_out[r], und_price, gparams, uparams, out[r])
