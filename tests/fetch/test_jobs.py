"""Download jobs through real host processes and a real local HTTP server: progress,
sharing between processes, cancelling, restarts after SIGKILL, offline use."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from support.contexts import PAGE_A, PAGE_B
from support.held import held_in, read_held
from support.host import HostProcess, run_cli
from support.httpserver import Fault, ModelServer, RequestRecord
from support.models import tiny_model


def integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def load_params(url: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"query": {"url": url, "integrity": integrity(data)}, **extra}


def collect(host: HostProcess, request_id: int, timeout: float = 60) -> tuple[list[Any], Any]:
    """Events for `request_id`, then its reply."""
    events, deadline = [], time.monotonic() + timeout
    while True:
        message = host.recv(timeout=max(0.1, deadline - time.monotonic()))
        if message.get("id") != request_id:
            continue
        if "event" in message:
            events.append(message)
        else:
            return events, message


def await_bytes(host: HostProcess, timeout: float = 30) -> None:
    """Until a progress event says bytes arrived (the first one, sent with the headers,
    says only the size)."""
    deadline = time.monotonic() + timeout
    while not host.recv(timeout=max(0.1, deadline - time.monotonic())).get("loaded"):
        pass


def blob_files(home: Path) -> list[str]:
    return sorted(held_in(home))


def test_load_by_url_with_progress(home: Path, tmp_path: Path, model_server: ModelServer) -> None:
    data = tiny_model(tmp_path / "m.onnx", weight_bytes=6 << 20).read_bytes()
    url = model_server.add("/m.onnx", data)
    model_server.fault("/m.onnx", Fault(kind="slow", rate=8 << 20))  # ~0.75 s
    host = HostProcess(home)
    try:
        started = time.monotonic()
        host.send(
            {"id": 1, "method": "models.load", "params": load_params(url, data), "context": PAGE_A}
        )
        events, reply = collect(host, 1)
        elapsed = time.monotonic() - started
        assert reply["ok"], reply
        model = reply["result"]["model"]
        assert model["sha256"] == hashlib.sha256(data).hexdigest()
        assert model["source"] == "downloaded" and model["format"] == "onnx"
        loaded = [e["loaded"] for e in events]
        assert loaded == sorted(loaded) and loaded[-1] == len(data)
        assert all(e["event"] == "download.progress" and e["total"] == len(data) for e in events)
        assert 2 <= len(events) <= elapsed * 20 + 2  # at most 20 a second, plus first and last
        # The bytes read back are exactly the server's.
        first = host.result(
            "models.read", {"sha256": model["sha256"], "length": 64}, context=PAGE_A
        )
        assert base64.b64decode(first["data"]) == data[:64]
        # Now the page has it; another page still does not.
        available = host.result(
            "models.availability", {"query": {"sha256": model["sha256"]}}, context=PAGE_A
        )
        assert available == {"availability": "available"}
        other = host.result(
            "models.availability", {"query": {"sha256": model["sha256"]}}, context=PAGE_B
        )
        assert other == {"availability": "unavailable"}
    finally:
        host.kill()


def test_wrong_bytes_publish_nothing(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(2 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="wrong_bytes", after_bytes=1000, times=None))
    host = HostProcess(home)
    try:
        reply = host.call("models.load", load_params(url, data), context=PAGE_A)
        assert reply["error"]["code"] == "integrity_mismatch"
        assert blob_files(home) == []
        assert list((home / "store-v2" / "tmp").iterdir()) == []
        jobs = host.result("manage.jobs")["jobs"]
        assert jobs[0]["state"] == "failed" and jobs[0]["error"]["code"] == "integrity_mismatch"
    finally:
        host.kill()


def test_availability_says_downloading_only_to_the_requester(
    home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(4 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=2 << 20))
    host = HostProcess(home)
    try:
        host.send(
            {"id": 1, "method": "models.load", "params": load_params(url, data), "context": PAGE_A}
        )
        host.recv()  # the first progress event: the job runs
        query = {"query": {"sha256": hashlib.sha256(data).hexdigest(), "url": url}}
        query["query"] = {"url": url, "integrity": integrity(data)}
        mine = host.result("models.availability", query, context=PAGE_A)
        theirs = host.result("models.availability", query, context=PAGE_B)
        assert mine == {"availability": "downloading"}
        assert theirs == {"availability": "downloadable"}
        _, reply = collect(host, 1)
        assert reply["ok"]
    finally:
        host.kill()


def test_cancel_stops_the_transfer(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(8 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=1 << 20))
    host = HostProcess(home)
    try:
        host.send(
            {"id": 7, "method": "models.load", "params": load_params(url, data), "context": PAGE_A}
        )
        host.recv()  # progress: running
        # Another site cannot cancel it.
        other = host.result("models.cancel", {"request_id": 7}, context=PAGE_B)
        assert other == {"cancelled": False}
        assert host.result("models.cancel", {"request_id": 7}, context=PAGE_A) == {
            "cancelled": True
        }
        _, reply = collect(host, 7)
        assert reply["error"]["code"] == "cancelled"
        deadline = time.monotonic() + 10
        while host.result("manage.jobs")["jobs"][0]["state"] != "cancelled":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # one read in flight may finish
        sent = model_server.bytes_sent("/m.bin")
        time.sleep(1.0)
        assert model_server.bytes_sent("/m.bin") == sent < len(data)  # the transfer stopped
        assert blob_files(home) == []
    finally:
        host.kill()


def test_prefetch_goes_on_when_the_requester_cancels(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(3 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=3 << 20))
    host = HostProcess(home)
    try:
        params = load_params(url, data, prefetch=True)
        host.send({"id": 3, "method": "models.load", "params": params, "context": PAGE_A})
        host.recv()
        host.result("models.cancel", {"request_id": 3}, context=PAGE_A)
        deadline = time.monotonic() + 20
        while host.result("manage.jobs")["jobs"][0]["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len(blob_files(home)) == 1
    finally:
        host.kill()


def test_four_hosts_share_one_transfer(home: Path, model_server: ModelServer) -> None:
    # One site in four browsers (four host processes): one transfer. Four different
    # sites would get four (tests/fetch/test_job_scopes.py): a job is one partition's.
    data = os.urandom(6 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=6 << 20, times=None))
    hosts = [HostProcess(home) for _ in range(4)]
    try:
        for host in hosts:
            host.send(
                {
                    "id": 1,
                    "method": "models.load",
                    "params": load_params(url, data),
                    "context": PAGE_A,
                }
            )
        replies = [collect(host, 1)[1] for host in hosts]
        assert all(r["ok"] for r in replies), replies
        assert model_server.transfers("/m.bin") == 1
        assert model_server.bytes_sent("/m.bin") == len(data)
        sites = hosts[0].result("manage.list")["models"][0]["sites"]
        assert len(sites) == 1  # the site holds it
    finally:
        for host in hosts:
            host.kill()


@pytest.mark.slow
def test_sigkill_ten_times_then_complete(home: Path, model_server: ModelServer) -> None:
    size = 50 * 1000 * 1000
    data = random.Random(7).randbytes(size)
    url = model_server.add("/big.bin", data)
    model_server.fault("/big.bin", Fault(kind="slow", rate=10 << 20, times=None))
    rng = random.Random(42)
    params = load_params(url, data)
    kept: list[int] = []  # bytes on disk after each kill
    begun: list[int] = []  # the server's request count as each host starts
    # Ten: `scripts/stress --only kills` kills downloads 22 times more in CI.
    for _ in range(10):
        begun.append(len(model_server.requests))
        host = HostProcess(home)
        host.send({"id": 1, "method": "models.load", "params": params, "context": PAGE_A})
        await_bytes(host)  # bytes are flowing
        time.sleep(rng.uniform(0.0, 0.25))  # a random point of the transfer
        os.kill(host.proc.pid, signal.SIGKILL)
        host.proc.wait()
        assert blob_files(home) == []  # never a partial or unverified blob
        kept.append(sum(p.stat().st_size for p in (home / "store-v2" / "tmp").glob("dl-*")))
    model_server.clear_faults("/big.bin")  # the kills are done: the rest at full speed
    begun.append(len(model_server.requests))
    host = HostProcess(home)
    try:
        host.send({"id": 1, "method": "models.load", "params": params, "context": PAGE_A})
        _, reply = collect(host, 1, timeout=120)
        assert reply["ok"], reply
    finally:
        host.kill()
    [blob] = blob_files(home)
    assert hashlib.sha256(read_held(home, blob)).hexdigest() == hashlib.sha256(data).hexdigest()
    requests = list(model_server.requests)
    gets = [r for r in requests if r.method == "GET"]
    # Where each host's first GET started (the first host's: 0).
    starts = [next(_start(r) for r in requests[i:] if r.method == "GET") for i in begun]
    sent = model_server.bytes_sent("/big.bin")
    print(
        f"10 kills: {sum(1 for r in gets if r.range)} resumed requests, server sent "
        f"{sent / size:.3f}x the file; on disk after each kill: {kept}"
    )
    # It really resumed, not restarted: each request starts where the bytes on disk
    # ended (less at most the one chunk a killed host may lose), never back at zero
    # once something was kept. The bytes the server sent beyond the file are those the
    # kernel's socket buffers held at each kill, which grow with the machine's load.
    assert kept[-1] > 0 and starts == sorted(starts)
    for before, start in zip(kept, starts[1:], strict=False):
        assert start >= before - (256 << 10), (before, start)
    assert sent < 2 * size


def _start(request: RequestRecord) -> int:
    return int(request.range.removeprefix("bytes=").split("-")[0]) if request.range else 0


def test_restarted_host_resumes_without_being_asked(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(4 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=4 << 20, times=None))
    host = HostProcess(home)
    host.send(
        {"id": 1, "method": "models.load", "params": load_params(url, data), "context": PAGE_A}
    )
    await_bytes(host)
    os.kill(host.proc.pid, signal.SIGKILL)
    host.proc.wait()
    again = HostProcess(home)  # nobody asks; the job is the host's, not the request's
    try:
        deadline = time.monotonic() + 30
        while not blob_files(home):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert any(r.range for r in model_server.requests)
        assert model_server.bytes_sent("/m.bin") < 1.5 * len(data)
    finally:
        again.kill()


def test_offline(home: Path, tmp_path: Path, model_server: ModelServer) -> None:
    stored = tiny_model(tmp_path / "a.onnx", seed=1).read_bytes()
    missing = tiny_model(tmp_path / "b.onnx", seed=2).read_bytes()
    url_a = model_server.add("/a.onnx", stored)
    url_b = model_server.add("/b.onnx", missing)
    host = HostProcess(home)
    try:
        assert host.call("models.load", load_params(url_a, stored), context=PAGE_A)["ok"]
        model_server.stop()
        again = host.call("models.load", load_params(url_a, stored), context=PAGE_A)
        assert (
            again["ok"] and again["result"]["model"]["sha256"] == hashlib.sha256(stored).hexdigest()
        )
        started = time.monotonic()
        reply = host.call("models.load", load_params(url_b, missing), context=PAGE_A)
        # The page chose the URL: unreachable reads as any other failure to it
        # (fetch/access.py), still at once.
        assert reply["error"]["code"] == "download_failed"
        assert time.monotonic() - started < 3
    finally:
        host.kill()


def test_cli_pull(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(1 << 20)
    url = model_server.add("/m.bin", data)
    digest = hashlib.sha256(data).hexdigest()
    out = run_cli(home, "--json", "pull", url, "--sha256", digest)
    assert '"downloaded"' in out.stdout and digest in out.stdout
    again = run_cli(home, "pull", url, "--integrity", integrity(data))
    assert "already stored" in again.stdout
    assert model_server.transfers("/m.bin") == 1
    bad = run_cli(home, "pull", url, "--sha256", "0" * 64, check=False)
    assert bad.returncode == 1 and "integrity_mismatch" in bad.stderr


def test_cli_pull_background(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(2 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=4 << 20))
    digest = hashlib.sha256(data).hexdigest()
    out = run_cli(home, "pull", "--background", url, "--sha256", digest)
    assert "background" in out.stdout  # returned before the download finished
    deadline = time.monotonic() + 30
    while "done" not in run_cli(home, "jobs").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert digest[:12] in run_cli(home, "ls").stdout


def test_disk_full_leaves_the_store_unchanged(tmp_path: Path, model_server: ModelServer) -> None:
    home = tmp_path / "small"
    home.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(home)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        small = tiny_model(tmp_path / "small.onnx", seed=5).read_bytes()
        big = os.urandom(4 << 20)
        host = HostProcess(home)
        try:
            url_small, url_big = model_server.add("/s.onnx", small), model_server.add("/b", big)
            assert host.call("models.load", load_params(url_small, small), context=PAGE_A)["ok"]
            before = host.result("manage.list")["models"]
            # A page may not fill the disk (it keeps 10 % of it free); the user may try.
            page = host.call("models.load", load_params(url_big, big), context=PAGE_A)
            assert page["error"]["code"] == "quota_exceeded"
            reply = host.call("models.load", load_params(url_big, big))
            assert reply["error"]["code"] == "disk_full"
            assert host.result("manage.list")["models"] == before
            assert len(blob_files(home)) == 1
            assert list((home / "store-v2" / "tmp").iterdir()) == []
        finally:
            host.kill()
    finally:
        # Lazily: a child the host started may still hold a file there for a moment.
        subprocess.run(["umount", "-l", str(home)], check=False)
