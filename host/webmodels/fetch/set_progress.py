"""One progress stream for a model of several files downloaded together.

Each file's download job reports its own (loaded, total) (fetch/progress.py throttles
each); this sums them over the model's files and sends one event per update: the
model's ``loaded`` and ``total`` (None while a file's size is unknown) and which file
moved (``file``: its path, loaded and total). At most ``per_second`` events a second,
plus the first and each file's last; an update held back is sent when due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from webmodels.fetch.progress import MAX_PER_SECOND

Send = Callable[[dict[str, Any]], None]
FileProgress = Callable[[int, int | None], None]


class SetProgress:
    def __init__(
        self,
        send: Send,
        sizes: Mapping[str, int | None],
        *,
        per_second: int = MAX_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._loaded = dict.fromkeys(sizes, 0)
        self._totals: dict[str, int | None] = dict(sizes)
        self._interval = 1.0 / per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._last_time: float | None = None
        self._pending: tuple[str, int, int | None] | None = None  # the update not yet sent
        self._timer: threading.Timer | None = None
        self._closed = False

    def for_file(self, path: str) -> FileProgress:
        """The progress callback of one file's download."""

        def update(loaded: int, total: int | None) -> None:
            self._update(path, loaded, total)

        return update

    def close(self) -> None:
        """The load ended (answered): nothing more is sent."""
        with self._lock:
            self._closed = True
            self._pending = None

    def _update(self, path: str, loaded: int, total: int | None) -> None:
        with self._lock:
            if self._closed:
                return
            self._loaded[path] = loaded
            if total is not None:
                self._totals[path] = total
            now = self._clock()
            file_done = total is not None and loaded >= total
            since = None if self._last_time is None else now - self._last_time
            if not file_done and since is not None and since < self._interval:
                # Not due: sent when it is, unless a newer update goes first (a file
                # that stalls now still shows what it got).
                self._pending = (path, loaded, total)
                if self._timer is None:
                    self._timer = threading.Timer(self._interval - since, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._emit(now, path, loaded, total)

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is not None and not self._closed:
                self._emit(self._clock(), *self._pending)

    def _emit(self, now: float, path: str, loaded: int, total: int | None) -> None:
        """Under the lock: events leave in the order of their sums."""
        self._last_time, self._pending = now, None
        self._send(self._event(path, loaded, total))

    def _event(self, path: str, loaded: int, total: int | None) -> dict[str, Any]:
        totals = list(self._totals.values())
        whole = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
        return {
            "loaded": sum(self._loaded.values()),
            "total": whole,
            "file": {"path": path, "loaded": loaded, "total": total},
        }
