"""``riskgate margin FILE --plot OUT.png``: the scenario P&L of each pool, as pictures.

Per pool and model, three panels:

- a heat map of the pool's P&L over the model's regular grid, price move (columns) × vol
  move (rows), each cell annotated, the cell that sets the margin outlined;
- beside it the cells outside the grid: deribit's extended moves, span's weighted extremes,
  the stress scenarios (by name), as bars;
- the P&L profile against the price move at unchanged vols: now, and after the model's
  look-ahead (span and tims: one day; deribit has none).

The P&L of a cell is the pool's coins summed in that cell (every coin moved by its own
move of the cell), weighted as the model weighs it. ``deribit`` margins that sum (after
scaling gains); ``span`` and ``tims`` scan each coin alone, so their binding cell is the
worst coin's. With several models the blocks stand side by side. Needs matplotlib (the
``plot`` extra); rendered with the Agg backend, no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from riskgate.domain.portfolio import Portfolio
from riskgate.kernels import margin as mk
from riskgate.models.base import VOL_DOWN, VOL_SAME, VOL_UP, CoinGrid, ScenarioModel
from riskgate.models.risk_table import USD, build_table

PROFILE_MOVES = np.linspace(-0.5, 0.5, 101)  # price moves of the profile, fraction of index
_VOL_ROWS = ((VOL_UP, "vol up"), (VOL_SAME, "vol unchanged"), (VOL_DOWN, "vol down"))


class PlotError(ValueError):
    """--plot cannot be done (matplotlib missing, a bad output path)."""


def _money(x: float, ccy: str) -> str:
    """Money as people write it: separators, no scientific notation; a coin to 4 places."""
    if ccy == USD:
        return f"{x:,.0f}".replace("-", "−")
    return f"{x:,.4f}".replace("-", "−")


def _regular(grid: CoinGrid) -> np.ndarray:
    """Cells of the model's regular price × vol grid: full weight, one move for options
    and delta-one alike, not a stress cell."""
    n_base = grid.n_base
    cells = np.arange(len(grid.moves))
    return (
        (cells < n_base)
        & (grid.opt_weight == 1.0)
        & (grid.d1_weight == 1.0)
        & (grid.moves == grid.d1_moves)
    )


def _extra_label(grid: CoinGrid, cell: int) -> str:
    if cell >= grid.n_base:
        return f"{grid.name(cell)} ({grid.moves[cell]:+.0%}, vol {grid.vol_label(cell)})"
    w = grid.opt_weight[cell]
    return f"{grid.moves[cell]:+.0%}, vol {grid.vol_label(cell)} (weight {w:.2f})"


class _ProfileModel(ScenarioModel):
    """A model whose cells are the profile's price moves at unchanged vol, weight 1, with
    the look-ahead given: risk arrays of the profile from the same kernel."""

    def __init__(self, base: ScenarioModel, look_ahead_years: float) -> None:
        super().__init__(base.data)
        self.base = base
        self.name = base.name
        self.look_ahead_years = look_ahead_years
        self.futures_equivalent_deltas = base.futures_equivalent_deltas

    def _build_grid(self, coin: str) -> CoinGrid:
        m = PROFILE_MOVES.copy()
        one = np.ones_like(m)
        return CoinGrid(m, m.copy(), one, one.copy(), np.full(len(m), VOL_SAME))

    def scenario_vols(self, coin: str, vol: np.ndarray, dte_days: np.ndarray) -> np.ndarray:
        return np.repeat(vol[:, None], len(PROFILE_MOVES), axis=1)

    def collateral_haircut(self, coin: str) -> float:
        return self.base.collateral_haircut(coin)

    def kernel_params(self, coins: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.base.kernel_params(coins)

    def expiry_tier(self, dte_days: float) -> int:
        return 0

    def in_delivery(self, dte_days: float) -> bool:
        return False

    def roll_per_unit(self, coin: str, tte_years: float) -> float:
        return 0.0


def _profile(
    portfolio: Portfolio, model: ScenarioModel, ccy: str, qty: Mapping[str, float], years: float
) -> np.ndarray:
    """The pool's P&L at each profile move (every coin moved alike), vols unchanged."""
    table = build_table(
        _ProfileModel(model, years), portfolio.market, portfolio.instruments.values(), ccy
    )
    pnl = np.zeros(len(PROFILE_MOVES))
    for symbol, q in qty.items():
        pnl += q * table.risk[table.row[symbol]]
    return pnl


