"""Margin kernels over a pool's incremental state.

State of one margin pool (all float64, preallocated by the caller):
- ``pnl[n_u, C]``: summed weighted scenario P&L per underlying (row) and cell (column);
- ``aux[n_u, N_AUX]``: per-underlying aggregates the add-ons need (columns ``X_*``).

Per-instrument attributes (one row per instrument of the risk table): ``attr[n, N_ATTR]``
(columns ``A_*``). A position change from ``q0`` to ``q1`` touches one ``pnl`` row and a few
``aux`` cells: O(C) work, no allocation.

Margin output: ``out[n_u + 1, N_OUT]``; row ``u`` is underlying ``u``, the last row the pool.
Columns: ``O_MM``, ``O_IM``, ``O_WORST`` (scan risk / worst case), ``O_CELL`` (worst cell),
then model add-ons from ``O_ADDON0`` (each model's layout below); SPAN also fills, per
underlying row only, the steps of its weighted price risk (``O_SPAN_DELTA`` .. ``O_SPAN_WPR``).
"""

from __future__ import annotations

import numpy as np

from riskgate.kernels._jit import kernel

# attr columns
A_UND = 0
A_DELTA = 1  # delta of one unit, in coin, in the model's convention (risk_arrays docstring)
A_TIER = 2  # expiry tier (SPAN calendar spreads)
A_DELIVERY = 3  # 1.0 if inside the delivery window
A_CALL = 4  # 1.0 for calls
A_PUT = 5  # 1.0 for puts
A_MULT = 6
A_ROLL = 7  # roll-shock charge per unit of |q| (pool currency)
A_VALUE = 8  # value of one unit now (pool currency)
N_ATTR = 9

# aux columns
X_DELTA = 0
X_SHORT_CALLS = 1
X_SHORT_PUTS = 2
X_ROLL = 3
X_DELIVERY = 4
X_VALUE = 5
X_TIER0 = 6
MAX_TIERS = 4
N_AUX = X_TIER0 + MAX_TIERS

# out columns
O_MM = 0
O_IM = 1
O_WORST = 2
O_CELL = 3
O_ADDON0 = 4
O_UND = 9  # pool row only: the underlying whose loss is largest (names the worst move)
# SPAN, underlying rows only: net futures-equivalent delta, CME's time / volatility / price
# risk split of the scan risk, and the weighted price risk per delta the credit uses
O_SPAN_DELTA = 10
O_SPAN_TIME = 11
O_SPAN_VOL = 12
O_SPAN_PRICE = 13
O_SPAN_WPR = 14
N_OUT = 15

# SPAN add-on columns
O_SPAN_INTRA = O_ADDON0
O_SPAN_DELIVERY = O_ADDON0 + 1
O_SPAN_INTER = O_ADDON0 + 2
O_SPAN_SOM = O_ADDON0 + 3
O_SPAN_RISK = O_ADDON0 + 4
# TIMS add-on columns
O_TIMS_OFFSET = O_ADDON0
O_TIMS_SOM = O_ADDON0 + 1
O_TIMS_RISK = O_ADDON0 + 2
# Deribit add-on columns
O_DBT_ROLL = O_ADDON0
O_DBT_DELTA = O_ADDON0 + 1
O_DBT_RMM = O_ADDON0 + 2

# SPAN parameter layout
# uparams[u]: [som_rate, delivery_rate, price_scan_range]
SU_SOM = 0
SU_DELIVERY = 1
SU_PSR = 2
N_SPAN_U = 3
# gparams: [im_ratio, n_pairs, (tier_a, tier_b, rate) * n_pairs,
#           n_inter, (u_a, u_b, delta_ratio_a, delta_ratio_b, rate) * n_inter,
#           time_cell_a, time_cell_b, paired_cell[c] for every cell c]
# time cells: the two unchanged-price scenarios; paired_cell[c]: the scenario with c's
# price move and the opposite vol move (c itself when c leaves vol unchanged)
# TIMS parameter layout
# uparams[u]: [short_option_minimum rate, product group (-1: none)]
TU_SOM = 0
TU_GROUP = 1
N_TIMS_U = 2
# gparams: [im_ratio, n_groups, offset of group g for g in 0..n_groups-1]
# Deribit parameter layout
# uparams[u]: [pnl_offset, extended_dampener, delta_shock_rate]
DU_OFFSET = 0
DU_DAMPENER = 1
DU_DELTA_SHOCK = 2
N_DBT_U = 3
# gparams: [mm_factor, first_extended_cell, end of the extended cells (stress cells follow)]


