"""``webmodels ls`` shows a multi-file model as one model with its files under it;
``webmodels rm NAME`` removes it and frees its files (a file another model names
stays); ``rm`` of one of its files refuses, naming the model, unless ``--force``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from support.host import run_cli
from support.manifest_models import matmul_chain


def cli_json(home: Path, *args: str, check: bool = True) -> Any:
    return json.loads(run_cli(home, "--json", *args, check=check).stdout)


def blobs(home: Path) -> set[str]:
    return {p.name for p in home.glob("store-v1/blobs/**/*") if p.is_file()}


def two_models(home: Path, tmp_path: Path) -> tuple[str, str, str]:
    """Two folders sharing tokenizer.json: (graph sha of a, data sha of a, tokenizer)."""
    for name, width in (("a", 32), ("b", 48)):
        folder = tmp_path / name
        matmul_chain(folder / "onnx", width=width, layers=2)
        (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
        run_cli(home, "import", str(folder), "--name", f"acme/{name}", "--model-version", "1.0.0")

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    a = tmp_path / "a"
    return sha(a / "onnx/model.onnx"), sha(a / "onnx/model.onnx_data"), sha(a / "tokenizer.json")


def test_ls_groups_the_files_of_a_model_under_it(home: Path, tmp_path: Path) -> None:
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


def test_rm_a_model_by_name_frees_the_files_only_it_holds(home: Path, tmp_path: Path) -> None:
    graph, data, tokenizer = two_models(home, tmp_path)
    before = blobs(home)
    assert {graph, data, tokenizer} <= before
    removed = cli_json(home, "rm", "acme/a@1.0.0")
    assert removed["freed_bytes"] > 0
    assert before - blobs(home) == {graph, data}  # the tokenizer is acme/b's too
    assert [m["name"] for m in cli_json(home, "ls")] == ["acme/b"]
    by_hash = cli_json(home, "ls")[0]["sha256"]
    cli_json(home, "rm", by_hash[:10])
    assert blobs(home) == set() and cli_json(home, "ls") == []


def test_rm_of_a_file_a_model_names_refuses_naming_the_model(home: Path, tmp_path: Path) -> None:
    graph, data, _ = two_models(home, tmp_path)
    refused = run_cli(home, "--json", "rm", data, check=False)
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "in_manifest" and "acme/a@1.0.0" in error["message"]
    assert data in blobs(home) and len(cli_json(home, "ls")) == 2  # nothing removed
    cli_json(home, "rm", "--force", data)
    assert data not in blobs(home)
    models = cli_json(home, "ls")
    assert [m["name"] for m in models if m["kind"] == "manifest"] == ["acme/b"]
    assert graph in {m["sha256"] for m in models if m["kind"] == "file"}  # stays, alone
