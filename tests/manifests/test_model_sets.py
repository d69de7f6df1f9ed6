"""A model of several files is one download, through a real host process, the real
CLI and a real loopback HTTP server.

A page loads ``{files}`` with their URLs, or a catalog name whose entry lists
``files``: it gets one progress stream for the model (sums over its files, plus which
file moved); the model is judged whole against the partition's quota before any
transfer; and another site sees neither the set's progress nor that it is being
downloaded (``models.availability``). A ``pull --background`` of several files is one
entry of ``webmodels jobs`` (its files under it, progress summed, a failed file named),
and a host that finishes its last file saves the model."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.catalogs import CatalogSigner
from support.host import HostProcess, run_cli
from support.httpserver import Fault, ModelServer
from support.manifest_models import matmul_chain
from webmodels.digest import Digest
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest
from webmodels.manifests.job_sets import by_model, tag
from webmodels.manifests.pending import remember
from webmodels.manifests.pulling import FileSource
from webmodels.store.manifests import list_manifests
from webmodels.store.store import Store

WIDTH = 256  # 4 layers of 256 x 256 float32: 1 MiB of external data
ROLES = {"model.onnx": "graph", "model.onnx_data": "external_data", "config.json": "config"}


def page(site: str) -> dict[str, Any]:
    origin = f"http://{site}.localhost:8000"
    return {
        "partition": {"top_site": origin, "origin": origin},
        "user_activation": True,
        "trusted": False,
    }


Served = dict[str, tuple[str, str, int]]  # path -> (url, sha256, size)


def served(server: ModelServer, tmp_path: Path) -> Served:
    graph = matmul_chain(tmp_path / "model", width=WIDTH)
    (graph.parent / "config.json").write_bytes(b'{"hidden": 256}' + b" " * 600_000)
    files = {}
    for path in (graph, graph.parent / "model.onnx_data", graph.parent / "config.json"):
        data = path.read_bytes()
        url = server.add(f"/m/{path.name}", data, content_type="application/octet-stream")
        files[path.name] = (url, hashlib.sha256(data).hexdigest(), len(data))
    return files


def files_query(files: Served) -> dict[str, Any]:
    return {p: {"sha256": sha, "url": url, "size": size} for p, (url, sha, size) in files.items()}


def add_catalog(home: Path, server: ModelServer, files: Served) -> None:
    listed = [
        {"path": p, "url": url, "sha256": sha, "size": size, "role": ROLES[p]}
        for p, (url, sha, size) in files.items()
    ]
    signer = CatalogSigner("acme")
    document = signer.sign(1, [{"name": "acme/chain", "version": "1.2.0", "files": listed}])
    url = server.add("/catalog.json", document, content_type="application/json")
    run_cli(home, "catalog", "add", url, "--key", signer.public)


def collect(host: HostProcess, request_id: int, timeout: float = 60) -> tuple[list[Any], Any]:
    """Events for `request_id`, then its reply; messages of other requests are kept."""
    events, deadline = [], time.monotonic() + timeout
    while True:
        message = host.recv(timeout=max(0.1, deadline - time.monotonic()))
        if message.get("id") != request_id:
            host.seen.append(message)
            continue
        if "event" in message:
            events.append(message)
        else:
            return events, message


@pytest.fixture
def host(home: Path) -> Iterator[HostProcess]:
    proc = HostProcess(home)
    proc.seen = []  # type: ignore[attr-defined]
    yield proc
    proc.kill()


def availability(host: HostProcess, site: str) -> str:
    query = {"query": {"name": "acme/chain", "version": "^1"}}
    return str(host.result("models.availability", query, context=page(site))["availability"])


def test_a_page_loads_files_by_url_as_one_model_progress_and_quota(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    files = served(model_server, tmp_path)
    whole = sum(size for _, _, size in files.values())
    # Room for this model and 700 kB more: each file of the next one fits, not both;
    # and each may be started without a gesture, not both.
    (home / "no-config.toml").write_text(
        f"quota_per_partition_bytes = {whole + 700_000}\n"
        "download_without_activation_bytes = 500000\n"
    )
    host = HostProcess(home)
    try:
        load_with_progress(host, model_server, files)
        more = {name: os.urandom(400_000) for name in ("a.bin", "b.bin")}
        query = {
            name: {
                "sha256": hashlib.sha256(data).hexdigest(),
                "url": model_server.add(f"/n/{name}", data),
                "size": len(data),
            }
            for name, data in more.items()
        }
        reply = host.call("models.load", {"query": {"files": query}}, context=page("a"))
        no_gesture = {**page("a"), "user_activation": False}
        refused = host.call("models.load", {"query": {"files": query}}, context=no_gesture)
    finally:
        host.kill()
    assert not refused["ok"] and refused["error"]["code"] == "user_activation_required"
    assert not reply["ok"] and reply["error"]["code"] == "quota_exceeded", reply
    assert reply["error"]["details"] == {"needed": 800_000}  # the model's total, no room figure
    assert not [r for r in model_server.requests if r.path.startswith("/n/")]  # nothing fetched


def load_with_progress(host: HostProcess, model_server: ModelServer, files: Served) -> None:
    model_server.fault("/m/model.onnx_data", Fault(kind="slow", rate=2 << 20))  # ~0.5 s
    started = time.monotonic()
    host.send(
        {
            "id": 1,
            "method": "models.load",
            "params": {"query": {"files": files_query(files)}},
            "context": page("a"),
        }
    )
    events, reply = collect(host, 1)
    print(f"\nload of 3 files: {time.monotonic() - started:.2f} s, {len(events)} events")
    assert reply["ok"], reply
    model = reply["result"]["model"]
    assert {p: f["sha256"] for p, f in model["files"].items()} == {
        p: sha for p, (_, sha, _) in files.items()
    }
    whole = sum(size for _, _, size in files.values())
    assert all(e["event"] == "download.progress" for e in events)
    loaded = [e["loaded"] for e in events]
    assert loaded == sorted(loaded) and loaded[-1] == whole  # one stream, summed
    assert events[-1]["total"] == whole
    assert {e["file"]["path"] for e in events} == set(files)  # which file moved
    for event in events:
        _, _, size = files[event["file"]["path"]]
        assert event["file"]["total"] in (None, size) and event["file"]["loaded"] <= size
    # For the user (the popup's manage.jobs) the files' jobs are one model's.
    jobs = host.result("manage.jobs", {})["jobs"]
    assert {j["sha256"]: j["model"]["path"] for j in jobs} == {
        sha: path for path, (_, sha, _) in files.items()
    }
    assert len({j["model"]["id"] for j in jobs}) == 1 and jobs[0]["model"]["files"] == 3
    # The page now holds every file: the same load answers at once, with no events.
    again = host.result("models.load", {"query": {"files": files_query(files)}}, context=page("a"))
    assert again["model"]["files"] == model["files"]


def test_another_site_sees_neither_the_sets_download_nor_its_progress(
    home: Path, tmp_path: Path, model_server: ModelServer, host: HostProcess
) -> None:
    files = served(model_server, tmp_path)
    add_catalog(home, model_server, files)
    _, _, data_size = files["model.onnx_data"]
    # The data file stops halfway until the server stops: the set stays in flight.
    model_server.fault(
        "/m/model.onnx_data", Fault(kind="stall", after_bytes=data_size // 2, times=None)
    )
    assert availability(host, "a") == availability(host, "b") == "downloadable"
    query = {"query": {"name": "acme/chain", "version": "^1"}}
    host.send({"id": 7, "method": "models.load", "params": query, "context": page("a")})
    deadline = time.monotonic() + 30
    while model_server.bytes_sent("/m/model.onnx_data") < data_size // 2:  # A's set in flight
        assert time.monotonic() < deadline, "the data file was not requested"
        time.sleep(0.05)
    assert availability(host, "a") == "downloading"
    assert availability(host, "b") == "downloadable"  # as if A never asked
    cancelled = host.result("models.cancel", {"request_id": 7}, context=page("a"))
    assert cancelled == {"cancelled": True}
    _, reply = collect(host, 7)
    assert not reply["ok"] and reply["error"]["code"] == "cancelled"
    assert availability(host, "a") == "downloadable"  # every file's transfer stopped
    # Loaded again, the set resumes and lands as the catalog's model, named; still
    # nothing for B.
    model_server.clear_faults()
    host.send({"id": 8, "method": "models.load", "params": query, "context": page("a")})
    events, reply = collect(host, 8)
    assert reply["ok"], reply
    model = reply["result"]["model"]
    assert (model["name"], model["version"], model["graph"]) == (
        "acme/chain",
        "1.2.0",
        "model.onnx",
    )
    assert {p: f["role"] for p, f in model["files"].items()} == ROLES
    assert events and events[-1]["loaded"] == events[-1]["total"]
    assert availability(host, "a") == "available"
    assert availability(host, "b") == "downloadable"
    assert manifests(home) == []  # no row another site's load of the name could time
    # Everything sent while A loaded was for A's own requests.
    assert all(m.get("id") in (7, 8) for m in host.seen if "event" in m)  # type: ignore[attr-defined]


def test_a_background_pull_is_one_job_entry_and_a_host_finishes_it(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    files = served(model_server, tmp_path)
    sources = [
        FileSource(path, Digest(sha), (url,), size) for path, (url, sha, size) in files.items()
    ]
    with Store(home / "store-v2") as store:  # what `pull --background` records; no runner
        remember(store, sources, name="t/chain", version="1.0.0")
        manager = JobManager(store)
        for s in sources:
            manager.join(DownloadRequest(s.digest, s.urls, waiter="", size=s.size, background=True))
        [entry] = by_model(tag(store, manager.list_jobs()))  # one model, not 3 files
    assert (entry["kind"], entry["name"], entry["version"]) == ("model", "t/chain", "1.0.0")
    assert {f["path"] for f in entry["files"]} == set(files) and entry["state"] == "active"
    host = HostProcess(home)  # takes the jobs over, and saves the model after the last

    def model_line() -> str:
        table = run_cli(home, "jobs").stdout  # one line for the model, then its files
        assert "t/chain@1.0.0 (3 files)" in table and "  model.onnx_data: http" in table
        [line] = [row for row in table.splitlines() if "(3 files)" in row]
        return line

    try:
        # The model is saved when its last file is stored, and that file's job is marked
        # done just after: wait for both while the host runs (a host killed in between
        # leaves the job to the next one, which finds the file stored).
        deadline = time.monotonic() + 60
        while not manifests(home) or " done " not in (line := model_line()):
            assert time.monotonic() < deadline, "the host did not finish the model"
            time.sleep(0.2)
    finally:
        host.kill()
    [stored] = manifests(home)
    assert (stored.name, stored.version) == ("t/chain", "1.0.0")
    assert " done " in line and "(100%)" in line


def test_a_failed_file_fails_its_model_naming_the_file(home: Path) -> None:
    digests = [Digest(hashlib.sha256(n.encode()).hexdigest()) for n in ("g", "d")]
    sources = [
        FileSource("model.onnx", digests[0], ("http://127.0.0.1:1/g",), 10),
        FileSource("model.onnx_data", digests[1], ("http://127.0.0.1:1/d",), 20),
    ]
    job = {"urls": [], "background": True, "running": False, "interrupted": False}
    jobs = [
        {
            **job,
            "id": "2",
            "sha256": digests[1].hex,
            "state": "failed",
            "loaded": 5,
            "total": 20,
            "error": {"code": "download_failed", "message": "HTTP 404"},
        },
        {
            **job,
            "id": "1",
            "sha256": digests[0].hex,
            "state": "done",
            "loaded": 10,
            "total": 10,
            "error": None,
        },
    ]
    with Store(home / "store-v2") as store:
        remember(store, sources, name="t/chain", version="1.0.0")
        [entry] = by_model(tag(store, jobs))
    assert entry["state"] == "failed" and (entry["loaded"], entry["total"]) == (15, 30)
    assert entry["error"] == {
        "code": "download_failed",
        "message": "HTTP 404",
        "file": "model.onnx_data",
    }


def manifests(home: Path) -> list[Any]:
    with Store(home / "store-v2") as store:
        return list(list_manifests(store.index))
