"""An accepted order's reply waits for the journal while another call commits.

Found by the crash test (``python -m loadtest.chaos --fsync always``): a CheckOrder was
answered INTERNAL_ERROR ("JournalError: wait for seq 601: the last seq written is 600;
nothing reserved"), yet the order had been accepted and reserved, was journaled, and was
working after the restart; a retry of its client order id returned the acceptance.

The decision path waits for the engine's latest seq, read without the commit lock. Another
thread's commit (here an UpsertAccount on another account) publishes its seq before its
event reaches the journal, so the wait can ask for an event that is not written yet, and
the journal refuses. Reproduced here by holding the other commit at that point: the
engine's wall clock, read between the two steps, blocks on that thread. The reply now waits
for the commit lock when the seq it waits for may not be written yet.
"""

from __future__ import annotations

import threading
from pathlib import Path

from riskgate.config import load_settings
from riskgate.demo import demo_market
from riskgate.engine.journal.file import JournalError
from riskgate.engine.types import Decision, OrderRequest, OrderStatus, Side
from riskgate.server.app import create_engine
from riskgate.server.durability import Durability


class _Gate:
    """The decision gate, with a hook run right after each release."""

    def __init__(self, lock: threading.Lock, after_release) -> None:
        self.lock, self.after_release = lock, after_release

    def acquire(self, *args, **kwargs) -> bool:
        return self.lock.acquire(*args, **kwargs)

    def release(self) -> None:
        self.lock.release()
        self.after_release()

    def __enter__(self) -> bool:
        return self.lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)


def test_accept_waits_for_the_journal_while_another_commit_is_half_way(tmp_path: Path) -> None:
    settings = load_settings(
        env={}, data_dir=str(tmp_path), demo=False, journal_fsync="always",
        decision_budget_us=10_000_000,  # the first decision of a process loads the kernels
    )  # fmt: skip
    engine = create_engine(settings)
    durability = Durability(settings, engine)
    durability.recover()
    market = demo_market(strikes_per_expiry=3, n_months=1, n_quarters=1)
    engine.load_snapshot(market.snapshot)
    for aid in ("a", "b"):
        engine.upsert_account(aid, collateral={"USD": 1e6})
    journal = durability.store.journal

    in_commit, resume = threading.Event(), threading.Event()
    wall_ns = engine.wall_ns

    def clock() -> int:
        if threading.current_thread().name == "other-writer" and not in_commit.is_set():
            in_commit.set()  # its seq is taken, its event not yet written
            resume.wait(10.0)
        return wall_ns()

    other = threading.Thread(
        target=engine.upsert_account, args=("b",), kwargs={"collateral": {"USD": 2e6}},
        name="other-writer",
    )  # fmt: skip
    window: list[tuple[int, int]] = []

    def start_other_commit() -> None:
        if other.ident is None:
            other.start()
            assert in_commit.wait(10.0)
            window.append((engine.seq, journal.last_seq))
            threading.Timer(0.2, resume.set).start()  # the other commit ends soon after

    engine.wall_ns = clock
    engine._decision_gate = _Gate(engine._decision_gate, start_other_commit)  # type: ignore[assignment]
    order = OrderRequest("a", "o-1", "BTC-PERPETUAL", Side.BUY, 0.1, 70_000.0)
    try:
        decision: object = engine.check_order(order)
    except JournalError as exc:
        decision = exc
    finally:
        resume.set()
        other.join(10.0)
        durability.close()
    seq, written = window[0]
    assert seq == written + 1  # the race window was open when the reply waited
    assert engine.accounts["a"].orders["o-1"].status == OrderStatus.PENDING_ACK  # reserved
    assert isinstance(decision, Decision) and decision.accepted, decision
