"""The controls' part of :class:`~riskgate.engine.engine.RiskEngine`: groups through the
admin API, the trading day, the automatic kill switch of the loss limits, alerts on the
status stream, and the message throttle per gateway principal.

What a control changes by itself (a loss limit tripping on a market move or a fill, the day
rolling over) is a committed event under :data:`SYSTEM_PRINCIPAL`, so the journal audits it
and replay reproduces it; apply only queues what it found (``book.controls``).

The message throttle counts each principal's orders on the engine's monotonic clock and is
deliberately not durable: a restart resets it, as it does a gateway's own rate limiter.
Velocity windows of accounts and groups are durable (replay rebuilds them from the
accepted orders' decision times).
"""

from __future__ import annotations

import contextlib
import queue
from typing import TYPE_CHECKING

from riskgate.domain.units import plain
from riskgate.engine.controls import admin as cadmin
from riskgate.engine.controls import track
from riskgate.engine.controls import views as cviews
from riskgate.engine.controls.model import BUCKETS, ControlLimits, RateWindow
from riskgate.engine.decide import Reject
from riskgate.engine.events import ACTOR, LossLimitTripped, TradingDayStarted
from riskgate.engine.types import MarginStatus, MarginStatusEvent, Reason, invalid, not_found

if TYPE_CHECKING:
    from riskgate.engine.engine import RiskEngine

SYSTEM_PRINCIPAL = "system:controls"
DAY_NS = 86_400 * 10**9


