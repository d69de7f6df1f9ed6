"""``webmodels import`` of a model with external data (the graph finds its data file
beside it) and of a Transformers.js-style folder: one manifest each, every file
stored; a location outside the folder is refused and nothing is stored."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from support.held import holds
from support.host import run_cli
from support.manifest_models import matmul_chain, with_location
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.importing import import_model_files
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.manifests import load_manifest
from webmodels.store.store import Store


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_a_graph_finds_its_external_data_beside_it(home: Path, tmp_path: Path) -> None:
    graph = matmul_chain(tmp_path / "m")
    result = run_cli(home, "--json", "import", str(graph))
    [imported] = json.loads(result.stdout)
    files = {f["path"]: f for f in imported["manifest"]["files"]}
    assert set(files) == {"model.onnx", "model.onnx_data"}
    assert files["model.onnx"]["role"] == "graph"
    assert files["model.onnx_data"]["role"] == "external_data"
    assert files["model.onnx_data"]["sha256"] == sha(tmp_path / "m" / "model.onnx_data")
    ls = json.loads(run_cli(home, "--json", "ls").stdout)
    stored = {f["sha256"] for m in ls for f in m.get("files", [m])}  # a manifest's, grouped
    assert {files["model.onnx"]["sha256"], files["model.onnx_data"]["sha256"]} <= stored


def test_import_a_transformers_js_folder(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "Xenova-tiny"
    matmul_chain(folder / "onnx")
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    (folder / ".cache").mkdir()
    (folder / ".cache" / "junk").write_text("not part of the model")
    result = run_cli(home, "--json", "import", str(folder), "--name", "xenova/tiny")
    [imported] = json.loads(result.stdout)
    roles = {f["path"]: f["role"] for f in imported["manifest"]["files"]}
    assert roles == {
        "config.json": "config",
        "onnx/model.onnx": "graph",
        "onnx/model.onnx_data": "external_data",
        "tokenizer.json": "tokenizer",
    }


def test_a_location_outside_the_folder_is_refused_and_nothing_stored(
    home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "evil"
    graph = matmul_chain(folder / "onnx")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 4096)
    with_location(graph, "../../secret.bin")
    result = run_cli(home, "import", str(folder), check=False)
    assert result.returncode != 0
    assert "model_unsafe" in result.stderr or "not a safe relative path" in result.stderr
    result = run_cli(home, "import", str(graph), check=False)
    assert result.returncode != 0 and "safe relative path" in result.stderr
    with Store(home / "store") as store:
        assert store.list_models() == []


def test_a_location_no_file_of_the_folder_has_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    graph = matmul_chain(folder)
    with_location(graph, "missing.bin")  # model.onnx_data stays, as a file of no graph
    with Store(tmp_path / "store") as store:
        with pytest.raises(HostError) as caught:
            import_model_files(store, folder)
        assert caught.value.code == "model_unsafe"
        assert store.list_models() == []


def test_members_of_a_manifest_survive_gc(tmp_path: Path) -> None:
    graph = matmul_chain(tmp_path / "m")
    with Store(tmp_path / "store") as store:
        imported = import_model_files(store, graph.parent)
        store.index.query("DELETE FROM refs")  # no import reference left: only the manifest
        execute_gc(store, plan_gc(store))
        for entry in imported.manifest.entries:
            assert holds(store, entry.digest), entry.path
        assert load_manifest(store.index, imported.manifest.digest) == imported.manifest
        data = Digest(sha(tmp_path / "m" / "model.onnx_data"))
        assert store.get(data) is not None