def _pool_panels(
    fig: Any, gs: Any, portfolio: Portfolio, model: ScenarioModel, ccy: str, pool: Any
) -> None:
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    table = pool.table
    active = [u for u in range(len(table.coins)) if pool.pnl[u].any()] or [0]
    coins = [table.coins[u] for u in active]
    joint = pool.pnl[active].sum(axis=0)
    out = pool.margin_out()
    total = out.shape[0] - 1
    worst_cell = int(out[total, mk.O_CELL])
    grid = table.grids[coins[0]]
    money = FuncFormatter(lambda x, _pos: _money(x, ccy))
    title = f"pool {ccy} · {model.name} · P&L in {ccy}"

    # heat map of the regular grid
    ax = fig.add_subplot(gs[0, 0])
    regular = _regular(grid)
    moves = sorted({round(float(m), 12) for m in grid.moves[regular]})
    rows = [(d, n) for d, n in _VOL_ROWS if (grid.vol_dir[regular] == d).any()]
    heat = np.full((len(rows), len(moves)), np.nan)
    where: dict[int, tuple[int, int]] = {}
    for c in np.flatnonzero(regular):
        r = next(k for k, (d, _) in enumerate(rows) if d == grid.vol_dir[c])
        k = moves.index(round(float(grid.moves[c]), 12))
        heat[r, k] = joint[c]
        where[int(c)] = (r, k)
    span_abs = float(np.nanmax(np.abs(heat))) if np.isfinite(heat).any() else 1.0
    span_abs = max(span_abs, 1e-12)
    norm = TwoSlopeNorm(vmin=-span_abs, vcenter=0.0, vmax=span_abs)
    im = ax.imshow(heat, cmap="RdYlGn", norm=norm, aspect="auto")
    for (r, k), v in np.ndenumerate(heat):
        if np.isfinite(v):
            ax.text(k, r, _money(v, ccy), ha="center", va="center", fontsize=6)
    if worst_cell in where:
        r, k = where[worst_cell]
        ax.add_patch(Rectangle((k - 0.5, r - 0.5), 1, 1, fill=False, lw=2.5, ec="black"))
        ax.annotate("worst", (k, r - 0.5), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, weight="bold")  # fmt: skip
    ax.set_xticks(range(len(moves)))
    labels = []
    for m in moves:
        cells = [c for c, (_, k) in where.items() if moves[k] == m]
        per_coin = [f"{table.grids[c].moves[cells[0]]:+.0%}" for c in coins] if cells else []
        labels.append("\n".join(per_coin) if per_coin else f"{m:+.0%}")
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([n for _, n in rows], fontsize=7)
    ax.set_xlabel(f"price move of {' / '.join(coins)} (% of index)", fontsize=8)
    ax.set_title(title, fontsize=9)
    cb = fig.colorbar(im, ax=ax, format=money, fraction=0.05, pad=0.02)
    cb.ax.tick_params(labelsize=6)

    # the cells beside the grid: extended, extremes, stress scenarios
    ax2 = fig.add_subplot(gs[0, 1])
    extra = [int(c) for c in np.flatnonzero(~regular)]
    if extra:
        vals = [joint[c] for c in extra]
        colors = ["#c0392b" if v < 0 else "#27ae60" for v in vals]
        edges = ["black" if c == worst_cell else "none" for c in extra]
        ax2.barh(range(len(extra)), vals, color=colors, edgecolor=edges, linewidth=2)
        ax2.set_yticks(range(len(extra)))
        ax2.set_yticklabels([_extra_label(grid, c) for c in extra], fontsize=6)
        ax2.invert_yaxis()
        ax2.axvline(0.0, color="grey", lw=0.8)
        ax2.xaxis.set_major_formatter(money)
        ax2.tick_params(axis="x", labelsize=6, rotation=30)
        if worst_cell in extra:
            ax2.set_title("other cells (worst outlined)", fontsize=8)
        else:
            ax2.set_title("other cells", fontsize=8)
    else:
        ax2.axis("off")
        ax2.text(0.5, 0.5, "no cells\noutside the grid", ha="center", va="center", fontsize=8)

    # the profile now and after the look-ahead
    ax3 = fig.add_subplot(gs[1, :])
    x = PROFILE_MOVES
    ax3.plot(x, _profile(portfolio, model, ccy, pool.qty, 0.0), label="now", color="#2c3e50")
    if model.look_ahead_years > 0.0:
        days = model.look_ahead_years * 365.0
        later = _profile(portfolio, model, ccy, pool.qty, model.look_ahead_years)
        ax3.plot(x, later, "--", label=f"after {days:g} day(s)", color="#e67e22")
    ax3.axhline(0.0, color="grey", lw=0.8)
    worst = float(out[total, mk.O_WORST])
    ax3.axhline(-worst, color="#c0392b", lw=0.8, ls=":", label=f"worst case −{_money(worst, ccy)}")
    ax3.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax3.yaxis.set_major_formatter(money)
    ax3.tick_params(labelsize=7)
    ax3.set_xlabel(f"price move of {' and '.join(coins)}, vols unchanged", fontsize=8)
    ax3.set_ylabel(f"P&L ({ccy})", fontsize=8)
    ax3.legend(fontsize=7, loc="best")
    ax3.grid(alpha=0.3)


def render_plot(
    portfolio: Portfolio, models: Sequence[ScenarioModel], path: str | Path, title: str = ""
) -> None:
    """Draw every pool of ``portfolio`` under each of ``models`` (side by side) to a PNG."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(
            "--plot needs matplotlib: pip install 'riskgate[plot]'"
        ) from None  # fmt: skip
    from riskgate.report import portfolio_state

    if not Path(path).parent.is_dir():  # before the drawing, not after
        raise PlotError(f"--plot: cannot write {path}: no such directory")
    states = [portfolio_state(portfolio, m) for m in models]
    pools = sorted(states[0].pools)
    fig = Figure(figsize=(9.5 * len(models), 6.5 * len(pools)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(len(pools), len(models))
    for p, ccy in enumerate(pools):
        for k, (model, state) in enumerate(zip(models, states, strict=True)):
            gs = outer[p, k].subgridspec(2, 2, width_ratios=(3, 1.4), height_ratios=(1.1, 1))
            _pool_panels(fig, gs, portfolio, model, ccy, state.pools[ccy])
    if title:
        fig.suptitle(title, fontsize=10)
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise PlotError(f"--plot: cannot write {path}: {exc.strerror}") from None
