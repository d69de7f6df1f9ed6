"""Removing files off the caller's path: a background thread unlinks what it is given.

Freeing a file's blocks costs a journal update (about 1 to 3 ms a file on ext4 here),
where renaming to a new name costs tens of microseconds. A segment that is already
held must cost its writer what a new one costs (timing must not tell a page whether
another site stored the same bytes), so the duplicate copy is renamed aside like a new
segment is renamed into place, and its removal happens here, after the caller moved
on. A file left behind by a process that died is a stale temp file, removed by the
next start like any other.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path

_QUEUE: queue.SimpleQueue[Path] = queue.SimpleQueue()
_STARTED = threading.Lock()
_thread: threading.Thread | None = None


def remove_later(path: Path) -> None:
    """Unlink ``path`` soon, on the reaper thread (started on first use)."""
    global _thread
    with _STARTED:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="segment-reaper", daemon=True)
            _thread.start()
    _QUEUE.put(path)


def drain() -> None:
    """Remove everything queued so far, on the calling thread (tests, shutdown)."""
    while True:
        try:
            path = _QUEUE.get_nowait()
        except queue.Empty:
            return
        _remove(path)


def _run() -> None:
    while True:
        _remove(_QUEUE.get())


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # gone already, or a failing disk: next start
        path.unlink()