class ControlsPath:
    """Mixed into the engine (its locks, book and commit are the engine's)."""

    _throttle: dict[str, RateWindow]

    # ------------------------------------------------------------------ admin

    def upsert_group(
        self: RiskEngine, group_id: str, parent_id: str | None, limits: ControlLimits | None
    ) -> cviews.GroupView:
        self._market()
        # every account of the group may be affected: no decision is half-way meanwhile
        with self._decision_gate, self._accounts_lock:
            event = cadmin.group_event(self.book.controls, group_id, parent_id, limits)
            seq = self._commit(event)
        self._durable(seq)
        return self.group_view(group_id)

    def set_account_group(self: RiskEngine, account_id: str, group_id: str) -> cviews.ControlsView:
        self._market()
        acc = self._account(account_id)
        with self._decision_gate, acc.lock:
            self._bind(acc)
            event = cadmin.account_group_event(self.book.controls, account_id, group_id)
            seq = self._commit(event)
            view = cviews.account_controls_view(self.book, acc, self.wall_ns())
        self._durable(seq)
        return view or cviews.ControlsView((), 0.0, False, self.book.controls.day_start_ns, ())

    def group_view(self: RiskEngine, group_id: str) -> cviews.GroupView:
        if not group_id:
            raise invalid("group_id: missing")
        grp = self.book.controls.groups.get(group_id)
        if grp is None:
            raise not_found(f"group_id: unknown group {group_id!r}")
        with self._decision_gate:
            return cviews.group_view(self.book, grp, self.wall_ns())

    # ------------------------------------------------------------------ the trading day

    def roll_trading_day(self: RiskEngine, now_ns: int | None = None) -> bool:
        """Start the trading day if its roll time has passed (and any account has controls):
        every loss baseline becomes the equity now, tripped limits re-arm. True if it did."""
        cb = self.book.controls
        now = self.wall_ns() if now_ns is None else now_ns
        off = self.config.day_roll_offset_ns
        start = (now - off) // DAY_NS * DAY_NS + off
        if start <= cb.day_start_ns or not self._controlled():
            return False
        with self._decision_gate, self._accounts_lock:
            if start <= cb.day_start_ns:
                return False
            accounts = [a for a in self.accounts.values() if a.controls is not None]
            with contextlib.ExitStack() as held:
                for acc in accounts:
                    held.enter_context(acc.lock)
                token = ACTOR.set(SYSTEM_PRINCIPAL)
                try:
                    seq = self._commit(TradingDayStarted(start))
                finally:
                    ACTOR.reset(token)
                self._count_system_event()
        self._durable(seq)
        return True

    def _controlled(self: RiskEngine) -> bool:
        return bool(self.book.controls.groups) or any(
            a.controls is not None for a in self.accounts.values()
        )

    # ------------------------------------------------------------------ kill switch, alerts

    def _enforce_controls(self: RiskEngine) -> None:
        """Trip the loss limits apply found crossed, publish the alerts it queued. Called
        with no lock held (at the end of every call, with the status changes)."""
        cb = self.book.controls
        seq = 0
        if cb.loss_candidates:
            with self._decision_gate:
                cands = list(cb.loss_candidates)
                cb.loss_candidates.clear()
                for is_group, sid in cands:
                    seq = self._trip_if_crossed(is_group, sid) or seq
        alerts, cb.alerts = cb.alerts, []
        for aid, gid, name, limit, used, frac in alerts:
            self._publish_alert("CREDIT_WARNING", aid, gid, name, limit, used, frac)
        if seq:
            self._durable(seq)

    def _trip_if_crossed(self: RiskEngine, is_group: bool, sid: str) -> int:
        """With the gate held: commit LossLimitTripped if the limit is still crossed."""
        book = self.book
        if is_group:
            grp = book.controls.groups.get(sid)
            if grp is None or grp.tripped or grp.limits is None or grp.limits.max_loss_usd is None:
                return 0
            lim = grp.limits
            pnl = track.group_pnl_usd(book, grp)
            aid, gid = "", sid
        else:
            acc = book.accounts.get(sid)
            st = acc.controls if acc is not None else None
            if st is None or st.tripped or st.limits is None or st.limits.max_loss_usd is None:
                return 0
            lim = st.limits
            with acc.lock:  # type: ignore[union-attr]
                self._bind(acc)  # type: ignore[arg-type]
                pnl = track.day_pnl_usd(acc, st)  # type: ignore[arg-type]
            aid, gid = sid, ""
        limit = lim.max_loss_usd
        if not pnl < -limit:  # type: ignore[operator]
            return 0
        what = f"group {sid}" if is_group else "account"
        reason = f"loss limit: {what} lost {plain(-pnl)} USD today, limit {plain(limit)}"  # type: ignore[arg-type]
        token = ACTOR.set(SYSTEM_PRINCIPAL)
        try:
            seq = self._commit(
                LossLimitTripped(is_group, sid, lim.loss_action, pnl, limit, reason)  # type: ignore[arg-type]
            )
        finally:
            ACTOR.reset(token)
        self._count_system_event()
        self._publish_alert("LOSS_LIMIT_TRIPPED", aid, gid, "daily_loss", limit, -pnl, 0.0)  # type: ignore[arg-type]
        return seq

    def _count_system_event(self: RiskEngine) -> None:
        # what the service changed by itself (observers, e.g. the fuzzer, read it)
        self.counters["system_events"] = self.counters.get("system_events", 0) + 1

    def _publish_alert(
        self: RiskEngine,
        kind: str,
        aid: str,
        gid: str,
        name: str,
        limit: float,
        used: float,
        frac: float,
    ) -> None:
        acc = self.accounts.get(aid) if aid else None
        status = acc.status if acc is not None else MarginStatus.OK
        version = self.book.market.version if self.book.market is not None else 0
        event = MarginStatusEvent(
            aid, status, status, "", 0.0, 0.0, 0.0, self.wall_ns(), version,
            kind, gid, name, limit, used, frac,
        )  # fmt: skip
        with self._sub_lock:
            subs = list(self._subscribers)
        for q in subs:
            with contextlib.suppress(queue.Full):
                q.put_nowait(event)

    # ------------------------------------------------------------------ message throttle

    def _throttle_order(self: RiskEngine, now: int) -> None:
        """One more order from the calling principal at ``now`` (``clock_ns``); with the
        gate held."""
        principal = ACTOR.get()
        w = self._throttle.get(principal)
        if w is None:
            w = self._throttle[principal] = RateWindow(self.config.throttle_window_ns)
        k, last = now // w.width_ns, w.last
        n = w.count if k <= last else w.usage(now)[0]
        cap = self.config.throttle_max_orders
        if n >= cap:
            raise Reject(
                Reason.MESSAGE_THROTTLE,
                f"principal {principal or 'anonymous'!r}: more than {cap} orders per "
                f"{plain(self.config.throttle_window_ns / 1e9)} s",
                "principal", float(cap), float(n + 1),
                f"orders/{plain(self.config.throttle_window_ns / 1e9)}s", remember=False,
            )  # fmt: skip
        slot = last % BUCKETS
        if k == last and w.ids[slot] == last:
            w.counts[slot] += 1  # the newest bucket (the common case)
            w.count += 1
        else:
            w.add(now, 0)
