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
from typing import Any

import numpy as np

from riskgate.config import MODEL_NAMES as _MODEL_NAMES


class ModelParamsError(ValueError):
    """A parameter file that is missing, malformed or inconsistent; names the key."""


VOL_UP = 1
VOL_SAME = 0
VOL_DOWN = -1


@dataclass(frozen=True)
class CoinGrid:
    """The scenario cells of one underlying (all arrays have length ``n_cells``)."""

    moves: np.ndarray  # price move applied to option forwards (fraction of index)
    d1_moves: np.ndarray  # price move applied to delta-one instruments
    opt_weight: np.ndarray  # weight of option P&L
    d1_weight: np.ndarray  # weight of delta-one P&L
    vol_dir: np.ndarray  # int: VOL_UP / VOL_SAME / VOL_DOWN

    def label(self, cell: int) -> dict[str, Any]:
        vol = {VOL_UP: "up", VOL_SAME: "unchanged", VOL_DOWN: "down"}[int(self.vol_dir[cell])]
        return {
            "cell": int(cell),
            "price_move": float(self.moves[cell]),
            "vol_move": vol,
        }


def _num(table: Mapping[str, Any], key: str, where: str, *, minimum: float | None = None) -> float:
    if key not in table:
        raise ModelParamsError(f"{where}.{key}: missing")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelParamsError(f"{where}.{key}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ModelParamsError(f"{where}.{key}: must be >= {minimum}, got {value!r}")
    return float(value)


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

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self._grids: dict[str, CoinGrid] = {}

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

    def grid(self, coin: str) -> CoinGrid:
        if coin not in self._grids:
            self._grids[coin] = self._build_grid(coin)
        return self._grids[coin]

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
        """Shocked vols ``[n, C]`` for options of one coin with current vols ``vol[n]``."""

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


def load_model(name: str, params_path: str | Path | None = None) -> ScenarioModel:
    """The named model with its packaged parameters, or the user's TOML file."""
    names = model_names()
    if name not in _REGISTRY:
        raise ModelParamsError(f"--model: unknown model {name!r} (choose from {', '.join(names)})")
    return _REGISTRY[name](load_params_file(name, params_path))
