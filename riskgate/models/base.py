"""Scenario models: parameter files, scenario grids and the model interface.

A model is data: per underlying a table of cells (price move, vol direction, weights) plus
add-on parameters, loaded from TOML. The number of cells comes from the table's shape.
"""

from __future__ import annotations

import math
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from riskgate.config import MODEL_NAMES as _MODEL_NAMES

if TYPE_CHECKING:
    from riskgate.models.stress import StressSet


class ModelParamsError(ValueError):
    """A parameter file that is missing, malformed or inconsistent; names the key."""


VOL_UP = 1
VOL_SAME = 0
VOL_DOWN = -1
VOL_STRESS = 2  # a stress cell: its vol moves by the scenario's shift (CoinGrid.vol_shift)


@dataclass(frozen=True)
class CoinGrid:
    """The scenario cells of one underlying (all arrays have length ``n_cells``)."""

    moves: np.ndarray  # price move applied to option forwards (fraction of index)
    d1_moves: np.ndarray  # price move applied to delta-one instruments
    opt_weight: np.ndarray  # weight of option P&L
    d1_weight: np.ndarray  # weight of delta-one P&L
    vol_dir: np.ndarray  # int: VOL_UP / VOL_SAME / VOL_DOWN, VOL_STRESS for stress cells
    # stress cells (riskgate.models.stress) follow the model's own: their names, and per
    # cell the absolute vol shift (0 for the model's cells)
    names: tuple[str, ...] = ()
    vol_shift: np.ndarray | None = None

    @property
    def n_base(self) -> int:
        """Cells of the model's own table (the stress cells come after them)."""
        return len(self.moves) - len(self.names)

    def vol_label(self, cell: int) -> str:
        d = int(self.vol_dir[cell])
        if d == VOL_STRESS:
            assert self.vol_shift is not None
            return f"{float(self.vol_shift[cell]):+g}"
        return {VOL_UP: "up", VOL_SAME: "unchanged", VOL_DOWN: "down"}[d]

    def name(self, cell: int) -> str:
        """The stress scenario's name of a stress cell, else ""."""
        k = cell - self.n_base
        return self.names[k] if k >= 0 else ""

    def label(self, cell: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cell": int(cell),
            "price_move": float(self.moves[cell]),
            "vol_move": self.vol_label(cell),
        }
        if cell >= self.n_base:
            out["name"] = self.name(cell)
        return out


