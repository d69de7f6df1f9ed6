"""Download jobs: owned by the host, not by the request; shared between processes.

A job is a row in the index: one active job per SHA-256 and *scope*. The scope is ""
for trusted callers and common models (shared by everyone) and the requester's
partition key otherwise, so a site never joins another site's transfer: it neither
learns that the other is downloading nor gets bytes from URLs it could not reach
(PRIVACY.md, hole 1). Every requester is a row in ``job_waiters``. Whichever process
holds the job's lease runs the transfer and keeps the lease alive with a heartbeat
that also publishes progress; the others follow the row and forward progress to their
own requesters. A process that dies leaves its lease to expire; any other process (or
the next host to start) takes the job over and resumes from the job's partial file.

This module owns the manager: its life cycle, its requesters (request, join, cancel,
list) and one thread per job that runs it or follows whoever does. Running a job (the
lease, the heartbeat, the transfer and publishing with proof, hole 10) is
fetch/runner.py; this process's requesters are fetch/waiters.py, and answering them
(exactly once, hole 12; the settle floor) is fetch/settle.py.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.progress import ProgressThrottle
from webmodels.fetch.records import DownloadRequest, JobOptions, JobRow
from webmodels.fetch.runner import JobRunner, owner_gone
from webmodels.fetch.settle import cancelling, fail_all, settle
from webmodels.fetch.transfer import new_session
from webmodels.fetch.waiters import Waiter, Waiters
from webmodels.paging import Key
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

if TYPE_CHECKING:
    import requests

JobEntry = tuple[Key, dict[str, Any]]

log = logging.getLogger(__name__)

OnProgress = Callable[[int, int | None], None]


class JobManager:
    def __init__(
        self,
        store: Store,
        options: JobOptions | None = None,
        *,
        session_factory: Callable[[], requests.Session] = new_session,
        on_done: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        # Called after a job this process followed ended done (the host: models of
        # several files pulled in the background whose last file it finished).
        self.on_done = on_done
        self.options = options or JobOptions()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.waiters = Waiters()
        self._lock = self.waiters.lock  # one lock: requesters and job threads
        self._threads: dict[str, threading.Thread] = {}
        self._slots = threading.BoundedSemaphore(self.options.max_transfers)
        self._closed = threading.Event()
        self._janitor: threading.Thread | None = None
        self.runner = JobRunner(
            store,
            self.options,
            owner=self.owner,
            session_factory=session_factory,
            waiters=self.waiters,
            closed=self._closed,
        )

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> JobManager:
        """Forget old finished jobs, take over orphaned ones, and keep doing the latter."""
        cutoff = time.time() - self.options.keep_finished_s
        with self.store.index.write() as db:
            db.execute("DELETE FROM jobs WHERE state != 'active' AND updated_at < ?", (cutoff,))
        self.resume_orphans()
        self._janitor = threading.Thread(
            target=self._janitor_loop, name="jobs-janitor", daemon=True
        )
        self._janitor.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop transfers here (they resume elsewhere or at the next start)."""
        self._closed.set()
        deadline = time.monotonic() + timeout_s
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _janitor_loop(self) -> None:
        while not self._closed.wait(self.options.lease_s / 2):
            try:
                self.resume_orphans()
            except Exception:
                log.exception("janitor")

    def running(self) -> bool:
        """Whether this process has a job thread alive (running or following)."""
        with self._lock:
            return any(t.is_alive() for t in self._threads.values())

    def resume_orphans(self) -> list[str]:
        """Start a thread for every active job whose runner is gone (lease expired, or
        its process on this machine no longer exists); returns their ids."""
        rows = self.store.index.query(
            "SELECT id, lease_owner, lease_expires FROM jobs WHERE state = 'active'"
        )
        now = time.time()
        orphans = [
            r["id"]
            for r in rows
            if r["lease_owner"] is None
            or r["lease_expires"] < now
            or (r["lease_owner"] != self.owner and owner_gone(r["lease_owner"]))
        ]
        for job_id in orphans:
            self._ensure_thread(job_id)
        return orphans

    # -- requesters -------------------------------------------------------------------------

    def request(
        self, req: DownloadRequest, on_progress: OnProgress | None = None
    ) -> tuple[str, Future[ModelRecord]]:
        """Join (or start) the job for `req.digest`; the future gets the stored model."""
        if self._closed.is_set():
            raise HostError("busy", "the host is shutting down")
        future: Future[ModelRecord] = Future()
        throttle = ProgressThrottle(on_progress) if on_progress else None
        job_id = self._join(req, Waiter(future, throttle, req.partition))
        self._ensure_thread(job_id)
        return job_id, future

    def cancel(self, waiter: str, *, partition: str | None = None) -> bool:
        """Drop one requester; the transfer stops when no requester is left (unless it is
        a background prefetch). Only the requester's own partition may cancel it."""
        taken = self.waiters.take(waiter, partition)
        if taken is None:
            return False
        with cancelling(taken.waiter.future), self.store.index.write() as db:
            stopped = _drop_requester(db, taken.job_id, self._key(waiter))
        if stopped:  # a transfer run here stops now; elsewhere at its next heartbeat
            self.runner.stop(taken.job_id)
        return True

    def downloading(self, digest: Digest, partition: str | None) -> bool:
        """Whether an active job for `digest` has a requester in `partition`."""
        rows = self.store.index.query(
            "SELECT 1 FROM jobs j JOIN job_waiters w ON w.job_id = j.id "
            "WHERE j.sha256 = ? AND j.state = 'active' AND w.partition IS ?",
            (digest.hex, partition),
        )
        return bool(rows)

    def list_jobs(self) -> list[dict[str, Any]]:
        return [job for _, job in self.job_page()]

    def job_page(self, *, before: Key | None = None, count: int = -1) -> list[JobEntry]:
        """Up to `count` jobs, newest first, after the (created_at, id) key `before`:
        a keyset scan of the ``jobs_by_creation`` index (manage.jobs pages)."""
        where, args = ("WHERE (j.created_at, j.id) < (?, ?)", before) if before else ("", ())
        rows = self.store.index.query(
            "SELECT j.*, (SELECT COUNT(*) FROM job_waiters w WHERE w.job_id = j.id) AS n "
            f"FROM jobs j {where} ORDER BY j.created_at DESC, j.id DESC LIMIT ?",
            (*args, count),
        )
        return [((r["created_at"], r["id"]), _shown(JobRow.from_row(r), r["n"])) for r in rows]

    def _key(self, waiter: str) -> str:
        return f"{self.owner}/{waiter}"

    def join(self, req: DownloadRequest) -> str:
        """Record the job (or join the active one) with `req` as a requester; its id."""
        return self._join(req)

    def _join(self, req: DownloadRequest, waiter: Waiter | None = None) -> str:
        """`waiter` is registered in memory before the row that makes it a requester is
        committed: the job cannot end unanswered in between (it ends by a write)."""
        now = time.time()
        with self._dropped_on_failure(req, waiter), self.store.index.write() as db:
            job_id = _widen_job(db, req) or _insert_job(db, req, now)
            if req.waiter:  # a background prefetch may have nobody waiting for it
                db.execute(
                    "INSERT OR REPLACE INTO job_waiters (job_id, waiter, partition, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (job_id, self._key(req.waiter), req.partition, now),
                )
            if waiter is not None:  # before the commit that makes it a requester
                self.waiters.add(job_id, req.waiter, waiter)
        return job_id

    @contextmanager
    def _dropped_on_failure(self, req: DownloadRequest, waiter: Waiter | None) -> Iterator[None]:
        """Forget `waiter` again when the transaction that records it fails."""
        try:
            yield
        except BaseException:
            if waiter is not None:
                self.waiters.forget(req.waiter, waiter)
            raise

    # -- the per-job thread: run the transfer, or follow whoever does -------------------------

    def _ensure_thread(self, job_id: str) -> None:
        with self._lock:
            thread = self._threads.get(job_id)
            if thread is not None and thread.is_alive():
                return
            thread = threading.Thread(
                target=self._follow, args=(job_id,), name=f"job-{job_id[:8]}", daemon=True
            )
            self._threads[job_id] = thread
        thread.start()

    def _follow(self, job_id: str) -> None:
        try:
            while not self._closed.is_set():
                job = self.runner.row(job_id)
                if job is None or job.state != "active":
                    self._settle(job_id, job)
                    self._after(job)
                    return
                if self._slots.acquire(blocking=False):
                    try:
                        if self.runner.acquire(job_id) and self.runner.run(job):
                            continue
                    finally:
                        self._slots.release()
                self.waiters.forward(job_id, job.loaded, job.total)
                if self._leave_if_unwanted(job_id):
                    return  # another process runs it and nobody here waits
                self._closed.wait(self.options.poll_s)
        except Exception:
            # The text may hold paths (the user name): it goes to the log only. The job
            # ends as failed, or every host would take it over and fail again forever.
            log.exception("job %s", job_id)
            self.runner.fail(job_id)
            fail_all(self.waiters.take_all(job_id), HostError("internal", "the download failed"))
        finally:
            with self._lock:
                if self._threads.get(job_id) is threading.current_thread():
                    del self._threads[job_id]

    def _settle(self, job_id: str, job: JobRow | None) -> None:
        """Answer this process's requesters of the ended job (fetch/settle.py)."""
        ended = self.waiters.end(job_id)
        settle(self.store, job_id, job, ended, floor_s=self.options.settle_floor_s)

    def _after(self, job: JobRow | None) -> None:
        if job is None or job.state != "done" or self.on_done is None:
            return
        try:
            self.on_done()
        except Exception:  # a side effect: the job itself is done
            log.exception("after job %s", job.id)

    def _leave_if_unwanted(self, job_id: str) -> bool:
        """Whether nobody here waits for the job; then this thread is forgotten at once
        (under the lock a new requester takes, so it starts a new thread, not none)."""
        with self._lock:
            if self.waiters.waiting(job_id):
                return False
            if self._threads.get(job_id) is threading.current_thread():
                del self._threads[job_id]
            return True


