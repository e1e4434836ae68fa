"""Stress scenarios: named joint moves appended as extra cells to any model's scenario table.

A stress file (TOML or CSV) lists scenarios; each moves every coin it names by a price move
(fraction of the index, > −1) and an implied-vol move (absolute vol points, 0.30 = +30
points; shocked vols are floored at the model's vol floor, 0 for ``deribit``), and weighs
the resulting P&L by ``weight``. A coin a scenario does not name moves by the scenario's
``*`` entry if it has one, else not at all.

TOML::

    [[scenario]]
    name = "crash"
    weight = 1.0                                  # optional, default 1
    price_move = { BTC = -0.40, ETH = -0.50 }
    vol_move = { BTC = 0.30, "*" = 0.40 }         # optional, default no vol move

CSV (one row per scenario and coin; the rows of one scenario share its name and weight)::

    name,weight,coin,price_move,vol_move
    crash,1.0,BTC,-0.40,0.30
    crash,1.0,ETH,-0.50,0.40

Errors name the file and the line (CSV) or the field (TOML). A model with stress scenarios
has an ``identity`` of ``<model>+stress:<digest>``, the digest a hash of the scenarios'
content (not of the file's bytes), which snapshots record so a restart cannot mix books
computed with different scenarios.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskgate.models.base import ModelParamsError

ANY_COIN = "*"
CSV_COLUMNS = ("name", "weight", "coin", "price_move", "vol_move")
_TOML_KEYS = {"name", "weight", "price_move", "vol_move"}


class StressFileError(ModelParamsError):
    """A stress file that cannot be read or holds a bad scenario; names line or field."""


@dataclass(frozen=True)
class StressScenario:
    name: str
    weight: float
    price_moves: tuple[tuple[str, float], ...]  # (coin or "*", fraction of the index)
    vol_moves: tuple[tuple[str, float], ...]  # (coin or "*", absolute vol points)

    def price_move(self, coin: str) -> float:
        return _lookup(self.price_moves, coin)

    def vol_move(self, coin: str) -> float:
        return _lookup(self.vol_moves, coin)


def _lookup(moves: tuple[tuple[str, float], ...], coin: str) -> float:
    table = dict(moves)
    return table.get(coin, table.get(ANY_COIN, 0.0))


def _canonical(moves: tuple[tuple[str, float], ...]) -> list[tuple[str, float]]:
    """The moves that matter: a coin's entry equal to the default ("*", else 0) is dropped,
    so that files which move every coin alike hash alike however they spell it."""
    table = dict(moves)
    default = table.get(ANY_COIN, 0.0)
    kept = {c: m for c, m in table.items() if c != ANY_COIN and m != default}
    if default != 0.0:
        kept[ANY_COIN] = default
    return sorted(kept.items())


@dataclass(frozen=True)
class StressSet:
    scenarios: tuple[StressScenario, ...]
    source: str  # the file it was read from (for messages only)

    @property
    def digest(self) -> str:
        """Hash of the content: the same scenarios in TOML or CSV give the same digest."""
        canon = [
            [s.name, s.weight, _canonical(s.price_moves), _canonical(s.vol_moves)]
            for s in self.scenarios
        ]
        blob = json.dumps(canon, separators=(",", ":"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scenarios)


def _number(value: Any, where: str, field: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise StressFileError(f"{where}: {field}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StressFileError(f"{where}: {field}: expected a finite number, got {value!r}")
    return float(value)


def _price(value: Any, where: str, field: str) -> float:
    move = _number(value, where, field)
    if move <= -1.0:
        raise StressFileError(
            f"{where}: {field}: {move!r} is a fall of 100% or more (the price must stay > 0)"
        )
    return move


def _weight(value: Any, where: str) -> float:
    w = _number(value, where, "weight")
    if w <= 0.0:
        raise StressFileError(f"{where}: weight: must be > 0, got {w!r}")
    return w


def _coin(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StressFileError(f"{where}: {field}: a coin such as BTC, or *")
    coin = value.strip().upper()
    if coin != ANY_COIN and not coin.isalnum():
        raise StressFileError(
            f"{where}: {field}: {value!r} is not a coin (letters and digits, or *)"
        )
    return coin


def _from_toml(text: str, where: str) -> list[StressScenario]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StressFileError(f"{where}: malformed TOML: {exc}") from None
    extra = set(data) - {"scenario"}
    if extra:
        raise StressFileError(f"{where}: unknown key {sorted(extra)[0]!r} (expected [[scenario]])")
    tables = data.get("scenario")
    if not isinstance(tables, list) or not tables:
        raise StressFileError(f"{where}: no [[scenario]] tables")
    out = []
    for k, t in enumerate(tables):
        at = f"{where}: scenario[{k}]"
        unknown = set(t) - _TOML_KEYS
        if unknown:
            raise StressFileError(f"{at}: unknown key {sorted(unknown)[0]!r}")
        name = t.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StressFileError(f"{at}.name: a non-empty string")
        at = f"{where}: scenario[{k}] ({name})"
        moves: dict[str, list[tuple[str, float]]] = {}
        for field, check in (("price_move", _price), ("vol_move", _number)):
            table = t.get(field, {})
            if not isinstance(table, dict) or (field == "price_move" and not table):
                raise StressFileError(
                    f"{at}: {field}: a table of coin = move, e.g. {{ BTC = -0.3 }}"
                )
            moves[field] = [
                (_coin(c, at, f"{field}.{c}"), check(v, at, f"{field}.{c}"))
                for c, v in table.items()
            ]
        w = _weight(t.get("weight", 1.0), at)
        out.append(
            StressScenario(name.strip(), w, tuple(moves["price_move"]), tuple(moves["vol_move"]))
        )
    return out


def _from_csv(text: str, where: str) -> list[StressScenario]:
    reader = csv.reader(io.StringIO(text))
    rows = [(n + 1, r) for n, r in enumerate(reader) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise StressFileError(f"{where}: empty (expected the header {','.join(CSV_COLUMNS)})")
    line, header = rows[0]
    header = [h.strip().lower() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header and c != "vol_move"]
    if missing or set(header) - set(CSV_COLUMNS):
        raise StressFileError(
            f"{where}:{line}: header {','.join(header)!r}: expected the columns "
            f"{','.join(CSV_COLUMNS)} (vol_move optional)"
        )
    col = {h: i for i, h in enumerate(header)}
    found: dict[str, dict[str, Any]] = {}
    for line, row in rows[1:]:
        at = f"{where}:{line}"
        if len(row) != len(header):
            raise StressFileError(f"{at}: {len(row)} fields, the header has {len(header)}")
        name = row[col["name"]].strip()
        if not name:
            raise StressFileError(f"{at}: name: empty")
        w = _weight(row[col["weight"]].strip() or "1", at)
        coin = _coin(row[col["coin"]], at, "coin")
        price = _price(row[col["price_move"]].strip(), at, "price_move")
        vol_text = row[col["vol_move"]].strip() if "vol_move" in col else ""
        vol = _number(vol_text, at, "vol_move") if vol_text else 0.0
        s = found.setdefault(name, {"weight": w, "line": line, "price": {}, "vol": {}})
        if s["weight"] != w:
            raise StressFileError(
                f"{at}: weight: {w!r}, but line {s['line']} gives {name!r} weight {s['weight']!r}"
            )
        if coin in s["price"]:
            raise StressFileError(f"{at}: coin: {coin} appears twice in scenario {name!r}")
        s["price"][coin] = price
        s["vol"][coin] = vol
    if not found:
        raise StressFileError(f"{where}: no scenarios after the header")
    return [
        StressScenario(n, s["weight"], tuple(s["price"].items()), tuple(s["vol"].items()))
        for n, s in found.items()
    ]


def load_stress(path: str | Path) -> StressSet:
    """Read a stress file: ``.csv`` as CSV, anything else as TOML."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise StressFileError(f"--stress: cannot read {path}: {exc.strerror}") from None
    where = str(path)
    scenarios = _from_csv(text, where) if p.suffix.lower() == ".csv" else _from_toml(text, where)
    seen: set[str] = set()
    for s in scenarios:
        if s.name in seen:
            raise StressFileError(f"{where}: scenario name {s.name!r} appears twice")
        seen.add(s.name)
    return StressSet(tuple(scenarios), where)
