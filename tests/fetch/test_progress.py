"""Progress events per requester: the first, the last, and at most 20 a second."""

from __future__ import annotations

from webmodels.fetch.progress import ProgressThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_last_and_rate() -> None:
    clock, sent = Clock(), []
    throttle = ProgressThrottle(lambda loaded, total: sent.append(loaded), clock=clock)
    for loaded in range(1, 1001):  # 1000 chunks in one simulated second
        throttle.update(loaded, 1000)
        clock.now += 0.001
    assert sent[0] == 1 and sent[-1] == 1000
    assert len(sent) <= 20 + 2


def test_last_is_sent_even_right_after_another() -> None:
    clock, sent = Clock(), []
    throttle = ProgressThrottle(lambda loaded, total: sent.append(loaded), clock=clock)
    throttle.update(10, 20)
    throttle.update(20, 20)  # same instant: still sent, it is the last
    assert sent == [10, 20]
    throttle.update(20, 20)
    throttle.finish(20)
    assert sent == [10, 20]  # never twice


def test_unknown_total_is_rate_limited_and_finish_sends_the_end() -> None:
    clock, sent = Clock(), []
    throttle = ProgressThrottle(lambda loaded, total: sent.append((loaded, total)), clock=clock)
    for loaded in range(1, 100):
        throttle.update(loaded, None)
    throttle.finish(100)
    assert sent == [(1, None), (100, 100)]