def _widen_job(db: sqlite3.Connection, req: DownloadRequest) -> str | None:
    """Add `req` to the active job of its bytes and scope; its id (None: there is none)."""
    row = db.execute(
        "SELECT id, urls, origin FROM jobs WHERE sha256 = ? AND scope = ? AND state = 'active'",
        (req.digest.hex, req.scope),
    ).fetchone()
    if row is None:
        return None
    urls = json.loads(row["urls"])
    # More mirrors, only under the same limits: a page's URLs never join
    # an unlimited job, nor catalog URLs a page-limited one.
    if req.origin == row["origin"]:
        urls += [u for u in req.urls if u not in urls]
    db.execute(
        "UPDATE jobs SET urls = ?, background = MAX(background, ?), "
        # A requester with a user gesture lifts the limit for its scope.
        "size_limit = CASE WHEN ? IS NULL THEN NULL ELSE size_limit END, "
        # ... and the most room any requester has is what the download may use.
        "quota_left = CASE WHEN ? IS NULL OR quota_left IS NULL THEN NULL "
        "ELSE MAX(quota_left, ?) END "
        "WHERE id = ?",
        (
            json.dumps(urls),
            int(req.background),
            req.size_limit,
            req.quota_left,
            req.quota_left,
            row["id"],
        ),
    )
    return str(row["id"])


