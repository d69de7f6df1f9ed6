"""The lowest CPU and I/O priority, for the background compile worker (issue 12).

A background compile must never take CPU or disk time from a page that runs its own
runtime: the worker that compiles asks the OS to schedule it only when nothing else
wants the machine. Linux: nice 19, ``SCHED_IDLE`` where permitted, and the idle I/O
class (``ioprio_set``, which the standard library does not wrap). Elsewhere: nice
where there is one; what cannot be set is logged and skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

LOWEST_NICE = 19
# linux/ioprio.h: the class sits above 13 bits of data; IOPRIO_WHO_PROCESS = 1.
IOPRIO_CLASS_IDLE = 3
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "arm64": 30, "i686": 289, "i386": 289}
_IOPRIO_GET = {"x86_64": 252, "aarch64": 31, "arm64": 31, "i686": 290, "i386": 290}


def lower_own_priority() -> list[str]:
    """Make this process the last in line for CPU and I/O; returns what was set."""
    done: list[str] = []
    if hasattr(os, "nice"):
        try:
            os.nice(LOWEST_NICE - os.nice(0))
            done.append("nice 19")
        except OSError as exc:
            log.info("cannot lower the CPU priority: %s", exc)
    sched_idle = getattr(os, "SCHED_IDLE", None)
    if sched_idle is not None and hasattr(os, "sched_setscheduler"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, sched_idle, os.sched_param(0))
            done.append("SCHED_IDLE")
    if _set_idle_io():
        done.append("idle I/O class")
    else:
        log.info("the idle I/O class is not available here; running at normal I/O priority")
    return done


def _syscall(numbers: dict[str, int]) -> tuple[ctypes.CDLL, int] | None:
    number = numbers.get(platform.machine().lower())
    if not sys.platform.startswith("linux") or number is None:
        return None
    try:
        return ctypes.CDLL(None, use_errno=True), number
    except OSError:
        return None


def _set_idle_io() -> bool:
    found = _syscall(_IOPRIO_SET)
    if found is None:
        return False
    libc, number = found
    value = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT
    return int(libc.syscall(number, IOPRIO_WHO_PROCESS, 0, value)) == 0


def io_class(pid: int = 0) -> int | None:
    """The I/O scheduling class of ``pid`` (0: this process); None where unknown."""
    found = _syscall(_IOPRIO_GET)
    if found is None:
        return None
    libc, number = found
    value = int(libc.syscall(number, IOPRIO_WHO_PROCESS, pid))
    return None if value < 0 else value >> IOPRIO_CLASS_SHIFT
