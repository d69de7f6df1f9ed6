"""One writer per partial file, and only the bytes on disk that hash right are published
(PRIVACY.md, hole 10). Two job managers on one store stand for two host processes
(each has its own index connection and lease owner); the server is a real local one.

Failures are injected where no real component can produce them on demand: a dead
heartbeat (a heartbeat interval longer than the test), one heartbeat write raising
``database is locked`` (a wrapped index method), and a careless writer (a plain
``open`` of the partial file, as an older host or a platform without ``flock``)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.held import held
from support.httpserver import Fault, ModelServer
from webmodels.config import Config
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest, JobOptions
from webmodels.fetch.transfer import TransferOptions
from webmodels.store.gc import plan_gc
from webmodels.store.index import BUSY_TIMEOUT_MS
from webmodels.store.store import Store

SIZE = 6 << 20


def open_store(home: Path) -> Store:
    return Store.open(Config(home=home, log_dir=home / "logs"))


def blob_hashes(store: Store) -> list[str]:
    """The SHA-256 of every file the store keeps, each re-hashed from what it reads back
    (a whole file or its segments)."""
    return sorted(
        hashlib.sha256(store.read(digest, 0, 1 << 40)[0]).hexdigest() for digest in held(store)
    )


class Watch:
    """Progress of one request; `reached(n)` waits until n bytes were loaded."""

    def __init__(self) -> None:
        self.loaded = 0
        self._changed = threading.Condition()

    def __call__(self, loaded: int, total: int | None) -> None:
        with self._changed:
            self.loaded = loaded
            self._changed.notify_all()

    def reached(self, n: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.loaded >= n, timeout=60), self.loaded


@contextmanager
def manager(home: Path, options: JobOptions | None = None) -> Iterator[JobManager]:
    store = open_store(home)
    jobs = JobManager(store, options)
    try:
        yield jobs
    finally:
        jobs.close()
        store.close()


def request(data: bytes, url: str, waiter: str = "1") -> DownloadRequest:
    return DownloadRequest(Digest(hashlib.sha256(data).hexdigest()), (url,), waiter)


def test_a_takeover_mid_transfer_never_publishes_torn_bytes(
    home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(SIZE)
    # No validators: a runner that takes over cannot resume and starts from byte 0,
    # truncating the file (what tore the published blob before the fix).
    url = model_server.add("/m.bin", data, etag=None, last_modified=None)
    model_server.fault("/m.bin", Fault(kind="slow", rate=2 << 20, times=None))
    dead_heartbeat = JobOptions(heartbeat_s=3600)  # as one that died on "database is locked"
    watch = Watch()
    with manager(home, dead_heartbeat) as first, manager(home) as second:
        job_id, future = first.request(request(data, url), watch)
        watch.reached(SIZE * 6 // 10)
        with first.store.index.write() as db:  # the lease runs out while it transfers
            db.execute("UPDATE jobs SET lease_expires = 0 WHERE id = ?", (job_id,))

        assert second.resume_orphans() == [job_id]  # the second takes the job over
        record = future.result(timeout=60)

        published = first.store.read(record.digest, 0, 1 << 40)[0]
        assert hashlib.sha256(published).hexdigest() == record.digest.hex
        assert blob_hashes(first.store) == [record.digest.hex]


def test_bytes_changed_on_disk_after_streaming_are_never_published(
    home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(SIZE)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=4 << 20, times=None))
    watch = Watch()
    with manager(home) as jobs:
        _, future = jobs.request(request(data, url), watch)
        watch.reached(2 << 20)
        [partial] = jobs.store.files.tmp_dir.glob("dl-*.partial")
        with partial.open("r+b") as careless:  # a writer that takes no lock
            careless.write(b"\0" * 4096)

        with pytest.raises(HostError) as failed:
            future.result(timeout=60)

        assert failed.value.code == "integrity_mismatch"
        assert blob_hashes(jobs.store) == []


def test_a_failed_heartbeat_stops_the_transfer(
    home: Path, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(SIZE)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=3 << 20, times=None))
    watch = Watch()
    with manager(home, JobOptions(heartbeat_s=0.05)) as jobs:
        index = jobs.store.index
        real_write = index.write
        failed = threading.Event()

        def write() -> Any:
            if "heartbeat" in threading.current_thread().name and not failed.is_set():
                failed.set()
                raise sqlite3.OperationalError("database is locked")
            return real_write()

        _, future = jobs.request(request(data, url), watch)
        watch.reached(1 << 20)
        monkeypatch.setattr(index, "write", write)
        record = future.result(timeout=60)

        assert failed.is_set()
        gets = [r for r in model_server.requests if r.method == "GET"]
        # The transfer stopped when its heartbeat failed; it went on where it stopped
        # once the lease was renewed (a second, ranged request), not on regardless.
        assert len(gets) == 2 and gets[1].range is not None, gets
        assert blob_hashes(jobs.store) == [record.digest.hex]


def test_the_lease_outlives_the_index_busy_timeout() -> None:
    assert JobOptions().lease_s > 1.5 * BUSY_TIMEOUT_MS / 1000


@pytest.mark.parametrize("scope", ["", "https://b.example https://b.example"])
def test_a_new_job_resumes_what_an_ended_job_of_its_scope_left(
    home: Path, model_server: ModelServer, scope: str
) -> None:
    data = os.urandom(SIZE)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="drop", after_bytes=2 << 20))
    once = JobOptions(transfer=TransferOptions(max_attempts=1, backoff_s=0))
    with manager(home, once) as jobs:
        _, failed = jobs.request(request(data, url))
        with pytest.raises(HostError):
            failed.result(timeout=60)  # gave up after one round: its bytes stay

        again = dataclasses.replace(request(data, url, "2"), scope=scope)
        _, future = jobs.request(again)
        future.result(timeout=60)

    second = [r for r in model_server.requests if r.method == "GET"][1]
    if scope == "":  # the same scope: resumed where the ended job stopped
        assert second.range is not None and second.range != "bytes=0-", second
    else:  # another partition's job never starts from those bytes
        assert second.range is None, second


def test_gc_keeps_the_partial_of_an_active_job_and_removes_an_abandoned_one(
    home: Path,
) -> None:
    with manager(home) as jobs:
        store = jobs.store
        active = jobs.join(DownloadRequest(Digest("ab" * 32), ("http://127.0.0.1:9/m",), ""))
        kept = store.files.tmp_dir / f"dl-{active}.partial"
        abandoned = store.files.tmp_dir / "dl-0123456789abcdef0123456789abcdef.partial"
        two_days_ago = time.time() - 2 * 24 * 3600
        for path in (kept, abandoned):
            path.write_bytes(b"half a model")
            path.with_suffix(".json").write_text('{"url": "http://127.0.0.1:9/m"}')
            os.utime(path, (two_days_ago, two_days_ago))

        planned = [item.path for item in plan_gc(store).items if item.kind == "temp_file"]

        assert planned == [abandoned]
