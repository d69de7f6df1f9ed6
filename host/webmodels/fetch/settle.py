"""Answering a download job's requesters once the job ended: each gets exactly one
answer (PRIVACY.md, hole 12).

* Done: the stored model, credited to each requester's partition, or `not_found`
  when it was deleted since it was published.
* Published by this process: not answered before `JobOptions.settle_floor_s` has
  passed since publishing began, so a page cannot time whether another site already
  held the model (PRIVACY.md, "Load timing").
* Cancelled or failed: the job's error; any failure while settling answers every
  requester with an error, never silence.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

from webmodels.errors import HostError
from webmodels.fetch.records import JobRow
from webmodels.fetch.waiters import Ended, Waiter
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

log = logging.getLogger(__name__)


def settle(store: Store, job_id: str, job: JobRow | None, ended: Ended, *, floor_s: float) -> None:
    """Answer every requester in `ended` with how `job` (its row, None: gone) ended."""
    if not ended.waiters:
        return
    try:
        _answer(store, ended, job, floor_s=floor_s)
    except HostError as exc:
        fail_all(ended.waiters, exc)
    except Exception:  # a requester always gets an answer, never silence
        log.exception("job %s: settling", job_id)
        fail_all(ended.waiters, HostError("internal", "the download failed"))


def _answer(store: Store, ended: Ended, job: JobRow | None, *, floor_s: float) -> None:
    if job is None:
        raise HostError("internal", "the download job vanished")
    if job.state == "done":
        record = _delivered(store, ended.waiters, job)
        if ended.published_at is not None:  # published here: pad to the floor (privacy)
            time.sleep(max(0.0, ended.published_at + floor_s - time.monotonic()))
        for waiter in ended.waiters.values():
            waiter.future.set_result(record)
        return
    if job.state == "cancelled":
        raise HostError("cancelled", "the download was cancelled")
    error = job.error or {"code": "download_failed", "message": "the download failed"}
    raise HostError(error["code"], error["message"], **error.get("details", {}))


def _delivered(store: Store, waiters: dict[str, Waiter], job: JobRow) -> ModelRecord:
    """The stored model, credited to each requester's partition; `not_found` when
    it was deleted since it was published (before or while it is credited)."""
    removed = HostError("not_found", "the model was removed")
    record = store.get(job.digest)
    if record is None or not record.servable:
        raise removed
    for waiter in waiters.values():
        if waiter.partition:
            try:
                store.record_use(job.digest, waiter.partition)
            except sqlite3.IntegrityError as exc:  # its object row is gone
                raise removed from exc
        if waiter.throttle:
            waiter.throttle.finish(record.size)
    return record


def fail_all(waiters: dict[str, Waiter], error: HostError) -> None:
    for waiter in waiters.values():
        if not waiter.future.done():
            waiter.future.set_exception(error)


@contextmanager
def cancelling(future: Future[ModelRecord]) -> Iterator[None]:
    """The cancelled request is answered `cancelled` even when recording it fails."""
    try:
        yield
    finally:
        if not future.done():
            future.set_exception(HostError("cancelled", "the download was cancelled"))
