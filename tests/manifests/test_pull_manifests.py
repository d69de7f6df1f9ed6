"""``webmodels pull`` of a model made of several files, from a real loopback HTTP
server into a real store: several URLs with their hashes (``--name``), and a catalog
entry that lists ``files``; a pull killed mid-file resumes with an HTTP range at the
next pull; hostile ``files`` entries refuse the whole catalog."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.catalogs import CatalogSigner
from support.host import run_cli, webmodels_env
from support.httpserver import Fault, ModelServer
from support.manifest_models import matmul_chain
from webmodels.catalogs.documents import parse_payload
from webmodels.errors import HostError
from webmodels.store.manifests import StoredManifest, list_manifests
from webmodels.store.store import Store

WIDTH = 256  # 4 layers of 256 x 256 float32: 1 MiB of external data


def served(server: ModelServer, tmp_path: Path) -> dict[str, tuple[str, str, int]]:
    """model.onnx and model.onnx_data on the server: path → (url, sha256, size)."""
    graph = matmul_chain(tmp_path / "model", width=WIDTH)
    files = {}
    for path in (graph, graph.parent / "model.onnx_data"):
        data = path.read_bytes()
        url = server.add(f"/m/{path.name}", data, content_type="application/octet-stream")
        files[path.name] = (url, hashlib.sha256(data).hexdigest(), len(data))
    return files


def manifests(home: Path) -> list[StoredManifest]:
    with Store(home / "store-v2") as store:
        return list_manifests(store.index)


def test_pull_of_several_urls_stores_one_named_model_and_resumes_after_a_kill(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    files = served(model_server, tmp_path)
    data_url, data_sha, data_size = files["model.onnx_data"]
    half = data_size // 2
    model_server.fault("/m/model.onnx_data", Fault(kind="stall", after_bytes=half, seconds=60))
    argv = ["pull", files["model.onnx"][0], data_url, "--name", "t/chain@1.0.0"]
    argv += ["--sha256", files["model.onnx"][1], "--sha256", data_sha]
    first = subprocess.Popen(
        [sys.executable, "-m", "webmodels", *argv],
        env=webmodels_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while model_server.bytes_sent("/m/model.onnx_data") < half:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the received half reaches the partial file
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    pulled = json.loads(run_cli(home, "--json", *argv).stdout)
    roles = {f["path"]: (f["sha256"], f["role"]) for f in pulled["manifest"]["files"]}
    assert roles == {
        "model.onnx": (files["model.onnx"][1], "graph"),
        "model.onnx_data": (data_sha, "external_data"),
    }
    ranges = [r.range for r in model_server.requests if r.path == "/m/model.onnx_data"]
    print(f"\ndata file requests: {ranges}")
    assert any(r is not None and not r.startswith("bytes=0-") for r in ranges)  # resumed
    [stored] = manifests(home)
    assert (stored.name, stored.version) == ("t/chain", "1.0.0")
    assert stored.manifest.digest.hex == pulled["manifest"]["sha256"]


def test_a_catalog_entry_with_files_is_pulled_as_one_model(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    files = served(model_server, tmp_path)
    roles = {"model.onnx": "graph", "model.onnx_data": "external_data"}
    listed = [
        {"path": f"onnx/{p}", "url": url, "sha256": sha, "size": size, "role": roles[p]}
        for p, (url, sha, size) in files.items()
    ]
    signer = CatalogSigner("acme")
    document = signer.sign(1, [{"name": "acme/chain", "version": "1.2.0", "files": listed}])
    url = model_server.add("/catalog.json", document, content_type="application/json")
    run_cli(home, "catalog", "add", url, "--key", signer.public)
    shown = pull_on_a_terminal(home, "acme/chain@^1")
    # A progress line per file and one for the whole model, then the files.
    assert "2 files" in shown.stderr and "onnx/model.onnx_data" in shown.stderr
    assert "pulled acme/chain@1.2.0: 2 files" in shown.stdout
    [stored] = manifests(home)
    assert (stored.name, stored.version) == ("acme/chain", "1.2.0")
    with Store(home / "store-v2") as store:
        assert all(store.locate(e.digest).size == e.size for e in stored.manifest.entries)


@dataclass
class Shown:
    stdout: str
    stderr: str


def pull_on_a_terminal(home: Path, *args: str) -> Shown:
    """``webmodels pull`` with stderr on a pseudo-terminal (where progress is drawn)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmodels", "pull", *args],
        env={**webmodels_env(home), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    drawn = bytearray()
    reader = threading.Thread(target=_drain, args=(leader, drawn), daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(leader)
    assert proc.returncode == 0, drawn.decode(errors="replace")
    return Shown(stdout, drawn.decode(errors="replace"))


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            return
        if not chunk:
            return
        into += chunk


GOOD = {"path": "model.onnx", "url": "https://example.com/m.onnx", "sha256": "a" * 64}


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ([{**GOOD, "size": 1, "role": "graph", "path": "../model.onnx"}], "'..'"),
        ([{**GOOD, "size": 1, "role": "graph", "path": "/etc/passwd"}], "absolute"),
        (
            [
                {**GOOD, "size": 1, "role": "graph"},
                {**GOOD, "size": 1, "role": "other", "path": "MODEL.onnx"},
            ],
            "the same file",
        ),
        ([{**GOOD, "size": 1, "role": "graph", "url": "file:///etc/passwd"}], "http(s) url"),
        ([{**GOOD, "size": 1, "role": "secret"}], "role must be"),
        ([{**GOOD, "size": -1, "role": "graph"}], "every file needs a size"),
        ([{**GOOD, "size": 1, "role": "graph", "sha256": "nope"}], "sha256"),
        ([], "1 to 4096"),
        ({"files": [{**GOOD, "size": 1, "role": "graph"}], "size": 2}, "the files' total"),
        ({"files": [{**GOOD, "size": 1, "role": "graph"}], "urls": [GOOD["url"]]}, "no urls"),
        ("model.onnx", "1 to 4096"),
    ],
)
def test_hostile_files_entries_refuse_the_catalog(files: object, why: str) -> None:
    payload = {
        "catalog": "acme",
        "version": 1,
        "expires": "2099-01-01T00:00:00Z",
        "models": [{"name": "acme/chain", "version": "1.0.0", **_fields(files)}],
    }
    with pytest.raises(HostError) as refused:
        parse_payload(json.dumps(payload).encode())
    assert refused.value.code == "bad_request" and why in refused.value.message


def _fields(files: object) -> dict[str, object]:
    """An entry's fields: ``files``, or (a dict with ``files``) more fields beside it."""
    return dict(files) if isinstance(files, dict) else {"files": files}