@kernel
def apply_change(
    pnl: np.ndarray,
    aux: np.ndarray,
    risk: np.ndarray,
    attr: np.ndarray,
    i: int,
    q0: float,
    q1: float,
) -> None:
    """Move instrument ``i`` from quantity ``q0`` to ``q1`` in the state, in place."""
    d = q1 - q0
    u = int(attr[i, A_UND])
    row = risk[i]
    target = pnl[u]
    for c in range(row.shape[0]):
        target[c] += d * row[c]
    dl = d * attr[i, A_DELTA]
    aux[u, X_DELTA] += dl
    aux[u, X_TIER0 + int(attr[i, A_TIER])] += dl
    if attr[i, A_DELIVERY] > 0.0:
        aux[u, X_DELIVERY] += dl
    mult = attr[i, A_MULT]
    if attr[i, A_CALL] > 0.0:
        aux[u, X_SHORT_CALLS] += mult * (max(-q1, 0.0) - max(-q0, 0.0))
    elif attr[i, A_PUT] > 0.0:
        aux[u, X_SHORT_PUTS] += mult * (max(-q1, 0.0) - max(-q0, 0.0))
    aux[u, X_ROLL] += attr[i, A_ROLL] * (abs(q1) - abs(q0))
    aux[u, X_VALUE] += d * attr[i, A_VALUE]


@kernel
def rebuild_state(
    pnl: np.ndarray,
    aux: np.ndarray,
    risk: np.ndarray,
    attr: np.ndarray,
    rows: np.ndarray,  # int64[k]
    qty: np.ndarray,  # float64[k]
) -> None:
    """Recompute a state from scratch for positions ``qty`` at table ``rows``."""
    pnl[:, :] = 0.0
    aux[:, :] = 0.0
    for j in range(rows.shape[0]):
        apply_change(pnl, aux, risk, attr, rows[j], 0.0, qty[j])


