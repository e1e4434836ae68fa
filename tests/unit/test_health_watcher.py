"""The health watcher's sending discipline (riskgate.server.health._Watcher), driven by a
fake grpc send callback: one send in flight, offers made during a send go out after it,
a waiting status before a waiting end of stream, repeats skipped, nothing after the end."""

from __future__ import annotations

from riskgate.server.health import NOT_SERVING, SERVICE_UNKNOWN, SERVING, _Watcher


class Recorder:
    def __init__(self) -> None:
        self.sent: list[int | None] = []
        self.during_first = None  # called while the first message is being sent
        self.in_send = 0
        self.max_in_send = 0

    def __call__(self, message) -> None:
        self.in_send += 1
        self.max_in_send = max(self.max_in_send, self.in_send)
        self.sent.append(None if message is None else message.status)
        if len(self.sent) == 1 and self.during_first is not None:
            self.during_first()
        self.in_send -= 1


def test_status_and_end_offered_during_a_send_go_out_after_it_in_order() -> None:
    rec = Recorder()
    w = _Watcher(rec)

    def stop_while_sending() -> None:  # what a stop does while the first send is in flight
        w.offer(NOT_SERVING)
        w.drain()  # busy: returns, the sending thread sends it
        w.offer_end()
        w.drain()

    rec.during_first = stop_while_sending
    w.offer(SERVING)
    w.drain()
    assert rec.sent == [SERVING, NOT_SERVING, None]
    assert rec.max_in_send == 1  # never two sends at once


def test_latest_status_wins_repeats_are_skipped_nothing_after_the_end() -> None:
    rec = Recorder()
    w = _Watcher(rec)
    w.offer(SERVING)
    w.drain()
    w.offer(SERVING)  # a repeat
    w.drain()
    w.offer(NOT_SERVING)
    w.offer(SERVICE_UNKNOWN)  # coalesced: only the latest waiting status goes out
    w.drain()
    w.offer_end()
    w.offer(SERVING)  # after the end was asked for: ignored
    w.drain()
    w.offer(SERVING)
    w.drain()
    assert rec.sent == [SERVING, SERVICE_UNKNOWN, None]


def test_a_closed_call_gets_nothing() -> None:
    rec = Recorder()
    w = _Watcher(rec)
    w.offer(SERVING)
    w.closed()
    w.drain()
    w.offer_end()
    w.drain()
    assert rec.sent == []