def _insert_job(db: sqlite3.Connection, req: DownloadRequest, now: float) -> str:
    """Record a new active job for `req`; its id."""
    job_id = uuid.uuid4().hex
    db.execute(
        "INSERT INTO jobs (id, sha256, urls, size, state, background, "
        "created_at, updated_at, size_limit, quota_left, origin, scope) "
        "VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?)",
        (
            job_id,
            req.digest.hex,
            json.dumps(list(req.urls)),
            req.size,
            int(req.background),
            now,
            now,
            req.size_limit,
            req.quota_left,
            req.origin,
            req.scope,
        ),
    )
    return job_id


def _drop_requester(db: sqlite3.Connection, job_id: str, key: str) -> bool:
    """Remove one requester's row; whether that cancelled the job (nobody was left
    and it is no background prefetch)."""
    db.execute("DELETE FROM job_waiters WHERE job_id = ? AND waiter = ?", (job_id, key))
    left = db.execute("SELECT COUNT(*) FROM job_waiters WHERE job_id = ?", (job_id,))
    return bool(
        left.fetchone()[0] == 0
        and db.execute(
            "UPDATE jobs SET state = 'cancelled', updated_at = ? "
            "WHERE id = ? AND state = 'active' AND background = 0",
            (time.time(), job_id),
        ).rowcount
        == 1
    )


def _shown(job: JobRow, waiters: int) -> dict[str, Any]:
    """A job as `webmodels jobs` and the popup list it: a lease whose process is gone
    (killed, say with SIGKILL) is no running download but an interrupted one, which
    the next host or `webmodels` run that downloads resumes."""
    info = job.to_json(waiters=waiters)
    stale = job.lease_owner is not None and (not info["running"] or owner_gone(job.lease_owner))
    interrupted = job.state == "active" and stale
    return {**info, "running": info["running"] and not interrupted, "interrupted": interrupted}
