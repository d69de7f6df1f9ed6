"""Background compilation of multi-file models, through a real host and its real
ONNX Runtime workers: where a session over a graph and its external-data files was
built before, a restarted host compiles the same set again at idle priority (in the
same cache scope), so the next session is a compile-cache hit with outputs equal to
in-process ONNX Runtime; it never tries the graph alone (which no session can run),
and a page's set is compiled in that page's scope only."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.contexts import PAGE_A, PAGE_B
from support.host import HostProcess, run_cli
from support.manifest_models import matmul_chain, reference_run
from support.runtime_models import wire

WIDTH = 256  # 4 layers of 256 x 256 float32: 1 MiB of external data


def configure(home: Path) -> None:
    """Background compiles at once, after 0.2 s without page requests."""
    text = "[sessions]\nbackground_delay_s = 0\nbackground_idle_s = 0.2\n"
    (home / "no-config.toml").write_text(text)


def upload(host: HostProcess, data: bytes, context: dict[str, Any]) -> str:
    """Store bytes for a partition through Cross-Origin Storage (as a page would)."""
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=context)
    chunk = {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()}
    host.result("cos.write.chunk", chunk, context=context)
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)
    return digest


def background_outcome(host: HostProcess, graph: str) -> str:
    """Waits for the restarted host's background compile of ``graph``: its log line."""
    deadline = time.monotonic() + 60
    while True:
        for line in host.logged().splitlines():
            if f"compiled {graph[:12]}" in line or f"compile of {graph[:12]} failed" in line:
                return line
        assert time.monotonic() < deadline, "no background compile of the graph"
        time.sleep(0.1)


def run_y(host: HostProcess, session_id: str, x: np.ndarray, **fields: Any) -> np.ndarray:
    params = {"session_id": session_id, "feeds": {"x": wire("float32", x)}}
    out = host.result("sessions.run", params, **fields)["outputs"]["y"]
    return np.frombuffer(base64.b64decode(out["data"]), np.float32).reshape(out["dims"])


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return matmul_chain(tmp_path / "model", width=WIDTH)


def test_a_manifest_used_before_is_compiled_again_in_the_background(
    home: Path, model: Path
) -> None:
    configure(home)
    imported = json.loads(run_cli(home, "--json", "import", str(model)).stdout)[0]["manifest"]
    graph = next(f["sha256"] for f in imported["files"] if f["role"] == "graph")
    first = HostProcess(home)
    try:  # a session at another level: its cache entry is not the background's
        params = {"manifest": imported["sha256"], "graph_optimization_level": "basic"}
        first.result("sessions.create", params)
    finally:
        first.kill()
    host = HostProcess(home)
    try:
        line = background_outcome(host, graph)
        assert "failed" not in line, line
        assert "failed" not in host.logged(), "never the graph without its external data"
        created = host.result("sessions.create", {"manifest": imported["sha256"]})
        assert created["compiled_cache_hit"] is True
        x = np.random.default_rng(5).standard_normal((1, WIDTH)).astype(np.float32)
        got = run_y(host, created["session_id"], x)
    finally:
        host.kill()
    np.testing.assert_allclose(got, reference_run(model, x), rtol=1e-5)


def test_a_pages_files_are_compiled_in_its_own_scope_only(home: Path, model: Path) -> None:
    configure(home)
    data = (model.parent / "model.onnx_data").read_bytes()
    first = HostProcess(home)
    try:
        graph = upload(first, model.read_bytes(), PAGE_A)
        files = {"model.onnx": {"sha256": graph}, "model.onnx_data": {"sha256": ""}}
        files["model.onnx_data"]["sha256"] = upload(first, data, PAGE_A)
        for page in (PAGE_B,):  # B stores the same files but never builds a session
            upload(first, model.read_bytes(), page)
            upload(first, data, page)
        params = {"files": files, "graph_optimization_level": "basic"}
        first.result("sessions.create", params, context=PAGE_A)
    finally:
        first.kill()
    host = HostProcess(home)
    try:
        assert "failed" not in background_outcome(host, graph)
        hit_a = host.result("sessions.create", {"files": files}, context=PAGE_A)
        hit_b = host.result("sessions.create", {"files": files}, context=PAGE_B)
    finally:
        host.kill()
    # A's set was compiled in A's scope; B's first session compiles its own.
    assert (hit_a["compiled_cache_hit"], hit_b["compiled_cache_hit"]) == (True, False)
