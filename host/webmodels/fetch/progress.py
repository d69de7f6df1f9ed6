"""Progress events for one requester: at most 20 a second, plus the first and the last."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_PER_SECOND = 20


class ProgressThrottle:
    def __init__(
        self,
        send: Callable[[int, int | None], None],
        *,
        per_second: int = MAX_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._interval = 1.0 / per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._last_time: float | None = None
        self._last_loaded: int | None = None
        self._finished = False

    def update(self, loaded: int, total: int | None) -> None:
        """Forward if it is the first, the last (loaded == total), or due."""
        with self._lock:
            if self._finished or loaded == self._last_loaded:
                return
            now = self._clock()
            last = total is not None and loaded >= total
            due = self._last_time is None or now - self._last_time >= self._interval
            if not (last or due):
                return
            self._last_time, self._last_loaded = now, loaded
            self._finished = last
        self._send(loaded, total)

    def finish(self, total: int) -> None:
        """The transfer is complete: make sure the last event went out."""
        self.update(total, total)
