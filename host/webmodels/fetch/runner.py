"""Running one download job in this process: take its lease, transfer its bytes under
a heartbeat, prove the file on disk, publish it, and record how the job ended.

Two runners of one job must never write one file (PRIVACY.md, hole 10): the runner
holds a lock on the partial file (fetch/partial.py), a transfer stops as soon as its
heartbeat fails, the lease outlives the index's busy timeout, and the file itself is
hashed again before it is published. Whether to run a job, and answering its
requesters, are the job manager's (fetch/jobs.py) and fetch/settle.py's.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webmodels.errors import HostError
from webmodels.fetch.access import PageAccess
from webmodels.fetch.partial import PartialBusy, PartialLock, partial_path
from webmodels.fetch.records import JobOptions, JobRow
from webmodels.fetch.transfer import Cancelled, Transfer
from webmodels.fetch.waiters import Waiters
from webmodels.store.blobs import PendingBlob, process_alive
from webmodels.store.metadata import describe_file
from webmodels.store.quotas import check_total_quota
from webmodels.store.store import Store

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Counters:
    loaded: int
    total: int | None


class _Running:
    """A transfer running here and how to stop it: the flag it looks at between reads,
    and waking the read in flight (a cancel stops the transfer at once, not after its
    current 256 KiB read or the stall timeout)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.transfer: Transfer | None = None

    def halt(self) -> None:
        self.event.set()
        if self.transfer is not None:
            self.transfer.interrupt()


