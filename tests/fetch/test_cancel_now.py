"""A cancelled download stops at once: the read in flight is woken, the server sees its
connection closed, the partial file is removed and the transfer's thread ends, also
when the server went silent in the middle of the body (a stall far longer than the
test waits) or sends it slowly (a 256 KiB read that would take minutes to fill).

A real local HTTP server, a real store and job manager in this process; and a real
host process cancelled by a page's `models.cancel`."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.contexts import PAGE_A
from support.host import HostProcess
from support.httpserver import Fault, ModelServer
from webmodels.config import Config
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest, JobOptions
from webmodels.fetch.transfer import TransferOptions
from webmodels.store.store import Store

STALL_S = 300.0  # the server's silence and the transfer's stall timeout
DEADLINE_S = 60.0  # far longer than a cancel takes; far shorter than STALL_S


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE_S:.0f} s: {what}"
        time.sleep(0.05)


def closed_by_client(server: ModelServer) -> int:
    """How many GETs the client hung up on while the server stalled (recorded by the
    server's thread as it sees the connection close)."""
    return sum(r.client_closed for r in server.requests if r.method == "GET")


def temp_files(home: Path) -> list[str]:
    return sorted(p.name for p in home.glob("**/tmp/*") if p.is_file())


@pytest.fixture
def jobs(home: Path) -> Iterator[JobManager]:
    store = Store.open(Config(home=home, log_dir=home / "logs"))
    options = JobOptions(transfer=TransferOptions(stall_timeout_s=STALL_S))
    manager = JobManager(store, options)
    try:
        yield manager
    finally:
        manager.close()
        store.close()


def test_cancel_wakes_a_read_on_a_stalled_server(
    home: Path, jobs: JobManager, model_server: ModelServer
) -> None:
    data = os.urandom(1 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault("stall", after_bytes=1000, seconds=STALL_S))
    digest = Digest(hashlib.sha256(data).hexdigest())
    ask = DownloadRequest(digest, (url,), "w1", partition="a", scope="a")
    _, future = jobs.request(ask)
    wait_for("the server sent its bytes", lambda: model_server.bytes_sent("/m.bin") >= 1000)
    wait_for("the partial file", lambda: any(n.endswith(".partial") for n in temp_files(home)))

    assert jobs.cancel("w1", partition=ask.partition)

    with pytest.raises(HostError) as raised:
        future.result(timeout=DEADLINE_S)
    assert raised.value.code == "cancelled"
    wait_for("the transfer's thread ended", lambda: not jobs.running())
    wait_for("the server saw the connection closed", lambda: closed_by_client(model_server) == 1)
    assert jobs.store.index.query("SELECT state FROM jobs")[0]["state"] == "cancelled"
    assert temp_files(home) == []


def test_a_cancel_by_another_process_wakes_the_read_at_the_heartbeat(
    home: Path, jobs: JobManager, model_server: ModelServer
) -> None:
    """Another process (another host, the CLI) cancels by writing the job's row: the
    runner's heartbeat sees it and wakes the read, as a cancel here does."""
    data = os.urandom(1 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault("stall", after_bytes=1000, seconds=STALL_S))
    digest = Digest(hashlib.sha256(data).hexdigest())
    job_id, future = jobs.request(DownloadRequest(digest, (url,), "w1"))
    wait_for("the server sent its bytes", lambda: model_server.bytes_sent("/m.bin") >= 1000)

    with jobs.store.index.write() as db:
        db.execute("UPDATE jobs SET state = 'cancelled' WHERE id = ?", (job_id,))

    with pytest.raises(HostError):
        future.result(timeout=DEADLINE_S)
    wait_for("the transfer's thread ended", lambda: not jobs.running())
    wait_for("the server saw the connection closed", lambda: closed_by_client(model_server) == 1)
    wait_for("no temp file", lambda: temp_files(home) == [])


def test_a_cancel_by_another_partition_stops_nothing(
    jobs: JobManager, model_server: ModelServer
) -> None:
    """Two sites load the same bytes in two jobs; one cancels: the other's transfer
    (stalled the same way) is not woken, its connection stays open."""
    data = os.urandom(1 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault("stall", after_bytes=1000, seconds=STALL_S, times=2))
    digest = Digest(hashlib.sha256(data).hexdigest())
    a = DownloadRequest(digest, (url,), "wa", partition="a", scope="a")
    b = DownloadRequest(digest, (url,), "wb", partition="b", scope="b")
    _, future_a = jobs.request(a)
    _, future_b = jobs.request(b)
    wait_for("both were sent bytes", lambda: model_server.bytes_sent("/m.bin") >= 2000)

    assert not jobs.cancel("wa", partition=b.partition)  # not B's to cancel
    assert jobs.cancel("wa", partition=a.partition)
    with pytest.raises(HostError):
        future_a.result(timeout=DEADLINE_S)
    wait_for("A's connection closed", lambda: closed_by_client(model_server) == 1)
    states = sorted(r["state"] for r in jobs.store.index.query("SELECT state FROM jobs"))
    assert states == ["active", "cancelled"] and not future_b.done()
    assert jobs.cancel("wb", partition=b.partition)
    wait_for("B's connection closed", lambda: closed_by_client(model_server) == 2)
    assert len([r for r in model_server.requests if r.method == "GET"]) == 2  # B never retried


def test_a_page_cancel_ends_the_hosts_transfer_thread(
    home: Path, model_server: ModelServer
) -> None:
    """A slow server: the old code read on until its 256 KiB piece filled (minutes).
    The transfer's end shows as the server's write failing on the connection the host
    closed: comparing the host's thread ids cannot tell it, since a request thread the
    host's pool starts at that moment lives on (it did under load)."""
    data = os.urandom(4 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault("slow", rate=2048))
    digest = hashlib.sha256(data).hexdigest()
    host = HostProcess(home)
    try:
        host.result("manage.jobs")
        sri = "sha256-" + base64.b64encode(bytes.fromhex(digest)).decode()
        params = {"query": {"url": url, "integrity": sri}}
        host.send({"id": 7, "method": "models.load", "params": params, "context": PAGE_A})
        assert host.recv(timeout=DEADLINE_S)["event"] == "download.progress"
        assert closed_by_client(model_server) == 0

        assert host.result("models.cancel", {"request_id": 7}, context=PAGE_A) == {
            "cancelled": True
        }
        wait_for(
            "the server saw the connection closed", lambda: closed_by_client(model_server) == 1
        )
        wait_for("no temp file", lambda: temp_files(home) == [])
        [record] = [r for r in model_server.requests if r.method == "GET"]
        assert record.bytes_sent < 256 << 10
    finally:
        host.kill()