def _num(table: Mapping[str, Any], key: str, where: str, *, minimum: float | None = None) -> float:
    if key not in table:
        raise ModelParamsError(f"{where}.{key}: missing")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelParamsError(f"{where}.{key}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ModelParamsError(f"{where}.{key}: must be >= {minimum}, got {value!r}")
    return float(value)


def _underlying_tables(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(where, table)`` of each ``[underlyings.<COIN>]`` table, each checked to be one."""
    out = []
    for coin, table in data["underlyings"].items():
        where = f"underlyings.{coin}"
        if not isinstance(table, Mapping):
            raise ModelParamsError(f"{where}: expected a table of parameters")
        out.append((where, table))
    return out


def _fall_fraction(table: Mapping[str, Any], key: str, where: str) -> float:
    """A price move as a fraction of the index, in [0, 1): a fall of 100 % or more would
    price the coin at or below zero."""
    value = _num(table, key, where, minimum=0.0)
    if value >= 1.0:
        raise ModelParamsError(
            f"{where}.{key}: must be < 1 (a fall of 100% or more puts scenario prices at or "
            f"below zero), got {value!r}"
        )
    return value


def load_params_file(name: str, path: str | Path | None) -> dict[str, Any]:
    """Read a model's TOML: the user's file if given, else the packaged default."""
    try:
        if path is None:
            text = resources.files("riskgate.models").joinpath(f"params/{name}.toml").read_text()
            where = f"{name}.toml"
        else:
            text = Path(path).read_text()
            where = str(path)
    except OSError as exc:
        raise ModelParamsError(f"--params: cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelParamsError(f"{where}: malformed TOML: {exc}") from None
    declared = data.get("model", name)
    if declared != name:
        raise ModelParamsError(f"{where}: model = {declared!r}, but the {name!r} model was chosen")
    if not isinstance(data.get("underlyings"), dict) or not data["underlyings"]:
        raise ModelParamsError(f"{where}: [underlyings.<COIN>] tables missing")
    return data


class ScenarioModel(ABC):
    """Scenario table + add-on parameters + the margin kernel that reads them."""

    name: str
    addon_names: tuple[str, ...]  # names of out columns O_ADDON0.. for reports
    look_ahead_years: float
    # delta convention of the risk table's A_DELTA column (riskgate.kernels.risk_arrays):
    # False = index equivalents, True = futures equivalents
    futures_equivalent_deltas: bool = False
    # per-underlying figures of the kernel's out block shown next to the add-ons in reports:
    # (report name, out column)
    breakdown_columns: tuple[tuple[str, int], ...] = ()
    # True: a pool's coins are summed cell by cell, so its worst cell moves every coin at
    # once (deribit); False: each coin's scan risk is taken at its own worst cell (span)
    pool_shares_cells: bool = False
    # stress cells' shocked vols are floored here (span and tims: their vol_floor)
    stress_vol_floor: float = 0.0

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self._grids: dict[str, CoinGrid] = {}
        self._base_grids: dict[str, CoinGrid] = {}
        self.stress: StressSet | None = None

    def with_stress(self, stress: StressSet | None) -> ScenarioModel:
        """Append ``stress``'s scenarios to every coin's cells (before any grid is used)."""
        self.stress = stress
        self._grids.clear()
        return self

    @property
    def identity(self) -> str:
        """What a snapshot records about the model: its name, and the stress scenarios'
        digest when it has any (``deribit+stress:<digest>``)."""
        return self.name if self.stress is None else f"{self.name}+stress:{self.stress.digest}"

    # ---- per-underlying parameters -----------------------------------------------------

    def coin_table(self, coin: str) -> Mapping[str, Any]:
        tables = self.data["underlyings"]
        if coin in tables:
            return tables[coin]
        if "DEFAULT" in tables:
            return tables["DEFAULT"]
        raise ModelParamsError(f"{self.name}: no parameters for underlying {coin} and no DEFAULT")

    def coin_param(self, coin: str, key: str, *, minimum: float | None = None) -> float:
        where = f"underlyings.{coin if coin in self.data['underlyings'] else 'DEFAULT'}"
        return _num(self.coin_table(coin), key, where, minimum=minimum)

    def base_grid(self, coin: str) -> CoinGrid:
        """The model's own cells of ``coin``, without stress cells."""
        if coin not in self._base_grids:
            self._base_grids[coin] = self._build_grid(coin)
        return self._base_grids[coin]

    def grid(self, coin: str) -> CoinGrid:
        """Every cell of ``coin``: the model's own, then one per stress scenario."""
        if coin not in self._grids:
            base = self.base_grid(coin)
            if self.stress is None or not self.stress.scenarios:
                self._grids[coin] = base
            else:
                sc = self.stress.scenarios
                mv = np.array([s.price_move(coin) for s in sc])
                w = np.array([s.weight for s in sc])
                shift = np.zeros(len(base.moves) + len(sc))
                shift[len(base.moves) :] = [s.vol_move(coin) for s in sc]
                self._grids[coin] = CoinGrid(
                    moves=np.concatenate([base.moves, mv]),
                    d1_moves=np.concatenate([base.d1_moves, mv]),
                    opt_weight=np.concatenate([base.opt_weight, w]),
                    d1_weight=np.concatenate([base.d1_weight, w]),
                    vol_dir=np.concatenate([base.vol_dir, np.full(len(sc), VOL_STRESS)]),
                    names=tuple(s.name for s in sc),
                    vol_shift=shift,
                )
        return self._grids[coin]

    def all_scenario_vols(self, coin: str, vol: np.ndarray, dte_days: np.ndarray) -> np.ndarray:
        """Shocked vols ``[n, C]`` over every cell: the model's, then the stress shifts."""
        base = self.scenario_vols(coin, vol, dte_days)
        g = self.grid(coin)
        if not g.names:
            return base
        assert g.vol_shift is not None
        shifts = g.vol_shift[base.shape[1] :]
        stress = np.maximum(vol[:, None] + shifts[None, :], self.stress_vol_floor)
        return np.hstack([base, stress])

    @property
    def n_base_cells(self) -> int:
        return len(self.base_grid(next(iter(self.data["underlyings"]))).moves)

    @property
    def n_cells(self) -> int:
        return len(self.grid(next(iter(self.data["underlyings"]))).moves)

    def collateral_haircut(self, coin: str) -> float:
        table = self.coin_table(coin)
        return float(table.get("collateral_haircut", 0.0))

    # ---- model specifics ---------------------------------------------------------------

    @abstractmethod
    def _build_grid(self, coin: str) -> CoinGrid: ...

    @abstractmethod
    def scenario_vols(self, coin: str, vol: np.ndarray, dte_days: np.ndarray) -> np.ndarray:
        """Shocked vols ``[n, C_base]`` over the model's own cells (``base_grid``) for
        options of one coin with current vols ``vol[n]``."""

    @abstractmethod
    def kernel_params(self, coins: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(gparams, uparams)`` for the margin kernel, rows of uparams in ``coins`` order."""

    @abstractmethod
    def expiry_tier(self, dte_days: float) -> int: ...

    @abstractmethod
    def in_delivery(self, dte_days: float) -> bool: ...

    @abstractmethod
    def roll_per_unit(self, coin: str, tte_years: float) -> float:
        """Roll-shock charge per unit of |quantity|, in coin (times index in a USD pool)."""

    margin_kernel: Callable[..., None]
    whatif_kernel: Callable[..., None]
    remargin_kernel: Callable[..., None]
    remargin_rows_kernel: Callable[..., None]  # whole-book (riskgate.kernels.book_rows)
    remargin_pool_kernel: Callable[..., bool]  # one pool of the array book


_REGISTRY: dict[str, Callable[[Mapping[str, Any]], ScenarioModel]] = {}


def register(name: str) -> Callable[[type[ScenarioModel]], type[ScenarioModel]]:
    def deco(cls: type[ScenarioModel]) -> type[ScenarioModel]:
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


# the models riskgate ships (choices of --model; a test checks the registry agrees)
MODEL_NAMES = _MODEL_NAMES


def model_names() -> list[str]:
    from riskgate.models import deribit, span, tims  # noqa: F401  (registration)

    return sorted(_REGISTRY)


def load_model(
    name: str,
    params_path: str | Path | None = None,
    stress_path: str | Path | None = None,
) -> ScenarioModel:
    """The named model with its packaged parameters, or the user's TOML file; with a stress
    file, its scenarios appended as extra cells (:mod:`riskgate.models.stress`)."""
    from riskgate.models.stress import load_stress

    names = model_names()
    if name not in _REGISTRY:
        raise ModelParamsError(f"--model: unknown model {name!r} (choose from {', '.join(names)})")
    model = _REGISTRY[name](load_params_file(name, params_path))
    if stress_path is not None:
        model.with_stress(load_stress(stress_path))
    return model