class JobRunner:
    def __init__(
        self,
        store: Store,
        options: JobOptions,
        *,
        owner: str,
        session_factory: Callable[[], requests.Session],
        waiters: Waiters,
        closed: threading.Event,
    ) -> None:
        """`owner` names this process in leases; `waiters` get the progress and the
        moment of publishing; `closed` set: the host is shutting down."""
        self.store = store
        self.options = options
        self.owner = owner
        self.session_factory = session_factory
        self.waiters = waiters
        self.closed = closed
        self._lock = threading.Lock()
        self._stops: dict[str, _Running] = {}  # transfers running here

    # -- the job's row and lease ------------------------------------------------------

    def row(self, job_id: str) -> JobRow | None:
        rows = self.store.index.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return JobRow.from_row(rows[0]) if rows else None

    def acquire(self, job_id: str) -> bool:
        """Take the job's lease when it is free, ours, expired or its owner is gone."""
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
            if not (free or owner_gone(owner)):
                return False
            db.execute(
                "UPDATE jobs SET lease_owner = ?, lease_expires = ?, updated_at = ? WHERE id = ?",
                (self.owner, now + self.options.lease_s, now, job_id),
            )
            return True

    def stop(self, job_id: str) -> None:
        """Stop the job's transfer when it runs here (elsewhere: at its next heartbeat)."""
        with self._lock:
            stop = self._stops.get(job_id)
        if stop is not None:
            stop.halt()

    def fail(self, job_id: str) -> None:
        """End the job as failed (its thread failed); never raises."""
        try:
            self._end(job_id, "failed", {"code": "internal", "message": "the download failed"})
        except Exception:
            log.exception("job %s: cannot mark it failed", job_id)

    # -- running it -------------------------------------------------------------------

    def run(self, job: JobRow) -> bool:
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
        progress = _Counters(job.loaded, job.total)
        stop = _Running()
        transfer = stop.transfer = self._new_transfer(job, lock.path, progress, stop.event)
        with self._lock:
            self._stops[job.id] = stop
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(job.id, progress, stop),
            name=f"job-{job.id[:8]}-heartbeat",
            daemon=True,
        )
        heartbeat.start()
        try:
            self._transfer_and_publish(job, lock, transfer)
        finally:
            stop.event.set()
            heartbeat.join()
            transfer.session.close()
            with self._lock:
                self._stops.pop(job.id, None)

    def _new_transfer(
        self, job: JobRow, partial: Path, progress: _Counters, stop: threading.Event
    ) -> Transfer:
        def on_progress(loaded: int, total: int | None) -> None:
            progress.loaded, progress.total = loaded, total
            self.waiters.forward(job.id, loaded, total)

        return Transfer(
            urls=job.urls,
            expected=job.digest,
            expected_size=job.size,
            size_limit=job.size_limit,
            quota_left=job.quota_left,
            partial=partial,
            options=self.options.transfer,
            session=self.session_factory(),
            progress=on_progress,
            should_stop=lambda: stop.is_set() or self.closed.is_set(),
            access=self._access(job),
            mirrors=self.options.mirrors,
        )

    def _transfer_and_publish(self, job: JobRow, lock: PartialLock, transfer: Transfer) -> None:
        try:
            pending = transfer.run()
            lock.verify(pending, job.digest)  # the file on disk, not just the stream
            self._publish(job, pending)
        except Cancelled:
            self._stopped(job, transfer)
        except HostError as exc:
            partial = lock.path
            if exc.code in ("disk_full", "integrity_mismatch", "quota_exceeded") or not (
                partial.exists() and partial.stat().st_size
            ):
                transfer.discard()  # else the bytes stay for a later request to resume
            self._end(job.id, "failed", exc.to_wire())

    def _access(self, job: JobRow) -> PageAccess | None:
        """The limits of the page that chose the job's URLs (None: not page-chosen)."""
        if job.origin is None:
            return None
        return PageAccess.for_origin(
            job.origin, local_network_origins=self.options.local_network_origins
        )

    def _publish(self, job: JobRow, pending: PendingBlob) -> None:
        check_total_quota(self.store.index, self.options.total_quota)
        metadata = describe_file(pending.temp_path)
        refs = self._waiter_refs(job)
        self.waiters.published(job.id)
        try:
            self.store.ingest(
                pending, metadata, origin="downloaded", refs=refs, expected=job.digest
            )
        finally:
            self.store.files.discard(pending)
        self._end(job.id, "done", None, loaded=pending.size)

    def _stopped(self, job: JobRow, transfer: Transfer) -> None:
        current = self.row(job.id)
        if current is not None and current.state == "cancelled":
            transfer.discard()  # nobody wants it any more
        elif self.closed.is_set():
            with self.store.index.write() as db:  # let another process take over now
                db.execute(
                    "UPDATE jobs SET lease_expires = 0 WHERE id = ? AND lease_owner = ?",
                    (job.id, self.owner),
                )

    def _waiter_refs(self, job: JobRow) -> list[tuple[str, str]]:
        if job.scope:  # its partition's bytes, even when all its requesters cancelled
            return [("site", job.scope)]
        rows = self.store.index.query(
            "SELECT DISTINCT partition FROM job_waiters WHERE job_id = ?", (job.id,)
        )
        refs = [("site", r["partition"]) if r["partition"] else ("pull", "") for r in rows]
        return refs or [("pull", "")]

    # -- the heartbeat and the end ------------------------------------------------------

    def _heartbeat(self, job_id: str, progress: _Counters, stop: _Running) -> None:
        """Renew the lease; when that fails (``database is locked`` after the busy
        timeout, a full disk) the transfer stops, since the lease may soon pass on.
        A job cancelled by another process stops here at its next heartbeat."""
        while not stop.event.wait(self.options.heartbeat_s):
            try:
                renewed = self._renew(job_id, progress)
            except Exception:
                log.exception("job %s: heartbeat failed; stopping the transfer", job_id)
                renewed = False
            if not renewed:
                stop.halt()  # cancelled, or the lease went (or may go) to another process

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


def owner_gone(owner: str) -> bool:
    """A lease held by a process of this machine that no longer exists (a killed host)
    is taken over at once instead of after it expires."""
    parts = owner.rsplit(":", 2)  # host:pid:token (a host name may hold ':')
    if len(parts) != 3:
        return False
    host, pid, _ = parts
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))
