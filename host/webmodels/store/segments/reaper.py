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
from collections.abc import Callable
from pathlib import Path

_QUEUE: queue.SimpleQueue[Path | Callable[[], object]] = queue.SimpleQueue()
_STATE = threading.Condition()
_pending = 0  # queued or being removed
_thread: threading.Thread | None = None


def remove_later(path: Path) -> None:
    """Unlink ``path`` soon, on the reaper thread (started on first use)."""
    _queue(path)


def run_later(work: Callable[[], object]) -> None:
    """Call ``work`` soon, on the reaper thread (freeing a pack's range: packs.py);
    an OSError it raises is dropped, as a failed unlink is."""
    _queue(work)


def _queue(item: Path | Callable[[], object]) -> None:
    global _thread, _pending
    with _STATE:
        _pending += 1
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="segment-reaper", daemon=True)
            _thread.start()
    _QUEUE.put(item)


def drain(timeout_s: float = 60.0) -> bool:
    """Wait until everything queued so far is removed (tests, shutdown); False when
    that took longer than ``timeout_s``."""
    with _STATE:
        return _STATE.wait_for(lambda: _pending == 0, timeout_s)


def _run() -> None:
    global _pending
    while True:
        item = _QUEUE.get()
        with contextlib.suppress(Exception):  # gone already, a failing disk: next start
            if isinstance(item, Path):
                item.unlink()
            else:
                item()
        with _STATE:
            _pending -= 1
            _STATE.notify_all()
