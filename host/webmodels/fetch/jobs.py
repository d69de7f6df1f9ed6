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

Two runners of one job must never write one file (hole 10): the runner holds a lock
on the partial file (fetch/partial.py), a transfer stops as soon as its heartbeat
fails, the lease outlives the index's busy timeout, and the file itself is hashed
again before it is published.

Every requester gets exactly one answer (hole 12): it is registered here before its
row is committed, and any failure while settling answers it with an error.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.access import PageAccess
from webmodels.fetch.partial import PartialBusy, PartialLock, partial_path
from webmodels.fetch.progress import ProgressThrottle
from webmodels.fetch.records import DownloadRequest, JobOptions, JobRow
from webmodels.fetch.transfer import Cancelled, Transfer, new_session
from webmodels.store.blobs import process_alive
from webmodels.store.metadata import describe_file
from webmodels.store.quotas import check_total_quota
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

log = logging.getLogger(__name__)

OnProgress = Callable[[int, int | None], None]


@dataclass(slots=True)
class _Waiter:
    future: Future[ModelRecord]
    throttle: ProgressThrottle | None
    partition: str | None


class JobManager:
    def __init__(
        self,
        store: Store,
        options: JobOptions | None = None,
        *,
        session_factory: Callable[[], requests.Session] = new_session,
    ) -> None:
        self.store = store
        self.options = options or JobOptions()
        self.session_factory = session_factory
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._waiters: dict[str, dict[str, _Waiter]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stops: dict[str, threading.Event] = {}  # transfers running here
        self._published_at: dict[str, float] = {}  # job id -> monotonic start of publish
        self._slots = threading.BoundedSemaphore(self.options.max_transfers)
        self._closed = threading.Event()
        self._janitor: threading.Thread | None = None

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
            or (r["lease_owner"] != self.owner and _owner_gone(r["lease_owner"]))
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
        job_id = self._join(req, _Waiter(future, throttle, req.partition))
        self._ensure_thread(job_id)
        return job_id, future

    def cancel(self, waiter: str, *, partition: str | None = None) -> bool:
        """Drop one requester; the transfer stops when no requester is left (unless it is
        a background prefetch). Only the requester's own partition may cancel it."""
        with self._lock:
            job_id = self._job_of(waiter, partition)
            if job_id is None:
                return False
            found = self._waiters[job_id].pop(waiter)
        with _cancelling(found.future), self.store.index.write() as db:
            db.execute(
                "DELETE FROM job_waiters WHERE job_id = ? AND waiter = ?",
                (job_id, self._key(waiter)),
            )
            left = db.execute("SELECT COUNT(*) FROM job_waiters WHERE job_id = ?", (job_id,))
            stopped = (
                left.fetchone()[0] == 0
                and db.execute(
                    "UPDATE jobs SET state = 'cancelled', updated_at = ? "
                    "WHERE id = ? AND state = 'active' AND background = 0",
                    (time.time(), job_id),
                ).rowcount
                == 1
            )
        if stopped:  # a transfer run here stops now; elsewhere at its next heartbeat
            with self._lock:
                stop = self._stops.get(job_id)
            if stop is not None:
                stop.set()
        return True

    def _job_of(self, waiter: str, partition: str | None) -> str | None:
        for job_id, waiters in self._waiters.items():
            found = waiters.get(waiter)
            if found is not None and (partition is None or found.partition == partition):
                return job_id
        return None

    def downloading(self, digest: Digest, partition: str | None) -> bool:
        """Whether an active job for `digest` has a requester in `partition`."""
        rows = self.store.index.query(
            "SELECT 1 FROM jobs j JOIN job_waiters w ON w.job_id = j.id "
            "WHERE j.sha256 = ? AND j.state = 'active' AND w.partition IS ?",
            (digest.hex, partition),
        )
        return bool(rows)

    def list_jobs(self) -> list[dict[str, Any]]:
        rows = self.store.index.query(
            "SELECT j.*, (SELECT COUNT(*) FROM job_waiters w WHERE w.job_id = j.id) AS n "
            "FROM jobs j ORDER BY j.created_at DESC"
        )
        return [JobRow.from_row(r).to_json(waiters=r["n"]) for r in rows]

    def _key(self, waiter: str) -> str:
        return f"{self.owner}/{waiter}"

    def join(self, req: DownloadRequest) -> str:
        """Record the job (or join the active one) with `req` as a requester; its id."""
        return self._join(req)

    def _join(self, req: DownloadRequest, waiter: _Waiter | None = None) -> str:
        """`waiter` is registered in memory before the row that makes it a requester is
        committed: the job cannot end unanswered in between (it ends by a write)."""
        now = time.time()
        with self._dropped_on_failure(req, waiter), self.store.index.write() as db:
            row = db.execute(
                "SELECT id, urls, origin FROM jobs "
                "WHERE sha256 = ? AND scope = ? AND state = 'active'",
                (req.digest.hex, req.scope),
            ).fetchone()
            if row is None:
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
            else:
                job_id = row["id"]
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
                        job_id,
                    ),
                )
            if req.waiter:  # a background prefetch may have nobody waiting for it
                db.execute(
                    "INSERT OR REPLACE INTO job_waiters (job_id, waiter, partition, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (job_id, self._key(req.waiter), req.partition, now),
                )
            if waiter is not None:  # before the commit that makes it a requester
                with self._lock:
                    self._waiters.setdefault(job_id, {})[req.waiter] = waiter
        return job_id

    @contextmanager
    def _dropped_on_failure(self, req: DownloadRequest, waiter: _Waiter | None) -> Iterator[None]:
        """Forget `waiter` again when the transaction that records it fails."""
        try:
            yield
        except BaseException:
            if waiter is not None:
                with self._lock:
                    for waiters in self._waiters.values():
                        if waiters.get(req.waiter) is waiter:
                            del waiters[req.waiter]
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
                job = self._row(job_id)
                if job is None or job.state != "active":
                    self._settle(job_id, job)
                    return
                if self._slots.acquire(blocking=False):
                    try:
                        if self._acquire(job_id) and self._run(job):
                            continue
                    finally:
                        self._slots.release()
                self._forward(job_id, job.loaded, job.total)
                if self._leave_if_unwanted(job_id):
                    return  # another process runs it and nobody here waits
                self._closed.wait(self.options.poll_s)
        except Exception:
            # The text may hold paths (the user name): it goes to the log only. The job
            # ends as failed, or every host would take it over and fail again forever.
            log.exception("job %s", job_id)
            self._fail_job(job_id)
            self._reject(job_id, HostError("internal", "the download failed"))
        finally:
            with self._lock:
                if self._threads.get(job_id) is threading.current_thread():
                    del self._threads[job_id]

    def _leave_if_unwanted(self, job_id: str) -> bool:
        """Whether nobody here waits for the job; then this thread is forgotten at once
        (under the lock a new requester takes, so it starts a new thread, not none)."""
        with self._lock:
            if self._waiters.get(job_id):
                return False
            if self._threads.get(job_id) is threading.current_thread():
                del self._threads[job_id]
            return True

    def _fail_job(self, job_id: str) -> None:
        try:
            self._end(job_id, "failed", {"code": "internal", "message": "the download failed"})
        except Exception:
            log.exception("job %s: cannot mark it failed", job_id)

    def _row(self, job_id: str) -> JobRow | None:
        rows = self.store.index.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return JobRow.from_row(rows[0]) if rows else None

    def _acquire(self, job_id: str) -> bool:
        now = time.time()
        with self.store.index.write() as db:
            row = db.execute(
                "SELECT lease_owner, lease_expires FROM jobs WHERE id = ? AND state = 'active'",
                (job_id,),
            ).fetchone()
            if row is None:
                return False
            owner = row["lease_owner"]
            free = owner is None or owner == self.owner or row["lease_expires"] < now
            if not (free or _owner_gone(owner)):
                return False
            db.execute(
                "UPDATE jobs SET lease_owner = ?, lease_expires = ?, updated_at = ? WHERE id = ?",
                (self.owner, now + self.options.lease_s, now, job_id),
            )
            return True

    def _run(self, job: JobRow) -> bool:
        """Transfer, verify, publish; the job row says how it ended. False when another
        runner still writes the job's partial file (it stops at its next heartbeat)."""
        lock = self._lock_partial(job)
        if lock is None:
            return False
        try:
            self._transfer(job, lock)
        finally:
            lock.release()
        return True

    def _lock_partial(self, job: JobRow) -> PartialLock | None:
        lock = PartialLock(partial_path(self.store.files.tmp_dir, job.id))
        if not lock.path.exists():  # a new job resumes what an ended one of its scope left
            for older in self._ended_partials(job):
                if lock.adopt(older):
                    return lock
        try:
            return lock.acquire()
        except PartialBusy:
            log.warning("job %s: another runner still writes its file; waiting", job.id)
            return None

    def _ended_partials(self, job: JobRow) -> list[Path]:
        rows = self.store.index.query(
            "SELECT id FROM jobs WHERE sha256 = ? AND scope = ? AND state != 'active' "
            "ORDER BY updated_at DESC LIMIT 4",
            (job.digest.hex, job.scope),
        )
        found = [partial_path(self.store.files.tmp_dir, r["id"]) for r in rows]
        return [p for p in found if p.exists()]

    def _transfer(self, job: JobRow, lock: PartialLock) -> None:
        partial = lock.path
        progress = _Counters(job.loaded, job.total)
        stop = threading.Event()
        with self._lock:
            self._stops[job.id] = stop

        def on_progress(loaded: int, total: int | None) -> None:
            progress.loaded, progress.total = loaded, total
            self._forward(job.id, loaded, total)

        transfer = Transfer(
            urls=job.urls,
            expected=job.digest,
            expected_size=job.size,
            size_limit=job.size_limit,
            quota_left=job.quota_left,
            partial=partial,
            options=self.options.transfer,
            session=self.session_factory(),
            progress=on_progress,
            should_stop=lambda: stop.is_set() or self._closed.is_set(),
            access=self._access(job),
        )
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(job.id, progress, stop),
            name=f"job-{job.id[:8]}-heartbeat",
            daemon=True,
        )
        heartbeat.start()
        try:
            pending = transfer.run()
            lock.verify(pending, job.digest)  # the file on disk, not just the stream
            self._publish(job, pending)
        except Cancelled:
            self._stopped(job, transfer)
        except HostError as exc:
            if exc.code in ("disk_full", "integrity_mismatch", "quota_exceeded") or not (
                partial.exists() and partial.stat().st_size
            ):
                transfer.discard()  # else the bytes stay for a later request to resume
            self._end(job.id, "failed", exc.to_wire())
        finally:
            stop.set()
            heartbeat.join()
            transfer.session.close()
            with self._lock:
                self._stops.pop(job.id, None)

    def _access(self, job: JobRow) -> PageAccess | None:
        """The limits of the page that chose the job's URLs (None: not page-chosen)."""
        if job.origin is None:
            return None
        return PageAccess.for_origin(
            job.origin, local_network_origins=self.options.local_network_origins
        )

    def _publish(self, job: JobRow, pending: Any) -> None:
        check_total_quota(self.store.index, self.options.total_quota)
        metadata = describe_file(pending.temp_path)
        refs = self._waiter_refs(job)
        with self._lock:
            self._published_at[job.id] = time.monotonic()
        try:
            self.store.ingest(
                pending, metadata, origin="downloaded", refs=refs, expected=job.digest
            )
        finally:
            self.store.files.discard(pending)
        self._end(job.id, "done", None, loaded=pending.size)

    def _stopped(self, job: JobRow, transfer: Transfer) -> None:
        current = self._row(job.id)
        if current is not None and current.state == "cancelled":
            transfer.discard()  # nobody wants it any more
        elif self._closed.is_set():
            with self.store.index.write() as db:  # let another process take over now
                db.execute(
                    "UPDATE jobs SET lease_expires = 0 WHERE id = ? AND lease_owner = ?",
                    (job.id, self.owner),
                )

    def _heartbeat(self, job_id: str, progress: _Counters, stop: threading.Event) -> None:
        """Renew the lease; when that fails (``database is locked`` after the busy
        timeout, a full disk) the transfer stops, since the lease may soon pass on."""
        while not stop.wait(self.options.heartbeat_s):
            try:
                renewed = self._renew(job_id, progress)
            except Exception:
                log.exception("job %s: heartbeat failed; stopping the transfer", job_id)
                renewed = False
            if not renewed:
                stop.set()  # cancelled, or the lease went (or may go) to another process

    def _renew(self, job_id: str, progress: _Counters) -> bool:
        now = time.time()
        with self.store.index.write() as db:
            cursor = db.execute(
                "UPDATE jobs SET loaded = ?, total = ?, lease_expires = ?, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = 'active'",
                (
                    progress.loaded,
                    progress.total,
                    now + self.options.lease_s,
                    now,
                    job_id,
                    self.owner,
                ),
            )
        return bool(cursor.rowcount == 1)

    def _end(
        self, job_id: str, state: str, error: dict[str, Any] | None, *, loaded: int | None = None
    ) -> None:
        with self.store.index.write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, lease_expires = 0, updated_at = ?, "
                "loaded = COALESCE(?, loaded), total = COALESCE(?, total) "
                "WHERE id = ? AND state = 'active'",
                (state, json.dumps(error) if error else None, time.time(), loaded, loaded, job_id),
            )

    def _waiter_refs(self, job: JobRow) -> list[tuple[str, str]]:
        if job.scope:  # its partition's bytes, even when all its requesters cancelled
            return [("site", job.scope)]
        rows = self.store.index.query(
            "SELECT DISTINCT partition FROM job_waiters WHERE job_id = ?", (job.id,)
        )
        refs = [("site", r["partition"]) if r["partition"] else ("pull", "") for r in rows]
        return refs or [("pull", "")]

    # -- local requesters ---------------------------------------------------------------------

    def _has_waiters(self, job_id: str) -> bool:
        with self._lock:
            return bool(self._waiters.get(job_id))

    def _forward(self, job_id: str, loaded: int, total: int | None) -> None:
        with self._lock:
            throttles = [w.throttle for w in self._waiters.get(job_id, {}).values() if w.throttle]
        for throttle in throttles:
            throttle.update(loaded, total)

    def _settle(self, job_id: str, job: JobRow | None) -> None:
        with self._lock:
            waiters = self._waiters.pop(job_id, {})
            published_at = self._published_at.pop(job_id, None)
        if not waiters:
            return
        try:
            self._answer(waiters, job, published_at)
        except HostError as exc:
            self._fail_all(waiters, exc)
        except Exception:  # a requester always gets an answer, never silence
            log.exception("job %s: settling", job_id)
            self._fail_all(waiters, HostError("internal", "the download failed"))

    def _answer(
        self, waiters: dict[str, _Waiter], job: JobRow | None, published_at: float | None
    ) -> None:
        if job is None:
            raise HostError("internal", "the download job vanished")
        if job.state == "done":
            record = self._delivered(waiters, job)
            if published_at is not None:  # published here: pad to the floor (privacy)
                time.sleep(max(0.0, published_at + self.options.settle_floor_s - time.monotonic()))
            for waiter in waiters.values():
                waiter.future.set_result(record)
            return
        if job.state == "cancelled":
            raise HostError("cancelled", "the download was cancelled")
        error = job.error or {"code": "download_failed", "message": "the download failed"}
        raise HostError(error["code"], error["message"], **error.get("details", {}))

    def _delivered(self, waiters: dict[str, _Waiter], job: JobRow) -> ModelRecord:
        """The stored model, credited to each requester's partition; `not_found` when
        it was deleted since it was published (before or while it is credited)."""
        removed = HostError("not_found", "the model was removed")
        record = self.store.get(job.digest)
        if record is None or not record.servable:
            raise removed
        for waiter in waiters.values():
            if waiter.partition:
                try:
                    self.store.record_use(job.digest, waiter.partition)
                except sqlite3.IntegrityError as exc:  # its object row is gone
                    raise removed from exc
            if waiter.throttle:
                waiter.throttle.finish(record.size)
        return record

    def _reject(self, job_id: str, error: HostError) -> None:
        with self._lock:
            waiters = self._waiters.pop(job_id, {})
        self._fail_all(waiters, error)

    @staticmethod
    def _fail_all(waiters: dict[str, _Waiter], error: HostError) -> None:
        for waiter in waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(error)


@contextmanager
def _cancelling(future: Future[ModelRecord]) -> Iterator[None]:
    """The cancelled request is answered `cancelled` even when recording it fails."""
    try:
        yield
    finally:
        if not future.done():
            future.set_exception(HostError("cancelled", "the download was cancelled"))


def _owner_gone(owner: str) -> bool:
    """A lease held by a process of this machine that no longer exists (a killed host)
    is taken over at once instead of after it expires."""
    parts = owner.rsplit(":", 2)  # host:pid:token (a host name may hold ':')
    if len(parts) != 3:
        return False
    host, pid, _ = parts
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))


@dataclass(slots=True)
class _Counters:
    loaded: int
    total: int | None