@kernel
def margin_span(
    pnl: np.ndarray,
    aux: np.ndarray,
    und_price: np.ndarray,
    gparams: np.ndarray,
    uparams: np.ndarray,
    out: np.ndarray,
) -> None:
    """SPAN: per underlying ``max(scan + intra + delivery - inter_credit, SOM)``; IM = ratio x MM.

    The inter-commodity credit is ``rate x spreads x delta ratio x weighted price risk``,
    CME's: ``price risk = scan - time risk - volatility risk`` (time risk: the mean loss of
    the two unchanged-price scenarios; volatility risk: half the worst scenario's loss less
    its paired scenario's), floored at 0, per unit of |net delta|, capped at ``PSR x price``.
    A book that loses in no scenario has no scan risk to split: all four figures are 0."""
    n_u, n_cells = pnl.shape
    out[:, :] = 0.0
    n_pairs = int(gparams[1])
    inter_at = 2 + 3 * n_pairs
    n_inter = int(gparams[inter_at])
    split_at = inter_at + 1 + 5 * n_inter
    time_a = int(gparams[split_at])
    time_b = int(gparams[split_at + 1])
    for u in range(n_u):
        worst = 0.0
        cell = 0
        for c in range(n_cells):
            loss = -pnl[u, c]
            if loss > worst:
                worst = loss
                cell = c
        price = und_price[u]
        net_delta = aux[u, X_DELTA]
        out[u, O_SPAN_DELTA] = net_delta
        if worst > 0.0:
            time_risk = 0.0 - 0.5 * (pnl[u, time_a] + pnl[u, time_b])  # no -0.0
            vol_risk = 0.5 * (worst + pnl[u, int(gparams[split_at + 2 + cell])])
            price_risk = max(worst - time_risk - vol_risk, 0.0)
            out[u, O_SPAN_TIME] = time_risk
            out[u, O_SPAN_VOL] = vol_risk
            out[u, O_SPAN_PRICE] = price_risk
            if net_delta != 0.0:
                out[u, O_SPAN_WPR] = min(price_risk / abs(net_delta), uparams[u, SU_PSR] * price)
        # calendar-spread charge: match opposite net deltas across tiers in priority order
        d0 = aux[u, X_TIER0]
        d1 = aux[u, X_TIER0 + 1]
        d2 = aux[u, X_TIER0 + 2]
        d3 = aux[u, X_TIER0 + 3]
        intra = 0.0
        for p in range(n_pairs):
            ta = int(gparams[2 + 3 * p])
            tb = int(gparams[3 + 3 * p])
            rate = gparams[4 + 3 * p]
            da = d0 if ta == 0 else d1 if ta == 1 else d2 if ta == 2 else d3
            db = d0 if tb == 0 else d1 if tb == 1 else d2 if tb == 2 else d3
            if da * db < 0.0:
                m = min(abs(da), abs(db))
                intra += rate * m * price
                da -= m if da > 0.0 else -m
                db -= m if db > 0.0 else -m
                if ta == 0:
                    d0 = da
                elif ta == 1:
                    d1 = da
                elif ta == 2:
                    d2 = da
                else:
                    d3 = da
                if tb == 0:
                    d0 = db
                elif tb == 1:
                    d1 = db
                elif tb == 2:
                    d2 = db
                else:
                    d3 = db
        delivery = uparams[u, SU_DELIVERY] * abs(aux[u, X_DELIVERY]) * price
        som = uparams[u, SU_SOM] * price * max(aux[u, X_SHORT_CALLS], aux[u, X_SHORT_PUTS])
        out[u, O_WORST] = worst
        out[u, O_CELL] = cell
        out[u, O_SPAN_INTRA] = intra
        out[u, O_SPAN_DELIVERY] = delivery
        out[u, O_SPAN_SOM] = som
    # inter-commodity credits between underlyings with opposite net deltas
    for p in range(n_inter):
        base = inter_at + 1 + 5 * p
        ua = int(gparams[base])
        ub = int(gparams[base + 1])
        ra = gparams[base + 2]
        rb = gparams[base + 3]
        rate = gparams[base + 4]
        da = aux[ua, X_DELTA]
        db = aux[ub, X_DELTA]
        if da * db < 0.0:
            spreads = min(abs(da) / ra, abs(db) / rb)
            out[ua, O_SPAN_INTER] += rate * spreads * ra * out[ua, O_SPAN_WPR]
            out[ub, O_SPAN_INTER] += rate * spreads * rb * out[ub, O_SPAN_WPR]
    ratio = gparams[0]
    total = n_u
    best_scan = -1.0
    for u in range(n_u):
        credit = min(out[u, O_SPAN_INTER], out[u, O_WORST])
        out[u, O_SPAN_INTER] = credit
        gross = out[u, O_WORST] + out[u, O_SPAN_INTRA] + out[u, O_SPAN_DELIVERY] - credit
        risk = max(gross, out[u, O_SPAN_SOM])
        out[u, O_SPAN_RISK] = risk
        out[u, O_MM] = risk
        out[u, O_IM] = ratio * risk
        for col in (O_MM, O_IM, O_WORST, O_SPAN_INTRA, O_SPAN_DELIVERY, O_SPAN_INTER, O_SPAN_SOM):
            out[total, col] += out[u, col]
        out[total, O_SPAN_RISK] += risk
        if out[u, O_WORST] > best_scan:
            best_scan = out[u, O_WORST]
            out[total, O_CELL] = out[u, O_CELL]
            out[total, O_UND] = u


