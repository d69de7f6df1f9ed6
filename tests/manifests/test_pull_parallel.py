"""``webmodels pull`` of a model of several files at scale, from a real loopback HTTP
server into a real store: the files download at once (not one after the other), a
``--background`` pull records a job per file and stores the manifest when the last
one lands (resuming what a killed pull left), and a model that cannot fit (the
store's quota, the disk's free space) is refused whole before any transfer (checked
in-process: ``pull`` and ``pull --background`` both call the same check)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.host import run_cli, webmodels_env
from support.httpserver import Fault, ModelServer
from support.manifest_models import matmul_chain
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.pulling import FileSource, pull_files
from webmodels.store.manifests import StoredManifest, list_manifests
from webmodels.store.store import Store

WIDTH = 256  # 4 layers of 256 x 256 float32: 1 MiB of external data


def served(server: ModelServer, tmp_path: Path) -> dict[str, tuple[str, str, int]]:
    """model.onnx, model.onnx_data and a config file: path → (url, sha256, size)."""
    graph = matmul_chain(tmp_path / "model", width=WIDTH)
    (graph.parent / "config.json").write_bytes(b'{"hidden": 256}' + b" " * 100_000)
    files = {}
    for path in (graph, graph.parent / "model.onnx_data", graph.parent / "config.json"):
        data = path.read_bytes()
        url = server.add(f"/m/{path.name}", data, content_type="application/octet-stream")
        files[path.name] = (url, hashlib.sha256(data).hexdigest(), len(data))
    return files


def pull_argv(files: dict[str, tuple[str, str, int]]) -> list[str]:
    argv = ["pull", *(url for url, _, _ in files.values()), "--name", "t/chain@1.0.0"]
    for _, sha, _ in files.values():
        argv += ["--sha256", sha]
    return argv


def manifests(home: Path) -> list[StoredManifest]:
    with Store(home / "store-v2") as store:
        return list_manifests(store.index)


def test_files_download_at_once_and_a_background_pull_stores_the_model(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    files = served(model_server, tmp_path)
    for name, (_, _, size) in files.items():  # each file stops halfway, once
        model_server.fault(f"/m/{name}", Fault(kind="stall", after_bytes=size // 2, seconds=60))
    first = subprocess.Popen(
        [sys.executable, "-m", "webmodels", *pull_argv(files)],
        env=webmodels_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # every file is half sent while none is complete: they run at the same time
        deadline = time.monotonic() + 30
        while any(model_server.bytes_sent(f"/m/{n}") < s // 2 for n, (_, _, s) in files.items()):
            assert first.poll() is None, "the pull ended"
            assert time.monotonic() < deadline, "the files were not downloaded at once"
            time.sleep(0.05)
        time.sleep(0.3)  # the received halves reach the partial files
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    started = json.loads(run_cli(home, "--json", *pull_argv(files), "--background").stdout)
    assert started["background"] is True and len(started["jobs"]) == 3
    [listed] = json.loads(run_cli(home, "--json", "jobs").stdout)  # one model of 3 files
    assert {j["sha256"] for j in listed["files"]} == {sha for _, sha, _ in files.values()}
    deadline = time.monotonic() + 60
    while not manifests(home):  # the detached runner saves it when the last file lands
        assert time.monotonic() < deadline, "no manifest after the background pull"
        time.sleep(0.2)
    [stored] = manifests(home)
    assert (stored.name, stored.version) == ("t/chain", "1.0.0")
    roles = {e.path: e.role for e in stored.manifest.entries}
    assert roles == {
        "model.onnx": "graph",
        "model.onnx_data": "external_data",
        "config.json": "config",  # by its name, as `import` gives it
    }
    ranges = [r.range for r in model_server.requests if r.path == "/m/model.onnx_data"]
    assert any(r is not None and not r.startswith("bytes=0-") for r in ranges)  # resumed


def sources(files: dict[str, tuple[str, str, int]], scale: int | None) -> list[FileSource]:
    """The files as a catalog entry lists them, declared sizes times ``scale`` (None:
    no sizes, as ``pull URL1 URL2``: the servers' HEAD replies tell them)."""
    return [
        FileSource(path, Digest(sha), (url,), None if scale is None else size * scale)
        for path, (url, sha, size) in files.items()
    ]


def file_requests(server: ModelServer) -> list[str]:
    return [r.path for r in server.requests if r.path.startswith("/m/") and r.method == "GET"]


def test_a_model_that_cannot_fit_is_refused_before_any_transfer(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    files = served(model_server, tmp_path)
    total = sum(size for _, _, size in files.values())
    huge = 1 << 30  # declared sizes of ~100 TiB in all: more than any disk here has
    with Store(home / "store-v2") as store:
        with pytest.raises(HostError) as over_quota:
            pull_files(store, sources(files, 1), waiter="t", quota=total - 1)
        with pytest.raises(HostError) as no_sizes_over_quota:
            pull_files(store, sources(files, None), waiter="t", quota=total - 1)
        with pytest.raises(HostError) as over_disk:
            pull_files(store, sources(files, huge), waiter="t")
    assert over_quota.value.code == "quota_exceeded"
    assert f"({total} bytes)" in over_quota.value.message  # the whole model's figure
    assert no_sizes_over_quota.value.message == over_quota.value.message
    assert over_disk.value.code == "disk_full"
    assert f"({total * huge} bytes)" in over_disk.value.message
    assert file_requests(model_server) == [] and manifests(home) == []
