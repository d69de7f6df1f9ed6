"""Pages load multi-file models through ``models.load``, with a real host and its real
ONNX Runtime worker: a stored manifest by name (``{name, version}``) gives the page
its files, over which it creates a session; a site that may not see every file of it
gets exactly the answer of an absent name; ``load({files}, {compile: true})`` queues a
background compile of the set in the page's own scope."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.host import HostProcess
from support.manifest_models import matmul_chain, reference_run
from support.runtime_models import wire
from webmodels.manifests.importing import import_model_files
from webmodels.store.store import Store

WIDTH = 256  # 4 layers of 256 x 256 float32: 1 MiB of external data
NAME = {"name": "t/chain", "version": "^1.0.0"}


def page(site: str) -> dict[str, Any]:
    origin = f"http://{site}.localhost:8000"
    return {
        "partition": {"top_site": origin, "origin": origin},
        "user_activation": True,
        "trusted": False,
    }


def upload(host: HostProcess, data: bytes, context: dict[str, Any]) -> str:
    """Store bytes for a partition through Cross-Origin Storage (as a page would)."""
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=context)
    chunk = {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()}
    host.result("cos.write.chunk", chunk, context=context)
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)
    return digest


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return matmul_chain(tmp_path / "model", width=WIDTH)


@pytest.fixture
def host(home: Path) -> Iterator[HostProcess]:
    # Background compiles at once, after 0.2 s without page requests.
    (home / "no-config.toml").write_text(
        "[sessions]\nbackground_delay_s = 0\nbackground_idle_s = 0.2\n"
    )
    proc = HostProcess(home)
    yield proc
    proc.kill()


def import_named(home: Path, model: Path) -> None:
    """The user imports the model as t/chain 1.0.0 (as `webmodels import --name`)."""
    with Store(home / "store-v2") as store:
        import_model_files(store, model, name="t/chain", version="1.0.0")


def test_a_page_loads_a_stored_manifest_by_name_and_asks_for_a_compile(
    home: Path, host: HostProcess, model: Path
) -> None:
    files = {
        "model.onnx": {"sha256": upload(host, model.read_bytes(), page("a"))},
        "model.onnx_data": {
            "sha256": upload(host, (model.parent / "model.onnx_data").read_bytes(), page("a"))
        },
    }
    # load({files}, {compile: true}): checked now, compiled in the background in A's scope.
    params = {"query": {"files": files}, "compile": True}
    loaded = host.result("models.load", params, context=page("a"))["model"]
    assert loaded["files"]["model.onnx"]["sha256"] == files["model.onnx"]["sha256"]
    other = host.call("models.load", params, context=page("b"))
    assert other["error"]["code"] == "not_found"  # B never stored them
    graph = files["model.onnx"]["sha256"][:12]
    deadline = time.monotonic() + 60
    while f"compiled {graph}" not in host.logged():
        assert "failed" not in host.logged() and time.monotonic() < deadline
        time.sleep(0.1)

    import_named(home, model)
    loaded = host.result("models.load", {"query": NAME}, context=page("a"))["model"]
    assert (loaded["name"], loaded["version"], loaded["graph"]) == (
        "t/chain",
        "1.0.0",
        "model.onnx",
    )
    assert {p: f["role"] for p, f in loaded["files"].items()} == {
        "model.onnx": "graph",
        "model.onnx_data": "external_data",
    }
    params = {"files": loaded["files"], "graph": loaded["graph"]}
    created = host.result("sessions.create", params, context=page("a"))
    assert created["compiled_cache_hit"] is True  # the compile load() asked for
    x = np.random.default_rng(3).standard_normal((1, WIDTH)).astype(np.float32)
    run = {"session_id": created["session_id"], "feeds": {"x": wire("float32", x)}}
    y = host.result("sessions.run", run, context=page("a"))["outputs"]["y"]
    got = np.frombuffer(base64.b64decode(y["data"]), np.float32).reshape(y["dims"])
    np.testing.assert_allclose(got, reference_run(model, x), rtol=1e-5)


def test_a_site_that_cannot_see_every_file_gets_the_absent_answer(
    home: Path, host: HostProcess, model: Path
) -> None:
    absent = host.call("models.load", {"query": NAME}, context=page("b"))
    upload(host, model.read_bytes(), page("c"))  # C stored the graph, not its data
    import_named(home, model)
    hidden = host.call("models.load", {"query": NAME}, context=page("b"))
    partly = host.call("models.load", {"query": NAME}, context=page("c"))
    assert absent["error"]["code"] == "not_found"
    assert hidden["error"] == absent["error"] == partly["error"]
    assert host.result("models.load", {"query": NAME})["model"]["name"] == "t/chain"  # the user
