"""CI smoke of the crash test: ``python -m loadtest.chaos`` with three kill -9s of a riskgate
serving from a data dir, under low-rate traffic. Nothing acknowledged may be lost, nothing
accepted twice. No timing is asserted.

Also checked without a server: the state check itself notices a lost working order, a lost
fill, an order nobody was told about, a changed collateral balance and a missing account,
and lets an order whose decision is unknown be either working or absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.chaos_model import AccountModel, OrderModel, OrderStep, compare
from riskgate.v1 import riskgate_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_three_kills_lose_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    cmd = [
        sys.executable, "-m", "loadtest.chaos", "--kills", "3", "--seconds", "3",
        "--rate", "100", "--seed", "7", "--data-dir", str(tmp_path / "data"), "--json", str(out),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TMPDIR": str(tmp_path),  # the server logs of a failed run stay with the test's files
    }
    # ~15 s with the numba cache warm; the time limit leaves room for a cold compile on a
    # loaded machine. The crash test's servers die with it (parent-death signal).
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        stdout, _ = proc.communicate(timeout=360)
    finally:
        if proc.poll() is None:  # SIGTERM first: the crash test then stops its server itself
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stdout
    report = json.loads(out.read_text())
    assert report["passed"] is True, stdout
    assert report["kills"]["total"] == 3
    assert report["lost"] == 0 and report["violations"] == 0, stdout
    assert report["acknowledged"]["total"] > 0
    assert report["acknowledged"]["decisions"].get("ACCEPTED", 0) > 0
    assert report["retries_of_acknowledged_orders"] > 0
    assert report["recovery_s"]["count"] + report["kills"]["startup"] == report["restarts"]
    assert report["data_dir"]["journal"]["last_seq"] > 0
    assert "PASSED" in stdout


def _order(coid: str, qty: float = 0.5) -> pb.Order:
    return pb.Order(
        account_id="a", client_order_id=coid, symbol="BTC-PERPETUAL", side=pb.SIDE_BUY,
        order_type=pb.ORDER_TYPE_LIMIT, quantity=qty, price=70_000.0,
    )  # fmt: skip


def _view(model: AccountModel, extra: list[pb.Order] = ()) -> pb.AccountView:
    view = pb.AccountView(account_id=model.account_id, trading_state=model.trading_state)
    view.collateral.update(model.collateral)
    for sym, q in model.positions.items():
        view.positions.add(symbol=sym, quantity=q)
    for o in [*(m.request for m in model.orders.values()), *extra]:
        m = model.orders.get(o.client_order_id)
        filled = m.filled if m else 0.0
        view.working_orders.add(
            client_order_id=o.client_order_id, symbol=o.symbol, side=o.side, quantity=o.quantity,
            filled_quantity=filled, working_quantity=o.quantity - filled,
            status=m.status if m else pb.ORDER_STATUS_PENDING_ACK,
        )  # fmt: skip
    return view


def test_state_check_finds_what_is_lost() -> None:
    model = AccountModel("a", {"USD": 1e6}, positions={"BTC-PERPETUAL": 0.25})
    model.orders["o1"] = OrderModel(_order("o1"), fillable=True)
    assert compare(_view(model), model) == []
    # the server lost a fill the client was told about
    filled = OrderStep("a", "o1", "fill", 0.125, 70_000.0, "o1-f1").after(model)
    diffs = compare(_view(model), filled)
    assert {d["what"] for d in diffs} == {"positions", "working order"}
    assert all(d["lost"] for d in diffs)
    # a cancelled order working again; a collateral change lost
    cancelled = OrderStep("a", "o1", "cancel").after(model)
    cancelled.collateral["USD"] = 2e6
    diffs = compare(_view(model), cancelled)
    assert {d["what"] for d in diffs} == {"ended order working again", "collateral"}
    # an acceptance nobody was told about is a violation; an unknown one may be either way
    view = _view(model, extra=[_order("o2")])
    assert [(d["what"], d["lost"]) for d in compare(view, model)] == [
        ("unexpected working order", False)
    ]
    assert compare(view, model, maybe={"o2": _order("o2")}) == []
    assert compare(_view(model), model, maybe={"o2": _order("o2")}) == []
    # an account the recovered server does not know
    assert [d["what"] for d in compare(None, model)] == ["account missing"]
