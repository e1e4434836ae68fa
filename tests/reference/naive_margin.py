"""A deliberately naive, plain-Python reference for riskgate's portfolio-margin models.

Independent of riskgate on purpose: nothing is imported from the package. The only shared
input is the pair of TOML parameter files shipped in ``riskgate/models/params`` (data, read
with ``tomllib``). Everything is explicit loops over positions x scenario cells with
``math``; speed is irrelevant, readability is the point.

Methodology: the README's "Margin models" and ``docs/span.md``, with the interpretation
choices listed below (where those leave room), which riskgate follows as well:

Pools
    ``cross``: one USD pool holding everything. Coin collateral counts at
    ``index x (1 - collateral_haircut)`` and moves like a spot holding of that coin; USD,
    USDC and USDT collateral is cash that never moves.
    ``segregated``: one pool per coin with that coin's inverse instruments and that coin's
    collateral (in coin, so the collateral never moves there), and one USD pool with every
    linear instrument, spot and the USD-like collateral.

Value of one unit now, in pool currency
    spot = S; futures and perpetuals = 0 (marked to market); linear option = Black-76 USD
    price on forward F with discount ``exp(-r T)``; inverse option = USD price / F in its
    coin pool and (USD price / F) x S in the USD pool. Option forward = mark of the dated
    future of the same coin and expiry (same settlement first, then the other), else
    ``S exp(r T)``. Perpetual without a mark = index.

Scenario P&L of one unit (option move m, delta-one move m1)
    option: value at F(1+m), T' = max(T - look_ahead, 0), shocked vol, minus value now; in
    the USD pool an inverse option's coin value is converted at S(1+m) in the scenario and
    at S now. T' <= 0 or vol <= 0 -> discounted intrinsic.
    linear future/perpetual: F m1; inverse future/perpetual: 1 - 1/(1+m1) in the coin pool,
    (1 - 1/(1+m1)) S (1+m1) in the USD pool; spot: S m1; coin collateral: S m1 (1 - haircut)
    in the USD pool, 0 in its coin pool. Option P&L x option weight, delta-one x delta-one
    weight.

Deltas (they only feed the add-ons that use them)
    ``deribit`` (delta shock): index equivalents, the USD delta over the index: an option
    ``df N(d1) F / S`` (puts ``-df N(-d1) F / S``), a linear future ``F / S``, an inverse
    future, spot or coin collateral 1 per coin (times ``1 - haircut`` for collateral).
    ``span`` (calendar-spread, delivery and inter-commodity charges): SPAN's futures
    equivalents: an option ``df N(d1)`` (puts ``-df N(-d1)``) futures on its own forward,
    no F / S; every future and perpetual, linear or inverse, 1 per coin of quantity (an
    inverse contract's quantity is its USD notional over the mark); spot and coin collateral
    as for deribit.

TIMS (``riskgate/models/tims.py``)
    Per coin ``points_per_side`` moves down and up at ``k / points_per_side x price_range``,
    each at vol +/- ``vol_shift`` (or unchanged without ``vol_shifts``), weights 1, the
    look-ahead as in SPAN. A coin's worst loss is its class group's; a product group's
    scenario ``c`` takes cell ``c`` of each member coin, its loss the members' losses less
    ``offset`` x their gains; the product offset = sum of the members' worst losses - the
    group's worst scenario loss, shared in proportion to the members' worst losses. Per
    coin MM = max(worst - offset, short_option_minimum x price x short contracts).

Stress scenarios (``riskgate/models/stress.py``; ``naive_margin(..., stress=...)``)
    Each scenario adds one cell after the model's own, to every coin: price move and
    delta-one move = the coin's ``price_move`` (else the ``*`` entry, else 0), vol =
    ``max(vol + vol_move, floor)`` (floor: ``vol_floor`` for span and tims, 0 for
    deribit), option and delta-one weight = ``weight``. deribit: an ordinary cell (no
    extended weighting, no dampener), summed over coins after the gain offset; span: one
    more scenario of each coin's scan, paired with itself in the volatility-risk split;
    tims: one more price point, shared by a product group's coins.

SPAN's inter-commodity credit
    Per coin the scan risk is split into time risk (mean loss of scenarios 1 and 2),
    volatility risk (half the worst scenario's loss less its opposite-vol pair's; 15 and 16
    pair with themselves) and price risk (the rest, at least 0); the weighted price risk is
    price risk / |net futures-equivalent delta|, capped at PSR x price. Each credited leg
    gets rate x spreads x its ratio x its weighted price risk, at most its scan risk.

Two conventions the brief leaves slightly open are switchable (``conventions=``) so that a
disagreement with riskgate can be attributed precisely; the defaults follow the brief
literally:
    ``option_delta_fs`` (default True, deribit only): the coin delta of every option
    (linear or inverse) is the discounted Black delta x F / S. False: linear options x F / S,
    inverse options the bare discounted Black delta (their USD delta).
    ``coin_pool_collateral_delta`` (default False): coin collateral has coin delta
    ``1 - haircut`` in the USD pool and 0 in its own coin pool, where its P&L is 0 in every
    scenario (a delta that disagreed with the pool's scenario P&L would be incoherent).
    True: ``1 - haircut`` in the coin pool too (the brief's wording read literally).

Known wrinkle of the index-equivalent option delta (kept, because riskgate and the brief
agree on it): for an inverse option the coherent deltas would be df N(d1) in the USD pool
(no F / S factor; an inverse future gets 1, not F / S) and df N(d1) - price_coin in a coin
pool (the derivative of its coin value, Deribit's premium-adjusted delta). It only feeds
the Deribit delta shock.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

PARAMS_DIR = Path(__file__).resolve().parents[2] / "riskgate" / "models" / "params"

USD_LIKE = ("USD", "USDC", "USDT")
SECONDS_PER_YEAR = 365.0 * 86400.0
DATE_RE = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}

DEFAULT_CONVENTIONS = {"option_delta_fs": True, "coin_pool_collateral_delta": False}


# --------------------------------------------------------------------------- parameters


def load_stress(path: str | Path) -> list[dict]:
    """A stress TOML as plain dicts: ``[{"name", "weight", "price_move", "vol_move"}]``."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return [
        {
            "name": t["name"],
            "weight": float(t.get("weight", 1.0)),
            "price_move": {k.upper(): float(v) for k, v in t["price_move"].items()},
            "vol_move": {k.upper(): float(v) for k, v in t.get("vol_move", {}).items()},
        }
        for t in data["scenario"]
    ]


