"""The external-data split form (``representation: {external_data: true}``): a model
of one file as ``model.onnx`` + ``model.onnx_data`` (onnx's external-data format),
made in a real runtime worker, the same bytes from fresh stores, checked (lossless:
outputs equal), recorded with provenance (and as a manifest in the shared scope), and
given to a page as a set of files it may read and run; another site gets its own."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from methods.test_sessions import configure, upload
from representations.test_derive import (
    SITE_A,
    deriver_for,
    open_store,
    runtime,  # noqa: F401 (a fixture)
    stored,
)
from support.contexts import PAGE_A, PAGE_B
from support.host import HostProcess, run_cli
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.manifests.values import Entry, build_manifest
from webmodels.representations.recipes import Recipe
from webmodels.runtime.client import Runtime
from webmodels.store.manifests import load_manifest
from webmodels.store.representations import all_forms
from webmodels.store.store import Store

SPLIT = Recipe.parse({"external_data": True})
WIDTH = 32  # a 32 x 32 float32 weight: 4 KiB, past the 1 KiB threshold; the bias stays


def wide_model(path: Path, *, width: int = WIDTH) -> Path:
    """``y = x @ w + b`` on float32[N, width], random weights (from onnx.helper)."""
    rng = np.random.default_rng(16)
    w = numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(width).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def run_split(folder: Path, graph: bytes, data: bytes, x: Any) -> Any:
    """ONNX Runtime on the two files, as a runtime loads a model of several files."""
    (folder / "model.onnx").write_bytes(graph)
    (folder / "model.onnx_data").write_bytes(data)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def run_one(data: bytes, x: Any) -> Any:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_a_split_is_two_files_the_same_bytes_in_fresh_stores_lossless_with_provenance(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    source = wide_model(tmp_path / "wide.onnx")
    made: list[tuple[str, str]] = []
    for run in ("one", "two"):
        with open_store(tmp_path / run) as store:
            record = stored(store, source)
            form = deriver_for(store, runtime).form(record, SPLIT, partition=None)
            graph, data = (store.locate(part.digest).path.read_bytes() for part in form.files)
            assert [p.path for p in form.files] == ["model.onnx", "model.onnx_data"]
            assert form.record.digest == form.files[0].digest
            made.append((hashlib.sha256(graph).hexdigest(), hashlib.sha256(data).hexdigest()))
            # The graph names its tensors' file; the weight moved there, the bias stayed.
            model = onnx.load_from_string(graph)
            moved = {t.name for t in model.graph.initializer if t.data_location == 1}
            assert moved == {"w"}
            assert {e.value for t in model.graph.initializer for e in t.external_data} >= {
                "model.onnx_data"
            }
            assert len(data) >= WIDTH * WIDTH * 4 and len(graph) < 1024
            x = np.random.default_rng(1).standard_normal((3, WIDTH)).astype(np.float32)
            folder = tmp_path / run / "run"
            folder.mkdir()
            expected = run_one(source.read_bytes(), x)
            np.testing.assert_array_equal(run_split(folder, graph, data, x), expected)
            # Provenance: a row per file, exact (error 0), tool versions recorded.
            rows = {
                json.loads(p.recipe).get("file", "model.onnx"): p for p in all_forms(store.index)
            }
            assert set(rows) == {"model.onnx", "model.onnx_data"}
            for row in rows.values():
                assert row.source == record.digest and row.scope == ""
                assert row.max_error == 0.0 and row.tools["onnx"] == onnx.__version__
                assert json.loads(row.recipe)["external_data"] is True
            # The user's own (shared) split is a manifest of its two files.
            entries = [Entry(part.path, part.digest, part.size, part.role) for part in form.files]
            manifest = load_manifest(store.index, build_manifest(entries).digest)
            assert manifest is not None and [e.role for e in manifest.entries] == [
                "graph",
                "external_data",
            ]
            wire = form.to_wire()
            assert wire["graph"] == "model.onnx" and set(wire["files"]) == {
                "model.onnx",
                "model.onnx_data",
            }
            assert wire["representation"]["external_data"] is True
    assert made[0] == made[1]
    print(f"split: graph {made[0][0][:12]}, data {made[0][1][:12]} in both fresh stores")


def test_a_model_with_no_large_tensor_has_no_split_and_nothing_is_kept(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    with open_store(tmp_path) as store:
        record = stored(store, wide_model(tmp_path / "tiny.onnx", width=4), SITE_A)
        with pytest.raises(HostError) as refused:
            deriver_for(store, runtime).form(record, SPLIT, partition=SITE_A)
        assert refused.value.code == "representation_unavailable"
        assert all_forms(store.index) == []


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    home = tmp_path_factory.mktemp("home")
    configure(home, background_compile=False)
    proc = HostProcess(home)
    yield proc
    proc.kill()


def read_all(host: HostProcess, digest: str, context: Any) -> bytes:
    reply = host.result("models.read", {"sha256": digest, "length": 1 << 20}, context=context)
    assert reply["eof"]
    return base64.b64decode(reply["data"])


def test_a_page_gets_the_split_as_files_it_reads_and_runs_and_another_site_its_own(
    host: HostProcess, tmp_path: Path
) -> None:
    source = wide_model(tmp_path / "wide.onnx").read_bytes()
    digest = upload(host, source, PAGE_A)
    asked = {"query": {"sha256": digest}, "representation": {"external_data": True}}
    got = host.result("models.load", asked, context=PAGE_A)["model"]
    assert got["derived_from"] == digest and got["graph"] == "model.onnx"
    files = got["files"]
    assert [files[p]["role"] for p in ("model.onnx", "model.onnx_data")] == [
        "graph",
        "external_data",
    ]
    graph = read_all(host, files["model.onnx"]["sha256"], PAGE_A)
    data = read_all(host, files["model.onnx_data"]["sha256"], PAGE_A)
    x = np.random.default_rng(2).standard_normal((2, WIDTH)).astype(np.float32)
    folder = tmp_path / "page"
    folder.mkdir()
    np.testing.assert_array_equal(run_split(folder, graph, data, x), run_one(source, x))
    shutil.rmtree(folder)
    # Another site sees neither file, nor the source, until it stores the model itself;
    # then it gets the same files, derived for it, as if site A had never asked.
    for part in files.values():
        reply = host.call("models.read", {"sha256": part["sha256"]}, context=PAGE_B)
        assert not reply["ok"] and reply["error"]["code"] == "not_found"
    reply = host.call("models.load", asked, context=PAGE_B)
    assert not reply["ok"] and reply["error"]["code"] == "not_found"
    upload(host, source, PAGE_B)
    other = host.result("models.load", asked, context=PAGE_B)["model"]
    assert other["files"] == files
    assert read_all(host, files["model.onnx_data"]["sha256"], PAGE_B) == data
    assert host.logged().count('"external_data":true') >= 2  # derived once per site
    # Malformed: a non-boolean, or a split of the ORT format (it has no external data).
    for bad in ({"external_data": "yes"}, {"external_data": True, "format": "ort"}):
        params = {"query": {"sha256": digest}, "representation": bad}
        reply = host.call("models.load", params, context=PAGE_A)
        assert not reply["ok"] and reply["error"]["code"] == "bad_request", reply
        assert reply["error"]["details"]["field"] == "representation.external_data"
    # The popup's list (manage.list) tells each file of the split for what it is.
    managed = {m["sha256"]: m for m in host.result("manage.list")["models"]}
    for path, part in files.items():
        assert managed[part["sha256"]]["derived_from"] == digest
        assert managed[part["sha256"]]["representation"]["file"] == path
    # A session runs over the split's files, not over a representation of one file.
    session = {"sha256": digest, "representation": {"external_data": True}}
    reply = host.call("sessions.create", session, context=PAGE_A)
    assert not reply["ok"] and reply["error"]["code"] == "bad_request", reply


def test_the_cli_derives_a_split_stored_as_a_manifest(tmp_path: Path) -> None:
    """``webmodels derive SHA --external-data`` (a real CLI process): both files, and
    ``webmodels --json ls`` lists them as one manifest of a graph and its data."""
    home = tmp_path / "home"
    with Store.open(Config(home=home, log_dir=home / "logs")) as store:
        record = store.import_file(wide_model(tmp_path / "wide.onnx")).model
    derived = run_cli(home, "--json", "derive", record.digest.hex, "--external-data")
    made = json.loads(derived.stdout)
    assert made["recipe"]["external_data"] is True and made["max_error"] == 0.0
    files = made["files"]
    assert [files[p]["role"] for p in ("model.onnx", "model.onnx_data")] == [
        "graph",
        "external_data",
    ]
    listed = json.loads(run_cli(home, "--json", "ls").stdout)
    manifests = [m for m in listed if m.get("kind") == "manifest"]
    assert len(manifests) == 1
    assert {f["path"]: f["sha256"] for f in manifests[0]["files"]} == {
        path: part["sha256"] for path, part in files.items()
    }