@kernel
def margin_deribit(
    pnl: np.ndarray,
    aux: np.ndarray,
    und_price: np.ndarray,
    gparams: np.ndarray,
    uparams: np.ndarray,
    out: np.ndarray,
) -> None:
    """Deribit PM: gains scaled by ``pnl_offset`` per coin, coins summed cell by cell,
    ``worst_case = -min(agg)``; ``RMM = worst_case + roll_shock + delta_shock``."""
    n_u, n_cells = pnl.shape
    out[:, :] = 0.0
    total = n_u
    first_ext = int(gparams[1])
    end_ext = int(gparams[2])
    worst_total = 0.0
    worst_cell = 0
    for c in range(n_cells):
        agg = 0.0
        for u in range(n_u):
            v = pnl[u, c]
            g = v if v < 0.0 else uparams[u, DU_OFFSET] * v
            damp = uparams[u, DU_DAMPENER]
            if first_ext <= c < end_ext and damp > 0.0 and g < 0.0:
                g = min(g + damp, 0.0)
            agg += g
            if -g > out[u, O_WORST]:
                out[u, O_WORST] = -g
                out[u, O_CELL] = c
        if -agg > worst_total:
            worst_total = -agg
            worst_cell = c
    mm_factor = gparams[0]
    roll_total = 0.0
    dshock_total = 0.0
    for u in range(n_u):
        roll = aux[u, X_ROLL]
        dshock = uparams[u, DU_DELTA_SHOCK] * abs(aux[u, X_DELTA]) * und_price[u]
        rmm = out[u, O_WORST] + roll + dshock
        out[u, O_DBT_ROLL] = roll
        out[u, O_DBT_DELTA] = dshock
        out[u, O_DBT_RMM] = rmm
        out[u, O_IM] = rmm
        out[u, O_MM] = mm_factor * rmm
        roll_total += roll
        dshock_total += dshock
    rmm = worst_total + roll_total + dshock_total
    out[total, O_WORST] = worst_total
    out[total, O_CELL] = worst_cell
    worst_u = 0
    for u in range(n_u):
        if -pnl[u, worst_cell] > -pnl[worst_u, worst_cell]:
            worst_u = u
    out[total, O_UND] = worst_u
    out[total, O_DBT_ROLL] = roll_total
    out[total, O_DBT_DELTA] = dshock_total
    out[total, O_DBT_RMM] = rmm
    out[total, O_IM] = rmm
    out[total, O_MM] = mm_factor * rmm


@kernel
def margin_tims(
    pnl: np.ndarray,
    aux: np.ndarray,
    und_price: np.ndarray,
    gparams: np.ndarray,
    uparams: np.ndarray,
    out: np.ndarray,
) -> None:
    """OCC TIMS style. A class group is one coin: its worst loss over its price points.
    Coins of a product group share scenarios (cell c of each coin's grid together): per
    scenario the group's loss is its coins' losses less ``offset`` x their gains, and the
    group's worst such loss, at most the sum of its class groups' worst losses, replaces
    that sum; the difference is the product offset, shared among the coins pro rata to
    their worst losses. Per coin ``MM = max(worst - offset, short option minimum)``,
    ``IM = im_ratio x MM``."""
    n_u, n_cells = pnl.shape
    out[:, :] = 0.0
    for u in range(n_u):
        worst = 0.0
        cell = 0
        for c in range(n_cells):
            loss = -pnl[u, c]
            if loss > worst:
                worst = loss
                cell = c
        out[u, O_WORST] = worst
        out[u, O_CELL] = cell
        n_short = aux[u, X_SHORT_CALLS] + aux[u, X_SHORT_PUTS]
        out[u, O_TIMS_SOM] = uparams[u, TU_SOM] * und_price[u] * n_short
    n_groups = int(gparams[1])
    for g in range(n_groups):
        offset = gparams[2 + g]
        classes = 0.0
        for u in range(n_u):
            if int(uparams[u, TU_GROUP]) == g:
                classes += out[u, O_WORST]
        if classes <= 0.0:
            continue
        group = 0.0
        for c in range(n_cells):
            net = 0.0
            for u in range(n_u):
                if int(uparams[u, TU_GROUP]) == g:
                    v = pnl[u, c]
                    net += v if v < 0.0 else offset * v
            if -net > group:
                group = -net
        credit = max(classes - min(group, classes), 0.0)
        for u in range(n_u):
            if int(uparams[u, TU_GROUP]) == g:
                out[u, O_TIMS_OFFSET] = credit * (out[u, O_WORST] / classes)
    ratio = gparams[0]
    total = n_u
    best = -1.0
    for u in range(n_u):
        risk = max(out[u, O_WORST] - out[u, O_TIMS_OFFSET], out[u, O_TIMS_SOM])
        out[u, O_TIMS_RISK] = risk
        out[u, O_MM] = risk
        out[u, O_IM] = ratio * risk
        for col in (O_MM, O_IM, O_WORST, O_TIMS_OFFSET, O_TIMS_SOM, O_TIMS_RISK):
            out[total, col] += out[u, col]
        if out[u, O_WORST] > best:
            best = out[u, O_WORST]
            out[total, O_CELL] = out[u, O_CELL]
            out[total, O_UND] = u


