"""The runtime worker's process set-up: its memory limit and its end with the host's.

Kept apart from the worker's operations (runtime/worker.py) so that file holds what
the worker does with models, and this one what the process is allowed to be."""

from __future__ import annotations

import os
import sys
import threading
import time


def limit_memory(limit: int | None) -> None:
    if not limit or sys.platform == "win32":
        return
    import resource

    kind = getattr(resource, "RLIMIT_DATA", None) or resource.RLIMIT_AS
    resource.setrlimit(kind, (limit, limit))


def die_with_parent(parent_pid: int) -> None:
    """End this process when the host goes away, even if the host was killed and a
    call is still running. (Linux's PR_SET_PDEATHSIG would fire when the host *thread*
    that started the worker ends, which is too early for a thread-pooled host.)"""
    if not parent_pid:
        return

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
