"""This process's requesters of each download job: who waits, where progress goes, and
when the job's model was published here.

A requester is added here before the index row that makes it one is committed, and
taken out only to be answered (fetch/settle.py) or cancelled, so a job never ends
with a requester nobody answers (PRIVACY.md, hole 12). `lock` also guards the job
manager's table of job threads: a thread that finds nobody waiting forgets itself
under the lock a new requester takes (`JobManager._leave_if_unwanted`).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from webmodels.fetch.progress import ProgressThrottle
from webmodels.store.records import ModelRecord


@dataclass(slots=True)
class Waiter:
    future: Future[ModelRecord]
    throttle: ProgressThrottle | None
    partition: str | None


@dataclass(frozen=True, slots=True)
class Taken:
    """A requester taken out to be cancelled, and the job it waited for."""

    job_id: str
    waiter: Waiter


@dataclass(slots=True)
class Ended:
    """Everything this process kept for a job that ended: its requesters by name, and
    when it was published here (monotonic; None when published elsewhere or failed)."""

    waiters: dict[str, Waiter] = field(default_factory=dict)
    published_at: float | None = None


class Waiters:
    def __init__(self) -> None:
        # Re-entrant: the manager holds it around `waiting` and `add` (see above).
        self.lock = threading.RLock()
        self._by_job: dict[str, dict[str, Waiter]] = {}
        self._published_at: dict[str, float] = {}  # job id -> monotonic start of publish

    def add(self, job_id: str, name: str, waiter: Waiter) -> None:
        with self.lock:
            self._by_job.setdefault(job_id, {})[name] = waiter

    def forget(self, name: str, waiter: Waiter) -> None:
        """Drop `waiter` again (the transaction that recorded it failed)."""
        with self.lock:
            for waiters in self._by_job.values():
                if waiters.get(name) is waiter:
                    del waiters[name]

    def take(self, name: str, partition: str | None) -> Taken | None:
        """Take out the requester `name`, only for its own partition (None: any)."""
        with self.lock:
            for job_id, waiters in self._by_job.items():
                found = waiters.get(name)
                if found is not None and (partition is None or found.partition == partition):
                    return Taken(job_id, waiters.pop(name))
        return None

    def waiting(self, job_id: str) -> bool:
        with self.lock:
            return bool(self._by_job.get(job_id))

    def forward(self, job_id: str, loaded: int, total: int | None) -> None:
        """Progress of the job to each of its requesters (throttled per requester)."""
        with self.lock:
            throttles = [w.throttle for w in self._by_job.get(job_id, {}).values() if w.throttle]
        for throttle in throttles:
            throttle.update(loaded, total)

    def published(self, job_id: str) -> None:
        """The job's model is being published here: its answers keep the settle floor."""
        with self.lock:
            self._published_at[job_id] = time.monotonic()

    def end(self, job_id: str) -> Ended:
        """Take out everything kept for the job, to answer its requesters."""
        with self.lock:
            return Ended(self._by_job.pop(job_id, {}), self._published_at.pop(job_id, None))

    def take_all(self, job_id: str) -> dict[str, Waiter]:
        """Take out the job's requesters (to fail them: its thread failed)."""
        with self.lock:
            return self._by_job.pop(job_id, {})