@kernel
def whatif_span(
    pnl, aux, risk, attr, i, q0, q1, und_price, gparams, uparams, scratch_pnl, scratch_aux, out
) -> None:
    """Margin after moving instrument ``i`` from ``q0`` to ``q1``, leaving the state as is."""
    scratch_pnl[:, :] = pnl
    scratch_aux[:, :] = aux
    apply_change(scratch_pnl, scratch_aux, risk, attr, i, q0, q1)
    margin_span(scratch_pnl, scratch_aux, und_price, gparams, uparams, out)


@kernel
def whatif_deribit(
    pnl, aux, risk, attr, i, q0, q1, und_price, gparams, uparams, scratch_pnl, scratch_aux, out
) -> None:
    """Margin after moving instrument ``i`` from ``q0`` to ``q1``, leaving the state as is."""
    scratch_pnl[:, :] = pnl
    scratch_aux[:, :] = aux
    apply_change(scratch_pnl, scratch_aux, risk, attr, i, q0, q1)
    margin_deribit(scratch_pnl, scratch_aux, und_price, gparams, uparams, out)


@kernel
def whatif_tims(
    pnl, aux, risk, attr, i, q0, q1, und_price, gparams, uparams, scratch_pnl, scratch_aux, out
) -> None:
    """Margin after moving instrument ``i`` from ``q0`` to ``q1``, leaving the state as is."""
    scratch_pnl[:, :] = pnl
    scratch_aux[:, :] = aux
    apply_change(scratch_pnl, scratch_aux, risk, attr, i, q0, q1)
    margin_tims(scratch_pnl, scratch_aux, und_price, gparams, uparams, out)


@kernel
def rebuild_pool(pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty) -> None:
    """Recompute a pool's three states from holdings at table ``rows``: positions
    ``qty[0]``, positions + working buys ``qty[1]``, positions - working sells ``qty[2]``."""
    rebuild_state(pnl_p, aux_p, risk, attr, rows, qty[0])
    rebuild_state(pnl_b, aux_b, risk, attr, rows, qty[1])
    rebuild_state(pnl_s, aux_s, risk, attr, rows, qty[2])


@kernel
def remargin_span(
    pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty,
    und_price, gparams, uparams, out3,
) -> None:  # fmt: skip
    """:func:`rebuild_pool`, then the margin of each state into ``out3[0..2]`` (one call per
    pool on a market update instead of six)."""
    rebuild_pool(pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty)
    margin_span(pnl_p, aux_p, und_price, gparams, uparams, out3[0])
    margin_span(pnl_b, aux_b, und_price, gparams, uparams, out3[1])
    margin_span(pnl_s, aux_s, und_price, gparams, uparams, out3[2])


@kernel
def remargin_deribit(
    pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty,
    und_price, gparams, uparams, out3,
) -> None:  # fmt: skip
    """:func:`rebuild_pool`, then the margin of each state into ``out3[0..2]``."""
    rebuild_pool(pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty)
    margin_deribit(pnl_p, aux_p, und_price, gparams, uparams, out3[0])
    margin_deribit(pnl_b, aux_b, und_price, gparams, uparams, out3[1])
    margin_deribit(pnl_s, aux_s, und_price, gparams, uparams, out3[2])


@kernel
def remargin_tims(
    pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty,
    und_price, gparams, uparams, out3,
) -> None:  # fmt: skip
    """:func:`rebuild_pool`, then the margin of each state into ``out3[0..2]``."""
    rebuild_pool(pnl_p, aux_p, pnl_b, aux_b, pnl_s, aux_s, risk, attr, rows, qty)
    margin_tims(pnl_p, aux_p, und_price, gparams, uparams, out3[0])
    margin_tims(pnl_b, aux_b, und_price, gparams, uparams, out3[1])
    margin_tims(pnl_s, aux_s, und_price, gparams, uparams, out3[2])
