"""What the browser soak (stress_lib/soak.py) reads about the processes under test from
``/proc``: the native hosts the browser started for a store, the runtime workers under
a host (its child processes running the session worker), and each one's resident
memory, threads and open descriptors. It owns nothing the host imports."""

from __future__ import annotations

import os
from pathlib import Path

WORKER_MODULE = b"webmodels.runtime.worker"


def _argv(pid: int) -> list[bytes]:
    try:
        return (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def host_pids(store: Path) -> list[int]:
    """Native hosts the browser started for `store` (its path is on their command line)."""
    return [
        pid
        for pid in _pids()
        if (argv := _argv(pid)) and b"serve" in argv and str(store).encode() in argv
    ]


def parent_of(pid: int) -> int:
    """The parent pid (0 when `pid` is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_pids(host: int) -> list[int]:
    """The runtime workers (session worker processes) that `host` started."""
    return [
        pid
        for pid in _pids()
        if parent_of(pid) == host and any(WORKER_MODULE in arg for arg in _argv(pid))
    ]


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def rss_of(pid: int) -> int:
    """Resident memory in bytes (`VmRSS`)."""
    return _status(pid, "VmRSS:") * 1024


def threads_of(pid: int) -> int:
    return _status(pid, "Threads:")


def fds_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