def stress_move(table: dict, coin: str) -> float:
    return table.get(coin, table.get("*", 0.0))


def stress_cells(stress: list[dict], coin: str) -> list[dict]:
    """One cell per stress scenario for ``coin`` (deribit's cell layout; ``vol`` is the
    absolute vol shift as a float, so it cannot be mistaken for "up"/"same"/"down")."""
    return [
        {
            "m_opt": stress_move(s["price_move"], coin),
            "m_d1": stress_move(s["price_move"], coin),
            "vol": stress_move(s["vol_move"], coin),
            "w_opt": s["weight"],
            "w_d1": s["weight"],
            "ext": False,
            "name": s["name"],
        }
        for s in stress
    ]


def load_params(model: str) -> dict:
    """The shipped TOML parameter file of ``model`` ("deribit", "span" or "tims")."""
    with open(PARAMS_DIR / f"{model}.toml", "rb") as fh:
        return tomllib.load(fh)


def coin_params(params: dict, coin: str) -> dict:
    table = params["underlyings"]
    return table[coin] if coin in table else table["DEFAULT"]


# --------------------------------------------------------------------------- Black-76


def norm_cdf(x: float) -> float:
    # erfc keeps full relative precision in the lower tail (0.5*(1+erf) would cancel).
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black76(
    fwd: float, strike: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """Black-76 price (same currency as fwd/strike); T <= 0 or vol <= 0 -> intrinsic."""
    df = math.exp(-rate * max(tte_years, 0.0))
    if tte_years <= 0.0 or vol <= 0.0:
        if is_call:
            return df * max(fwd - strike, 0.0)
        return df * max(strike - fwd, 0.0)
    sd = vol * math.sqrt(tte_years)
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if is_call:
        return df * (fwd * norm_cdf(d1) - strike * norm_cdf(d2))
    return df * (strike * norm_cdf(-d2) - fwd * norm_cdf(-d1))


def black76_delta(
    fwd: float, strike: float, tte_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """dPrice/dForward, discounted: df N(d1) for calls, -df N(-d1) for puts."""
    df = math.exp(-rate * max(tte_years, 0.0))
    if tte_years <= 0.0 or vol <= 0.0:
        if is_call:
            return df if fwd > strike else 0.0
        return -df if fwd < strike else 0.0
    sd = vol * math.sqrt(tte_years)
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    if is_call:
        return df * norm_cdf(d1)
    return -df * norm_cdf(-d1)


# --------------------------------------------------------------------------- symbols


def parse_time(text: str) -> datetime:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


def parse_expiry(text: str) -> datetime:
    m = DATE_RE.match(text)
    if m is None:
        raise ValueError(f"bad expiry {text!r}")
    day, mon, yy = int(m.group(1)), MONTHS[m.group(2)], int(m.group(3))
    return datetime(2000 + yy, mon, day, 8, 0, 0, tzinfo=UTC)


def parse_symbol(symbol: str) -> dict:
    """Deribit grammar -> {kind, coin, linear, expiry, strike, is_call}."""
    parts = symbol.split("-")
    base = parts[0]
    if "_" in base:
        coin, quote = base.split("_", 1)
        if quote not in USD_LIKE:
            raise ValueError(f"bad quote currency in {symbol!r}")
        linear = True
    else:
        coin, linear = base, False
    inst = {"kind": "", "coin": coin, "linear": linear, "expiry": None, "strike": 0.0}
    inst["is_call"] = False
    if len(parts) == 1:
        if not linear:
            raise ValueError(f"spot symbol needs a quote currency: {symbol!r}")
        inst["kind"] = "spot"
    elif len(parts) == 2 and parts[1] == "PERPETUAL":
        inst["kind"] = "perp"
    elif len(parts) == 2:
        inst["kind"] = "future"
        inst["expiry"] = parse_expiry(parts[1])
    elif len(parts) == 4 and parts[3] in ("C", "P"):
        inst["kind"] = "option"
        inst["expiry"] = parse_expiry(parts[1])
        inst["strike"] = float(parts[2])
        inst["is_call"] = parts[3] == "C"
    else:
        raise ValueError(f"bad symbol {symbol!r}")
    return inst


# --------------------------------------------------------------------------- legs


def _build_legs(portfolio: dict, params: dict) -> tuple[dict, dict]:
    """Positions and collateral -> {pool: [leg, ...]} and {pool: cash}.

    A leg is a dict: kind (spot/perp/future/option/collateral), coin, linear, q, S, F,
    T (years, 0 for spot/perp/collateral), K, is_call, vol, rate, haircut.
    """
    now = parse_time(portfolio["valuation_time"])
    market = portfolio["market"]
    index = {k: float(v) for k, v in market["index"].items()}
    marks = {k: float(v) for k, v in market.get("marks", {}).items()}
    ivs = {k: float(v) for k, v in market.get("ivs", {}).items()}
    rate = float(market.get("rate", 0.0))
    segregated = portfolio.get("pool", "cross") == "segregated"

    # dated-future marks by (coin, linear, expiry) for option forwards
    future_marks: dict[tuple, float] = {}
    for sym, mark in marks.items():
        inst = parse_symbol(sym)
        if inst["kind"] == "future":
            key = (inst["coin"], inst["linear"], inst["expiry"])
            # USDC and USDT futures are both "linear"; the first one seen wins
            future_marks.setdefault(key, mark)

    legs: dict[str, list] = {}
    cash: dict[str, float] = {}

    def pool_of(coin: str, linear: bool) -> str:
        if not segregated or linear:
            return "USD"
        return coin

    for sym, qty in portfolio.get("positions", {}).items():
        inst = parse_symbol(sym)
        coin = inst["coin"]
        s = index[coin]
        leg = {
            "symbol": sym,
            "kind": inst["kind"],
            "coin": coin,
            "linear": inst["linear"] or inst["kind"] == "spot",
            "q": float(qty),
            "S": s,
            "F": s,
            "T": 0.0,
            "K": inst["strike"],
            "is_call": inst["is_call"],
            "vol": 0.0,
            "rate": rate,
            "haircut": 0.0,
        }
        if inst["expiry"] is not None:
            tte = (inst["expiry"] - now).total_seconds() / SECONDS_PER_YEAR
            if tte <= 0.0:
                raise ValueError(f"{sym}: expired")
            leg["T"] = tte
        if inst["kind"] == "perp":
            leg["F"] = marks.get(sym, s)
        elif inst["kind"] == "future":
            leg["F"] = marks[sym]
        elif inst["kind"] == "option":
            same = (coin, inst["linear"], inst["expiry"])
            other = (coin, not inst["linear"], inst["expiry"])
            if same in future_marks:
                leg["F"] = future_marks[same]
            elif other in future_marks:
                leg["F"] = future_marks[other]
            else:
                leg["F"] = s * math.exp(rate * leg["T"])
            leg["vol"] = ivs[sym]
        pool = pool_of(coin, leg["linear"])
        legs.setdefault(pool, []).append(leg)

    for ccy, amount in portfolio.get("collateral", {}).items():
        amount = float(amount)
        if ccy in USD_LIKE:
            legs.setdefault("USD", [])
            cash["USD"] = cash.get("USD", 0.0) + amount
            continue
        pool = "USD" if not segregated else ccy
        leg = {
            "symbol": ccy,
            "kind": "collateral",
            "coin": ccy,
            "linear": False,
            "q": amount,
            "S": index[ccy],
            "F": index[ccy],
            "T": 0.0,
            "K": 0.0,
            "is_call": False,
            "vol": 0.0,
            "rate": rate,
            "haircut": float(coin_params(params, ccy).get("collateral_haircut", 0.0)),
        }
        legs.setdefault(pool, []).append(leg)
    for pool in legs:
        cash.setdefault(pool, 0.0)
    return legs, cash


def unit_value_now(leg: dict, pool: str) -> float:
    kind = leg["kind"]
    if kind == "spot":
        return leg["S"]
    if kind in ("future", "perp"):
        return 0.0
    if kind == "collateral":
        if pool == "USD":
            return leg["S"] * (1.0 - leg["haircut"])
        return 1.0
    usd = black76(leg["F"], leg["K"], leg["T"], leg["vol"], leg["rate"], leg["is_call"])
    if leg["linear"]:
        return usd
    coin_value = usd / leg["F"]
    return coin_value * leg["S"] if pool == "USD" else coin_value


def unit_pnl(
    leg: dict,
    pool: str,
    move_opt: float,
    move_d1: float,
    vol_shocked: float,
    look_ahead_years: float,
) -> tuple[float, bool]:
    """Unweighted P&L of one unit long; second item True for options (option weight)."""
    kind = leg["kind"]
    s = leg["S"]
    if kind == "spot":
        return s * move_d1, False
    if kind == "collateral":
        if pool == "USD":
            return s * move_d1 * (1.0 - leg["haircut"]), False
        return 0.0, False
    if kind in ("future", "perp"):
        if leg["linear"]:
            return leg["F"] * move_d1, False
        coin_pnl = 1.0 - 1.0 / (1.0 + move_d1)
        if pool == "USD":
            return coin_pnl * s * (1.0 + move_d1), False
        return coin_pnl, False
    # option: full revaluation
    f, k, t, r, call = leg["F"], leg["K"], leg["T"], leg["rate"], leg["is_call"]
    f_s = f * (1.0 + move_opt)
    t_s = max(t - look_ahead_years, 0.0)
    usd_now = black76(f, k, t, leg["vol"], r, call)
    usd_s = black76(f_s, k, t_s, vol_shocked, r, call)
    if leg["linear"]:
        return usd_s - usd_now, True
    coin_now = usd_now / f
    coin_s = usd_s / f_s
    if pool == "USD":
        return coin_s * s * (1.0 + move_opt) - coin_now * s, True
    return coin_s - coin_now, True


def coin_delta(leg: dict, pool: str, conventions: dict) -> float:
    """Index-equivalent coin delta of one unit (deribit's delta shock)."""
    kind = leg["kind"]
    if kind == "spot":
        return 1.0
    if kind == "collateral":
        if pool != "USD" and not conventions["coin_pool_collateral_delta"]:
            return 0.0
        return 1.0 - leg["haircut"]
    if kind in ("future", "perp"):
        return leg["F"] / leg["S"] if leg["linear"] else 1.0
    d = black76_delta(leg["F"], leg["K"], leg["T"], leg["vol"], leg["rate"], leg["is_call"])
    if leg["linear"] or conventions["option_delta_fs"]:
        return d * leg["F"] / leg["S"]
    return d


def futures_equivalent_delta(leg: dict, pool: str, conventions: dict) -> float:
    """SPAN futures equivalents of one unit: options ``df N(d1)`` on their own forward
    (no F / S), futures and perpetuals 1 per coin whatever their expiry or settlement."""
    kind = leg["kind"]
    if kind in ("future", "perp"):
        return 1.0
    if kind == "option":
        return black76_delta(leg["F"], leg["K"], leg["T"], leg["vol"], leg["rate"], leg["is_call"])
    return coin_delta(leg, pool, conventions)  # spot and collateral: as for deribit


def _pool_coins(pool_legs: list) -> list[str]:
    coins: list[str] = []
    for leg in pool_legs:
        if leg["coin"] not in coins:
            coins.append(leg["coin"])
    return coins


def _equity(pool: str, pool_legs: list, cash: float) -> float:
    equity = cash
    for leg in pool_legs:
        equity += leg["q"] * unit_value_now(leg, pool)
    return equity


# --------------------------------------------------------------------------- deribit


def deribit_cells(params: dict, cp: dict) -> list[dict]:
    """Cells of one coin: 9 moves x (up, same, down), then the extended moves (vol up)."""
    n = int(params["price_steps"])
    pr = float(cp["price_range"])
    cells = []
    for i in range(n):
        move = -pr + i * (2.0 * pr / (n - 1))
        for vol in ("up", "same", "down"):
            cells.append(
                {"m_opt": move, "m_d1": move, "vol": vol, "w_opt": 1.0, "w_d1": 1.0, "ext": False}
            )
    for move in params["extended_moves"]:
        move = float(move)
        edge = pr if move > 0 else -pr
        w = float(cp["extended_table_factor"]) * pr / abs(move)
        cells.append(
            {"m_opt": move, "m_d1": edge, "vol": "up", "w_opt": w, "w_d1": 1.0, "ext": True}
        )
    return cells


def deribit_shocked_vol(params: dict, cp: dict, vol: float, tte_years: float, kind: str) -> float:
    if kind == "same":
        return vol
    dte = max(tte_years * 365.0, 1.0 / 1440.0)
    if dte < float(params["vega_power_switch_days"]):
        power = float(params["short_term_vega_power"])
    else:
        power = float(params["long_term_vega_power"])
    scale = (30.0 / dte) ** power
    if kind == "up":
        return max(
            vol * (1.0 + float(cp["vol_range_up"]) * scale), float(cp["min_vol_for_shock_up"])
        )
    return max(vol * (1.0 - float(cp["vol_range_down"]) * scale), 0.0)


def deribit_pool(
    pool: str, pool_legs: list, cash: float, params: dict, conventions: dict, stress: list
) -> dict:
    coins = _pool_coins(pool_legs)
    n_cells = int(params["price_steps"]) * 3 + len(params["extended_moves"]) + len(stress)
    agg = [0.0] * n_cells
    roll = 0.0
    delta_shock = 0.0
    per_coin = {}
    for coin in coins:
        cp = coin_params(params, coin)
        cells = deribit_cells(params, cp) + stress_cells(stress, coin)
        vec = [0.0] * n_cells
        for leg in pool_legs:
            if leg["coin"] != coin:
                continue
            for c, cell in enumerate(cells):
                vol_s = 0.0
                if leg["kind"] == "option" and isinstance(cell["vol"], float):
                    vol_s = max(leg["vol"] + cell["vol"], 0.0)
                elif leg["kind"] == "option":
                    vol_s = deribit_shocked_vol(params, cp, leg["vol"], leg["T"], cell["vol"])
                pnl, is_opt = unit_pnl(leg, pool, cell["m_opt"], cell["m_d1"], vol_s, 0.0)
                weight = cell["w_opt"] if is_opt else cell["w_d1"]
                vec[c] += leg["q"] * pnl * weight
        offset = float(cp["pnl_offset"])
        damp = float(cp.get("extended_dampener", 0.0))
        for c, cell in enumerate(cells):
            v = vec[c]
            g = v if v < 0.0 else offset * v
            if cell["ext"] and g < 0.0:
                g = min(g + damp, 0.0)
            agg[c] += g
        # roll shock: dated futures and perpetuals (T = 0)
        coin_roll = 0.0
        net_delta = 0.0
        price = pool_legs_price(pool_legs, coin, pool)
        for leg in pool_legs:
            if leg["coin"] != coin:
                continue
            if leg["kind"] in ("future", "perp"):
                per_unit = max(
                    float(cp["annualised_move_risk"]) * leg["T"], float(cp["min_annualised_move"])
                )
                coin_roll += abs(leg["q"]) * per_unit * (leg["S"] if pool == "USD" else 1.0)
            net_delta += leg["q"] * coin_delta(leg, pool, conventions)
        coin_shock = float(cp.get("delta_shock_rate", 0.0)) * abs(net_delta) * price
        roll += coin_roll
        delta_shock += coin_shock
        per_coin[coin] = {"vector": vec, "roll_shock": coin_roll, "delta_shock": coin_shock}
    worst = max(0.0, -min(agg)) if agg else 0.0
    worst_cell = agg.index(min(agg)) if agg and worst > 0.0 else 0
    im = worst + roll + delta_shock
    return {
        "equity": _equity(pool, pool_legs, cash),
        "initial_margin": im,
        "maintenance_margin": float(params["mm_factor"]) * im,
        "worst_case": worst,
        "worst_cell": worst_cell,
        "details": {
            "aggregate": agg,
            "roll_shock": roll,
            "delta_shock": delta_shock,
            "per_coin": per_coin,
        },
    }


def pool_legs_price(pool_legs: list, coin: str, pool: str) -> float:
    """Price of one coin in pool currency: S in the USD pool, 1 in a coin pool."""
    if pool != "USD":
        return 1.0
    for leg in pool_legs:
        if leg["coin"] == coin:
            return leg["S"]
    raise KeyError(coin)


# --------------------------------------------------------------------------- span


SPAN_CELLS = (  # (fraction of PSR, vol move, is_extreme); scenarios 1..16
    (0.0, "up", False),
    (0.0, "down", False),
    (1.0 / 3.0, "up", False),
    (1.0 / 3.0, "down", False),
    (-1.0 / 3.0, "up", False),
    (-1.0 / 3.0, "down", False),
    (2.0 / 3.0, "up", False),
    (2.0 / 3.0, "down", False),
    (-2.0 / 3.0, "up", False),
    (-2.0 / 3.0, "down", False),
    (1.0, "up", False),
    (1.0, "down", False),
    (-1.0, "up", False),
    (-1.0, "down", False),
    (None, "same", True),
    (None, "same", True),
)


def span_cells(params: dict, cp: dict) -> list[dict]:
    psr = float(cp["price_scan_range"])
    ext = float(params["extreme_multiple"]) * psr
    cover = float(params["cover_fraction"])
    cells = []
    n_ext = 0
    for frac, vol, extreme in SPAN_CELLS:
        if extreme:
            move = ext if n_ext == 0 else -ext
            n_ext += 1
            cells.append({"move": move, "vol": vol, "weight": cover})
        else:
            cells.append({"move": frac * psr, "vol": vol, "weight": 1.0})
    return cells


def span_shocked_vol(params: dict, cp: dict, vol: float, kind: str) -> float:
    if kind == "same":
        return vol
    vsr = float(cp["vol_scan_range"])
    floor = float(params["vol_floor"])
    return max(vol + vsr, floor) if kind == "up" else max(vol - vsr, floor)


def scan_risk(weighted_pnl: list[float]) -> float:
    """SPAN scan risk of a weighted scenario P&L vector: the largest loss, at least 0."""
    return max(0.0, max(-v for v in weighted_pnl))


def span_tier(leg: dict, boundaries: list[float]) -> int:
    if leg["kind"] not in ("future", "option"):
        return 0
    dte = leg["T"] * 365.0
    for i, b in enumerate(boundaries):
        if dte <= b:
            return i
    return len(boundaries)


def intra_spread_charge(tier_deltas: list[float], pairs: list[dict], price: float) -> float:
    d = list(tier_deltas)
    charge = 0.0
    for pair in pairs:
        a, b = (int(x) for x in pair["tiers"])
        if a >= len(d) or b >= len(d):
            continue
        if d[a] * d[b] < 0.0:
            m = min(abs(d[a]), abs(d[b]))
            charge += float(pair["rate"]) * m * price
            d[a] += -m if d[a] > 0 else m
            d[b] += -m if d[b] > 0 else m
    return charge


def paired_scenario(scenario: int) -> int:
    """SPAN scenario (1-16) with the same price move and the opposite vol move: 1 <-> 2,
    3 <-> 4, ..., 13 <-> 14; the extremes 15 and 16 leave vol unchanged and pair with
    themselves."""
    if scenario >= 15:
        return scenario
    return scenario + 1 if scenario % 2 == 1 else scenario - 1


def price_risk_split(weighted_pnl: list[float], net_delta: float, cap: float) -> dict:
    """CME's split of the scan risk and the weighted price risk per delta.

    Losses are -P&L. The worst scenario is the first with the largest loss. Time risk: the
    mean loss of scenarios 1 and 2 (price unchanged). Volatility risk: half of (worst loss -
    loss of its paired scenario). Price risk = scan - time - volatility, at least 0.
    Weighted price risk = price risk / |net delta|, at most ``cap`` (PSR x price); 0 without
    a delta. If no scenario loses, all four are 0.
    """
    losses = [-v for v in weighted_pnl]
    scan = scan_risk(weighted_pnl)
    split = {"time_risk": 0.0, "volatility_risk": 0.0, "price_risk": 0.0}
    split["weighted_price_risk"] = 0.0
    if scan <= 0.0:
        return split
    worst = losses.index(max(losses)) + 1  # scenario number, 1-based
    time_risk = 0.0 + (losses[0] + losses[1]) / 2.0  # 0.0 + turns -0.0 into 0.0
    vol_risk = (losses[worst - 1] - losses[paired_scenario(worst) - 1]) / 2.0
    price_risk = max(scan - time_risk - vol_risk, 0.0)
    split["time_risk"] = time_risk
    split["volatility_risk"] = vol_risk
    split["price_risk"] = price_risk
    if net_delta != 0.0:
        split["weighted_price_risk"] = min(price_risk / abs(net_delta), cap)
    return split


def _as_span_cells(cells: list[dict]) -> list[dict]:
    return [{"move": c["m_opt"], "vol": c["vol"], "weight": c["w_opt"]} for c in cells]


def span_pool(
    pool: str, pool_legs: list, cash: float, params: dict, conventions: dict, stress: list
) -> dict:
    coins = _pool_coins(pool_legs)
    look_ahead = float(params["look_ahead_days"]) / 365.0
    boundaries = [float(b) for b in params["tier_boundaries_days"]]
    pairs = params.get("intra_spread", [])
    window = float(params["delivery_window_days"])
    per_coin = {}
    for coin in coins:
        cp = coin_params(params, coin)
        cells = span_cells(params, cp) + _as_span_cells(stress_cells(stress, coin))
        vec = [0.0] * len(cells)
        for leg in pool_legs:
            if leg["coin"] != coin:
                continue
            for c, cell in enumerate(cells):
                vol_s = 0.0
                if leg["kind"] == "option" and isinstance(cell["vol"], float):
                    vol_s = max(leg["vol"] + cell["vol"], float(params["vol_floor"]))
                elif leg["kind"] == "option":
                    vol_s = span_shocked_vol(params, cp, leg["vol"], cell["vol"])
                pnl, _ = unit_pnl(leg, pool, cell["move"], cell["move"], vol_s, look_ahead)
                vec[c] += leg["q"] * pnl * cell["weight"]
        scan = scan_risk(vec)
        price = pool_legs_price(pool_legs, coin, pool)
        tier_deltas = [0.0] * (len(boundaries) + 1)
        delivery_delta = 0.0
        short_calls = 0.0
        short_puts = 0.0
        for leg in pool_legs:
            if leg["coin"] != coin:
                continue
            delta = leg["q"] * futures_equivalent_delta(leg, pool, conventions)
            tier_deltas[span_tier(leg, boundaries)] += delta
            if leg["kind"] in ("future", "option") and 0.0 < leg["T"] * 365.0 <= window:
                delivery_delta += delta
            if leg["kind"] == "option" and leg["q"] < 0.0:
                if leg["is_call"]:
                    short_calls += -leg["q"]
                else:
                    short_puts += -leg["q"]
        net_delta = sum(tier_deltas)
        cap = float(cp["price_scan_range"]) * price
        per_coin[coin] = {
            "vector": vec,
            "scan": scan,
            "intra_spread": intra_spread_charge(tier_deltas, pairs, price),
            "delivery": float(cp["delivery_rate"]) * abs(delivery_delta) * price,
            "short_option_minimum": (
                float(cp["short_option_minimum"]) * price * max(short_calls, short_puts)
            ),
            "tier_deltas": tier_deltas,
            "net_delta": net_delta,
            **price_risk_split(vec, net_delta, cap),
            "inter_credit": 0.0,
        }
    # inter-commodity credits, in the file's order, between coins of opposite net delta:
    # spreads = min(|delta_a| / ratio_a, |delta_b| / ratio_b); each leg is credited
    # rate x spreads x its ratio x its weighted price risk, at most its scan risk in all
    for credit in params.get("inter_credit", []):
        a, b = (str(x) for x in credit["legs"])
        if a not in per_coin or b not in per_coin:
            continue
        ra, rb = (float(x) for x in credit["delta_ratio"])
        da, db = per_coin[a]["net_delta"], per_coin[b]["net_delta"]
        if da * db >= 0.0:
            continue
        spreads = min(abs(da) / ra, abs(db) / rb)
        rate = float(credit["rate"])
        per_coin[a]["inter_credit"] += rate * spreads * ra * per_coin[a]["weighted_price_risk"]
        per_coin[b]["inter_credit"] += rate * spreads * rb * per_coin[b]["weighted_price_risk"]
    total_mm = 0.0
    total_scan = 0.0
    for coin in coins:
        d = per_coin[coin]
        d["inter_credit"] = min(d["inter_credit"], d["scan"])
        gross = d["scan"] + d["intra_spread"] + d["delivery"] - d["inter_credit"]
        d["risk"] = max(gross, d["short_option_minimum"])
        total_mm += d["risk"]
        total_scan += d["scan"]
    return {
        "equity": _equity(pool, pool_legs, cash),
        "initial_margin": float(params["im_ratio"]) * total_mm,
        "maintenance_margin": total_mm,
        "worst_case": total_scan,
        "details": {"per_coin": per_coin},
    }


# --------------------------------------------------------------------------- tims


def tims_cells(params: dict, cp: dict) -> list[dict]:
    n = int(params.get("points_per_side", 5))
    rng = float(cp["price_range"])
    vols = ("up", "down") if params.get("vol_shifts", True) else ("same",)
    fractions = [-k / n for k in range(n, 0, -1)] + [k / n for k in range(1, n + 1)]
    return [{"move": f * rng, "vol": v} for f in fractions for v in vols]


def tims_shocked_vol(params: dict, cp: dict, vol: float, kind: str) -> float:
    if kind == "same":
        return vol
    shift = float(cp["vol_shift"])
    floor = float(params["vol_floor"])
    return max(vol + shift, floor) if kind == "up" else max(vol - shift, floor)


def tims_pool(pool: str, pool_legs: list, cash: float, params: dict, stress: list) -> dict:
    coins = _pool_coins(pool_legs)
    look_ahead = float(params["look_ahead_days"]) / 365.0
    per_coin = {}
    for coin in coins:
        cp = coin_params(params, coin)
        cells = [{**c, "weight": 1.0} for c in tims_cells(params, cp)]
        cells += _as_span_cells(stress_cells(stress, coin))
        vec = [0.0] * len(cells)
        shorts = 0.0
        for leg in pool_legs:
            if leg["coin"] != coin:
                continue
            for c, cell in enumerate(cells):
                vol_s = 0.0
                if leg["kind"] == "option" and isinstance(cell["vol"], float):
                    vol_s = max(leg["vol"] + cell["vol"], float(params["vol_floor"]))
                elif leg["kind"] == "option":
                    vol_s = tims_shocked_vol(params, cp, leg["vol"], cell["vol"])
                pnl, _ = unit_pnl(leg, pool, cell["move"], cell["move"], vol_s, look_ahead)
                vec[c] += leg["q"] * pnl * cell["weight"]
            if leg["kind"] == "option" and leg["q"] < 0.0:
                shorts += -leg["q"]
        price = pool_legs_price(pool_legs, coin, pool)
        per_coin[coin] = {
            "vector": vec,
            "worst": scan_risk(vec),
            "short_option_minimum": float(cp["short_option_minimum"]) * price * shorts,
            "product_offset": 0.0,
        }
    for group in params.get("product_group", []):
        members = [c for c in group["coins"] if c in per_coin]
        if len(members) < 2:
            continue
        offset = float(group["offset"])
        classes = sum(per_coin[c]["worst"] for c in members)
        if classes <= 0.0:
            continue
        n_cells = len(per_coin[members[0]]["vector"])
        group_loss = 0.0
        for cell in range(n_cells):
            net = 0.0
            for c in members:
                v = per_coin[c]["vector"][cell]
                net += v if v < 0.0 else offset * v
            group_loss = max(group_loss, -net)
        credit = max(classes - min(group_loss, classes), 0.0)
        for c in members:
            per_coin[c]["product_offset"] = credit * per_coin[c]["worst"] / classes
    total_mm = 0.0
    total_worst = 0.0
    for coin in coins:
        d = per_coin[coin]
        d["risk"] = max(d["worst"] - d["product_offset"], d["short_option_minimum"])
        total_mm += d["risk"]
        total_worst += d["worst"]
    return {
        "equity": _equity(pool, pool_legs, cash),
        "initial_margin": float(params["im_ratio"]) * total_mm,
        "maintenance_margin": total_mm,
        "worst_case": total_worst,
        "details": {"per_coin": per_coin},
    }


# --------------------------------------------------------------------------- entry point


def naive_margin(
    portfolio: dict,
    model: str,
    params: dict | None = None,
    conventions: dict | None = None,
    stress: list[dict] | None = None,
) -> dict:
    """Portfolio margin of ``portfolio`` (riskgate's file format) under ``model``.

    Returns ``{"pools": {CCY: {"equity", "initial_margin", "maintenance_margin",
    "worst_case", "details"}}}`` in pool currency. ``params`` replaces the shipped TOML
    (same layout); ``conventions`` overrides ``DEFAULT_CONVENTIONS``. For ``span`` the
    ``worst_case`` is the sum of the per-coin scan risks. ``stress``: scenarios as
    :func:`load_stress` gives them, appended to every coin's cells.
    """
    stress = stress or []
    if params is None:
        params = load_params(model)
    conv = dict(DEFAULT_CONVENTIONS)
    if conventions:
        conv.update(conventions)
    legs, cash = _build_legs(portfolio, params)
    pools = {}
    for pool, pool_legs in legs.items():
        if model == "deribit":
            pools[pool] = deribit_pool(pool, pool_legs, cash[pool], params, conv, stress)
        elif model == "span":
            pools[pool] = span_pool(pool, pool_legs, cash[pool], params, conv, stress)
        elif model == "tims":
            pools[pool] = tims_pool(pool, pool_legs, cash[pool], params, stress)
        else:
            raise ValueError(f"unknown model {model!r}")
    return {"pools": pools}
