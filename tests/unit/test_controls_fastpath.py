"""The controls' per-order fast paths against the straightforward computation.

``track.exposure_changed`` (run by apply for every accepted order, fill and release) skips
the roundings of a side that did not move; the reference rounds every side before and
after, as the incremental path always has (micro-USD per unit first, ``n x MICRO``, then
each usage: this can differ from :func:`track.contrib`'s ``(q x n) x MICRO`` by one
micro-USD, which is why it is the reference here and not ``contrib``), and the change must
reach the account and every enclosing group."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from riskgate.engine.controls import track
from riskgate.engine.controls.model import (
    MICRO,
    AccountControls,
    ControlBook,
    ControlLimits,
    Group,
)

SYM = "BTC_USDC-PERPETUAL"
qty = st.one_of(
    st.just(0.0),
    st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, -0.1, 1.0, 2.5, -3.0]),
)
working = st.one_of(st.just(0.0), st.floats(0.0, 1e4, allow_nan=False), st.sampled_from([0.1, 1.0]))
unit_usd = st.one_of(st.sampled_from([1.0, 70_007.0, 0.1]), st.floats(1e-3, 1e6))


def _account(n_usd: float, wb1: float, ws1: float) -> tuple[SimpleNamespace, AccountControls]:
    book = ControlBook()
    firm = Group("firm", None, ControlLimits(max_gross_usd=1e9, credit_warning_fraction=0.5))
    desk = Group("desk", firm, ControlLimits(max_net_usd=1e9))
    book.groups.update(firm=firm, desk=desk)
    ctl = AccountControls(ControlLimits(max_gross_usd=1e12, max_net_usd=1e12), book)
    ctl.groups = desk.chain()
    ctl.replan()
    acc = SimpleNamespace(
        account_id="a", controls=ctl, working_buy={SYM: wb1}, working_sell={SYM: ws1}
    )
    return acc, ctl


def _usage(q: float, wb: float, ws: float, n_usd: float) -> tuple[int, int, int]:
    n = n_usd * MICRO
    b, s = q + wb, q - ws
    return round(max(abs(b), abs(s)) * n), round(b * n), round(s * n)


@settings(max_examples=400, deadline=None)
@given(q0=qty, wb0=working, ws0=working, q1=qty, dwb=working, dws=working, n_usd=unit_usd,
       same=st.sampled_from(["none", "position", "buy", "sell", "both"]))  # fmt: skip
def test_exposure_delta_matches_contrib_difference(q0, wb0, ws0, q1, dwb, dws, n_usd, same):
    # orders move one side at a time: make sides equal before and after often
    if same in ("position", "both"):
        q1 = q0
    wb1 = wb0 if same in ("sell", "both") else wb0 + dwb
    ws1 = ws0 if same in ("buy", "both") else ws0 + dws
    acc, ctl = _account(n_usd, wb1, ws1)
    market = SimpleNamespace(units_usd={SYM: n_usd})
    track.exposure_changed(acc, market, q1, SYM, q0, wb0, ws0)  # type: ignore[arg-type]
    want = tuple(
        a - b for a, b in zip(_usage(q1, wb1, ws1, n_usd), _usage(q0, wb0, ws0, n_usd), strict=True)
    )
    for e in ctl.plan_exposures:  # the account, the desk and the firm
        assert (e.gross, e.net_buy, e.net_sell) == want
    assert len(ctl.plan_exposures) == 3
    # the firm warns at half its gross limit: its flag follows its usage
    firm = ctl.groups[1]
    if want[0] != 0:
        assert firm.alerted[0] == (firm.exposure.gross >= 0.5 * round(1e9 * 1e6))
