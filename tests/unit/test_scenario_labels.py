"""The worst scenario a decision names: in a deribit USD pool every coin moves in the cell
(each by its own range), in a coin pool or under span only the coin scanned."""

from __future__ import annotations

import pytest

from riskgate.config import Settings
from riskgate.engine.types import OrderRequest, OrderType, Side
from riskgate.server.app import build_engine


def _whatif(model: str, account: str, symbol: str, qty: float):
    engine = build_engine(Settings(model=model, demo_accounts=4))
    d = engine.whatif(OrderRequest(account, "", symbol, Side.BUY, qty, None, OrderType.MARKET))
    assert d.accepted or d.worst_scenario is not None, d
    return engine, d.worst_scenario


def test_deribit_cross_pool_names_every_coin() -> None:
    engine, s = _whatif("deribit", "demo-1", "ETH_USDC-PERPETUAL", 100.0)
    grids = {c: engine.model.grid(c) for c in ("BTC", "ETH")}
    assert [c for c, _ in s.price_moves] == ["BTC", "ETH"]
    for coin, move in s.price_moves:
        assert move == grids[coin].moves[s.index]
    assert dict(s.price_moves)[s.underlying] == s.price_move_fraction


def test_deribit_coin_pool_names_its_coin() -> None:
    _, s = _whatif("deribit", "demo-2", "ETH-PERPETUAL", 10.0)  # segregated: the ETH pool
    assert s.pool_currency == "ETH"
    assert s.price_moves == (("ETH", s.price_move_fraction),)


@pytest.mark.parametrize("account", ["demo-1", "demo-2"])
def test_span_names_the_coin_scanned(account: str) -> None:
    _, s = _whatif("span", account, "ETH-PERPETUAL", 10.0)
    assert s.price_moves == ((s.underlying, s.price_move_fraction),)
