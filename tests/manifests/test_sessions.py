"""Host sessions over multi-file models, through a real host and its real ONNX Runtime
worker: a manifest the user imported, and files a page stored one by one through
Cross-Origin Storage and groups by hash (as Transformers.js stores model.onnx and
model.onnx_data). Outputs equal in-process ONNX Runtime; each unsafe grouping is
refused with its documented error, and a file the page cannot see is answered
exactly like an absent one."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.contexts import PAGE_A, PAGE_B
from support.host import HostProcess, run_cli
from support.manifest_models import matmul_chain, reference_run, with_location
from support.runtime_models import wire

WIDTH = 512  # 4 layers of 512 x 512 float32: 4 MiB of external data


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upload(host: HostProcess, data: bytes, context: dict[str, Any]) -> str:
    """Store bytes for a partition through Cross-Origin Storage (as a page would)."""
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=context)
    chunk = {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()}
    host.result("cos.write.chunk", chunk, context=context)
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)
    return digest


def run_output(host: HostProcess, session_id: str, x: np.ndarray, **fields: Any) -> np.ndarray:
    params = {"session_id": session_id, "feeds": {"x": wire("float32", x)}}
    out = host.result("sessions.run", params, **fields)["outputs"]["y"]
    return np.frombuffer(base64.b64decode(out["data"]), np.float32).reshape(out["dims"])


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return matmul_chain(tmp_path / "model", width=WIDTH)


@pytest.fixture
def host(home: Path) -> Iterator[HostProcess]:
    proc = HostProcess(home)
    yield proc
    proc.kill()


def error(reply: dict[str, Any]) -> dict[str, Any]:
    assert not reply["ok"], reply
    return dict(reply["error"])


def test_a_session_over_an_imported_manifest_equals_in_process_ort(
    home: Path, host: HostProcess, model: Path
) -> None:
    imported = json.loads(run_cli(home, "--json", "import", str(model), "--name", "t/chain").stdout)
    manifest = imported[0]["manifest"]["sha256"]
    x = np.random.default_rng(1).standard_normal((1, WIDTH)).astype(np.float32)
    expected = reference_run(model, x)
    for name in (manifest, "t/chain"):
        created = host.result("sessions.create", {"manifest": name})
        assert [i["name"] for i in created["inputs"]] == ["x"]
        np.testing.assert_allclose(run_output(host, created["session_id"], x), expected, rtol=1e-5)
    # The graph alone still is no model: its weights are in a file it cannot carry.
    graph = next(f for f in imported[0]["manifest"]["files"] if f["role"] == "graph")
    assert error(host.call("sessions.create", {"sha256": graph["sha256"]}))["code"] == (
        "model_unsafe"
    )


def test_a_page_groups_files_it_stored_through_cos(host: HostProcess, model: Path) -> None:
    graph = upload(host, model.read_bytes(), PAGE_A)
    data = upload(host, (model.parent / "model.onnx_data").read_bytes(), PAGE_A)
    files = {"model.onnx": {"sha256": graph}, "model.onnx_data": {"sha256": data}}
    created = host.result("sessions.create", {"files": files}, context=PAGE_A)
    x = np.random.default_rng(2).standard_normal((1, WIDTH)).astype(np.float32)
    got = run_output(host, created["session_id"], x, context=PAGE_A)
    np.testing.assert_allclose(got, reference_run(model, x), rtol=1e-5)

    # Site B names the same (stored, but not its own) files: exactly as if absent.
    hidden = error(host.call("sessions.create", {"files": files}, context=PAGE_B))
    absent_files = {"model.onnx": {"sha256": "0" * 64}, "model.onnx_data": {"sha256": "1" * 64}}
    absent = error(host.call("sessions.create", {"files": absent_files}, context=PAGE_A))
    assert hidden == absent
    assert hidden["code"] == "not_found"
    assert hidden["details"] == {"file": "model.onnx"}  # the page's own key, nothing more


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"../model.onnx": "graph", "model.onnx_data": "data"}, "bad_request"),
        ({"/tmp/model.onnx": "graph", "model.onnx_data": "data"}, "bad_request"),
        ({"model.onnx": "graph", "Model.ONNX": "data", "model.onnx_data": "data"}, "bad_request"),
        ({"model.onnx": "graph", "weights.bin": "data"}, "model_unsafe"),  # not the location
        ({"model.onnx": "graph"}, "model_unsafe"),  # the data file left out
    ],
)
def test_unsafe_groupings_are_refused(
    host: HostProcess, model: Path, files: dict[str, str], code: str
) -> None:
    stored = {
        "graph": upload(host, model.read_bytes(), PAGE_A),
        "data": upload(host, (model.parent / "model.onnx_data").read_bytes(), PAGE_A),
    }
    named = {name: {"sha256": stored[which]} for name, which in files.items()}
    graph = next(n for n in files if files[n] == "graph")
    reply = host.call("sessions.create", {"files": named, "graph": graph}, context=PAGE_A)
    assert error(reply)["code"] == code
    if code == "bad_request":  # the names themselves: before any file is looked at
        assert error(reply)["details"] == {"field": "files"}


def test_a_location_outside_the_files_is_refused(host: HostProcess, model: Path) -> None:
    with_location(model, "../model.onnx_data")
    files = {
        "model.onnx": {"sha256": upload(host, model.read_bytes(), PAGE_A)},
        "model.onnx_data": {
            "sha256": upload(host, (model.parent / "model.onnx_data").read_bytes(), PAGE_A)
        },
    }
    reply = host.call("sessions.create", {"files": files}, context=PAGE_A)
    assert error(reply)["code"] == "model_unsafe"


def test_a_compile_cache_hit_never_tells_a_site_that_another_used_the_files(
    host: HostProcess, model: Path
) -> None:
    data = (model.parent / "model.onnx_data").read_bytes()
    hits = {}
    for name, page in (("a", PAGE_A), ("a again", PAGE_A), ("b", PAGE_B)):
        files = {
            "model.onnx": {"sha256": upload(host, model.read_bytes(), page)},
            "model.onnx_data": {"sha256": upload(host, data, page)},
        }
        hits[name] = host.result("sessions.create", {"files": files}, context=page)[
            "compiled_cache_hit"
        ]
    assert hits == {"a": False, "a again": True, "b": False}


def test_a_page_cannot_name_a_stored_manifest(home: Path, host: HostProcess, model: Path) -> None:
    """Else its reply (or its timing) would say which manifests the user imported."""
    imported = json.loads(run_cli(home, "--json", "import", str(model)).stdout)
    stored = host.call(
        "sessions.create", {"manifest": imported[0]["manifest"]["sha256"]}, context=PAGE_A
    )
    absent = host.call("sessions.create", {"manifest": "f" * 64}, context=PAGE_A)
    assert error(stored) == error(absent)
    assert error(stored)["code"] == "bad_request"
    # The user's own callers may (a trusted context: no partition).
    trusted = host.result("sessions.create", {"manifest": imported[0]["manifest"]["sha256"]})
    assert trusted["session_id"]
