"""Every download request gets exactly one answer, and a failed job ends (PRIVACY.md,
holes 11 and 12). A real store, a real local server and a job manager in this process;
the failures are injected by wrapping one store or module function to raise (no real
component fails on demand at these points), or by holding one step of `request` back
until the job has settled (the race a busy machine can produce)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from support.httpserver import Fault, ModelServer
from webmodels.config import Config
from webmodels.context import RequestContext
from webmodels.digest import Digest
from webmodels.dispatch import Dispatcher
from webmodels.errors import HostError
from webmodels.fetch import runner as runner_module
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest, JobOptions
from webmodels.methods.page_downloads import then as _then
from webmodels.protocol.envelope import Request
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

SECRET = "/home/alice/.local/share/webmodels/store-v2/tmp/secret"
ANSWER_S = 30  # far longer than any answer takes; reaching it means no answer came


@pytest.fixture
def jobs(home: Path) -> Iterator[JobManager]:
    store = Store.open(Config(home=home, log_dir=home / "logs"))
    manager = JobManager(store, JobOptions(settle_floor_s=1.0))
    try:
        yield manager
    finally:
        manager.close()
        store.close()


def served(server: ModelServer, size: int = 2 << 20, rate: int = 4 << 20) -> tuple[bytes, str]:
    data = os.urandom(size)
    url = server.add("/m.bin", data)
    server.fault("/m.bin", Fault(kind="slow", rate=rate, times=None))
    return data, url


def ask(data: bytes, url: str, waiter: str, partition: str | None = None) -> DownloadRequest:
    digest = Digest(hashlib.sha256(data).hexdigest())
    return DownloadRequest(digest, (url,), waiter, partition=partition, scope=partition or "")


def answer(future: Future[ModelRecord]) -> ModelRecord | HostError:
    try:
        return future.result(timeout=ANSWER_S)
    except HostError as exc:
        return exc


def job_state(manager: JobManager) -> str:
    return str(manager.store.index.query("SELECT state FROM jobs")[0]["state"])


def test_a_requester_joining_as_the_job_settles_is_answered(
    jobs: JobManager, model_server: ModelServer
) -> None:
    data, url = served(model_server)
    started = threading.Event()
    _, first = jobs.request(ask(data, url, "1"), lambda loaded, total: started.set())
    assert started.wait(30)
    join = jobs._join

    def join_then_settle(req: DownloadRequest, *args: Any) -> str:
        job_id = join(req, *args)
        # Hold the request here (after its row was committed) until the job's thread
        # has ended the job and taken the requesters it knows to answer them.
        while job_id in jobs.waiters._published_at or job_state(jobs) == "active":
            time.sleep(0.01)
        return job_id

    jobs._join = join_then_settle  # type: ignore[method-assign]
    _, second = jobs.request(ask(data, url, "2"))

    assert isinstance(answer(first), ModelRecord)
    assert isinstance(answer(second), ModelRecord)


@pytest.mark.parametrize("step", ["get", "record_use"])
def test_a_failure_while_settling_answers_every_requester(
    jobs: JobManager, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    data, url = served(model_server)
    real = getattr(jobs.store, step)
    calls = 0

    def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if step == "get" and threading.current_thread().name.startswith("job-") and calls > 1:
            raise OSError(f"[Errno 5] I/O error: '{SECRET}'")  # the settling look-up
        if step == "record_use":
            raise OSError(f"[Errno 5] I/O error: '{SECRET}'")
        return real(*args)

    monkeypatch.setattr(jobs.store, step, failing)
    _, first = jobs.request(ask(data, url, "1", "https://a.example https://a.example"))
    _, second = jobs.request(ask(data, url, "2", "https://a.example https://a.example"))

    for got in (answer(first), answer(second)):
        assert isinstance(got, HostError) and got.code == "internal", got
        assert "alice" not in got.message


def test_a_model_deleted_before_it_is_credited_answers_not_found(
    jobs: JobManager, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, url = served(model_server)
    real = jobs.store.record_use

    def deleted_first(digest: Digest, partition: str) -> None:
        jobs.store.delete(digest, force=True)  # the user deletes it from the popup now
        real(digest, partition)

    monkeypatch.setattr(jobs.store, "record_use", deleted_first)
    _, future = jobs.request(ask(data, url, "1", "https://a.example https://a.example"))

    got = answer(future)
    assert isinstance(got, HostError) and got.code == "not_found", got


def test_a_job_whose_thread_failed_ends_failed_with_a_generic_message(
    jobs: JobManager, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, url = served(model_server)

    def unreadable(path: Path) -> Any:
        raise FileNotFoundError(2, "No such file or directory", SECRET)

    monkeypatch.setattr(runner_module, "describe_file", unreadable)
    _, future = jobs.request(ask(data, url, "1"))

    got = answer(future)
    assert isinstance(got, HostError) and got.code == "internal", got
    assert "alice" not in got.message and "No such file" not in got.message
    assert job_state(jobs) == "failed"
    assert jobs.resume_orphans() == []  # no host takes it over to fail again


def test_a_callback_that_raises_still_replies_once() -> None:
    source: Future[ModelRecord] = Future()

    def make(record: ModelRecord) -> Mapping[str, Any]:
        raise OSError(f"[Errno 2] No such file or directory: '{SECRET}'")

    dispatcher = Dispatcher()
    dispatcher.add("models.load", lambda call: _then(source, make))
    replies: list[dict[str, Any]] = []
    done = threading.Event()

    def respond(reply: dict[str, Any]) -> None:
        replies.append(reply)
        done.set()

    request = Request(1, "models.load", {}, None)
    dispatcher.dispatch(request, RequestContext.trusted_local(), _no_events(), respond)
    source.set_result(_record())

    assert done.wait(ANSWER_S)
    assert len(replies) == 1 and replies[0]["ok"] is False
    assert replies[0]["error"]["code"] == "internal"
    assert "alice" not in str(replies[0])


def _no_events() -> Callable[[str, Mapping[str, Any]], None]:
    return lambda name, body: None


def _record() -> ModelRecord:
    return object()  # type: ignore[return-value]  # `make` raises before reading it


def test_a_cancelled_request_is_answered_even_when_the_index_fails(
    jobs: JobManager, model_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, url = served(model_server, rate=1 << 20)
    started = threading.Event()
    _, future = jobs.request(ask(data, url, "1"), lambda loaded, total: started.set())
    assert started.wait(30)

    def locked() -> Any:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(jobs.store.index, "write", locked)
        with pytest.raises(sqlite3.OperationalError):
            jobs.cancel("1")  # the cancel request gets this error as its reply

    got = answer(future)
    assert isinstance(got, HostError) and got.code == "cancelled", got
