"""``apply`` of the controls' events, and the account's control state as its limits and
collateral change. Registered in :data:`riskgate.engine.apply._HANDLERS`."""

from __future__ import annotations

from typing import Any

from riskgate.engine.book import Account, Book
from riskgate.engine.controls import track
from riskgate.engine.controls.model import AccountControls, Group
from riskgate.engine.events import (
    AccountGroupSet,
    AccountUpserted,
    GroupUpserted,
    LossLimitTripped,
    TradingDayStarted,
)
from riskgate.engine.types import TradingState


def ensure(book: Book, acc: Account) -> AccountControls:
    """The account's control state, created with today's baseline at its equity now."""
    st = acc.controls
    if st is None:
        st = acc.controls = AccountControls(acc.limits.controls, book.controls)
        assert acc.market is not None
        st.baseline_usd = track.equity_usd(acc, acc.market)
        track.recompute(book, acc)
    return st


def account_upserted(book: Book, acc: Account, ev: AccountUpserted, eq0: float | None) -> None:
    """After an upsert: new control limits take effect; a deposit or withdrawal moves the
    loss baseline with it (it is not P&L). ``eq0``: equity before the upsert."""
    lim = ev.limits.controls if ev.limits is not None else None
    st = acc.controls
    if st is None:
        if lim is not None:
            ensure(book, acc)
        return
    if ev.limits is not None:
        st.set_limits(lim)
        st.replan()
        track._alert(book.controls, st, acc.account_id)  # the flags follow the new limits
        track.recompute(book, acc)
        track.after_refresh(book, acc)
    if eq0 is not None and ev.collateral:
        assert acc.market is not None
        st.baseline_usd += track.equity_usd(acc, acc.market) - eq0


def _group_upserted(book: Book, ev: GroupUpserted, hint: Any) -> None:
    cb = book.controls
    grp = cb.groups.get(ev.group_id)
    if grp is None:
        parent = cb.groups[ev.parent_id] if ev.parent_id else None
        grp = cb.groups[ev.group_id] = Group(ev.group_id, parent, ev.limits)
        if parent is not None:
            parent.children.append(grp)
        return
    if ev.parent_id is not None:
        # only an empty group moves (checked when deciding): no chain of any account changes
        if grp.parent is not None:
            grp.parent.children.remove(grp)
        grp.parent = cb.groups[ev.parent_id] if ev.parent_id else None
        if grp.parent is not None:
            grp.parent.children.append(grp)
    if ev.limits is not None:
        grp.set_limits(ev.limits)
        for acc in track.group_accounts(book, grp):  # their plans hold the group's windows
            acc.controls.replan()  # type: ignore[union-attr]
            track.recompute(book, acc)  # credit usage, if the group's limits now need it
        track._alert(cb, grp, "")
        if ev.limits.max_loss_usd is not None and not grp.tripped:
            cb.loss_candidates[(True, grp.group_id)] = None


def _account_group_set(book: Book, ev: AccountGroupSet, hint: Any) -> None:
    from riskgate.engine.apply import bind

    acc = book.accounts[ev.account_id]
    if acc.controls is None and not ev.group_id:
        return  # out of a group it was never in
    bind(book, acc)
    st = ensure(book, acc)
    cb = book.controls
    if st.groups:
        track.move_exposure(cb, st, st.groups, -1)
        del st.groups[0].members[acc.account_id]
    chain = cb.groups[ev.group_id].chain() if ev.group_id else ()
    if chain:
        chain[0].members[acc.account_id] = None
        track.move_exposure(cb, st, chain, 1)
    st.groups = chain
    st.replan()
    track.recompute(book, acc)
    track.after_refresh(book, acc)


def _loss_limit_tripped(book: Book, ev: LossLimitTripped, hint: Any) -> None:
    if ev.group:
        grp = book.controls.groups[ev.scope_id]
        grp.tripped = True
        targets = track.group_accounts(book, grp)
    else:
        acc = book.accounts[ev.scope_id]
        acc.controls.tripped = True  # type: ignore[union-attr]
        targets = [acc]
    for acc in targets:
        if acc.trading_state is not TradingState.HALTED:  # never loosen a HALTED account
            acc.trading_state = ev.state
            acc.trading_state_reason = ev.reason


def _trading_day_started(book: Book, ev: TradingDayStarted, hint: Any) -> None:
    from riskgate.engine.apply import bind

    cb = book.controls
    cb.day_start_ns = ev.day_start_ns
    for acc in book.accounts.values():
        st = acc.controls
        if st is not None:
            bind(book, acc)
            assert acc.market is not None
            st.baseline_usd = track.equity_usd(acc, acc.market)
            st.tripped = False
    for grp in cb.groups.values():
        grp.tripped = False


HANDLERS = {
    GroupUpserted: _group_upserted,
    AccountGroupSet: _account_group_set,
    LossLimitTripped: _loss_limit_tripped,
    TradingDayStarted: _trading_day_started,
}
