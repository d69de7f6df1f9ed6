"""``webmodels ls`` shows a multi-file model as one model with its files under it;
``webmodels rm NAME`` removes it and frees its files (a file another model names
stays); ``rm`` of one of its files refuses, naming the model, unless ``--force``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from support.held import held_in
from support.host import run_cli
from support.manifest_models import matmul_chain
from webmodels.manifests.importing import import_model_files
from webmodels.store.store import Store


def cli_json(home: Path, *args: str, check: bool = True) -> Any:
    return json.loads(run_cli(home, "--json", *args, check=check).stdout)


def blobs(home: Path) -> set[str]:
    return held_in(home)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def two_models(home: Path, tmp_path: Path) -> tuple[str, str, str]:
    """acme/a and acme/b share tokenizer.json: (graph, data, tokenizer) of acme/a."""
    with Store(home / "store-v2") as store:
        for name, width in (("a", 32), ("b", 48)):
            folder = tmp_path / name
            matmul_chain(folder / "onnx", width=width, layers=2)
            (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
            import_model_files(store, folder, name=f"acme/{name}", version="1.0.0")
    a = tmp_path / "a"
    return sha(a / "onnx/model.onnx"), sha(a / "onnx/model.onnx_data"), sha(a / "tokenizer.json")


def test_ls_groups_a_models_files_and_rm_of_one_refuses_naming_it(
    home: Path, tmp_path: Path
) -> None:
    graph, data, tokenizer = two_models(home, tmp_path)
    single = tmp_path / "notes.json"
    single.write_text('{"alone": true}')
    run_cli(home, "import", "--raw", str(single))
    models = cli_json(home, "ls")
    assert [(m["kind"], m["name"]) for m in models] == [
        ("manifest", "acme/a"),
        ("manifest", "acme/b"),
        ("file", None),
    ]
    files = {f["path"]: f for f in models[0]["files"]}
    assert {p: (f["sha256"], f["role"]) for p, f in files.items()} == {
        "onnx/model.onnx": (graph, "graph"),
        "onnx/model.onnx_data": (data, "external_data"),
        "tokenizer.json": (tokenizer, "tokenizer"),
    }
    assert files["onnx/model.onnx"]["stored"] is True
    text = run_cli(home, "ls").stdout
    assert "acme/a" in text and "3 files" in text and "  onnx/model.onnx_data" in text
    assert len([line for line in text.splitlines() if tokenizer[:12] in line]) == 2

    refused = run_cli(home, "--json", "rm", data, check=False)
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "bad_request" and "acme/a@1.0.0" in error["message"]
    assert data in blobs(home)  # nothing removed
    cli_json(home, "rm", "--force", data)
    assert data not in blobs(home)
    models = cli_json(home, "ls")
    assert [m["name"] for m in models if m["kind"] == "manifest"] == ["acme/b"]
    assert graph in {m["sha256"] for m in models if m["kind"] == "file"}  # stays, alone


def test_rm_a_model_by_name_or_hash_frees_the_files_only_it_holds(
    home: Path, tmp_path: Path
) -> None:
    graph, data, tokenizer = two_models(home, tmp_path)
    before = blobs(home)
    assert {graph, data, tokenizer} <= before
    removed = cli_json(home, "rm", "acme/a@1.0.0")
    assert removed["freed_bytes"] > 0
    assert before - blobs(home) == {graph, data}  # the tokenizer is acme/b's too
    [left] = cli_json(home, "ls")
    assert left["name"] == "acme/b"
    cli_json(home, "rm", left["sha256"][:10])
    assert blobs(home) == set()
