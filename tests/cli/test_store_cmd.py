"""The store commands (`import`, `ls`, `rm`, `pin`, `unpin`, `du`), run as a user runs
them: a real ``python -m webmodels`` process on a store in a temporary folder."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from support.held import held_in, layout_overhead, on_disk, read_held
from support.host import run_cli
from support.models import REAL_MODELS, real_model, tiny_model
from webmodels.digest import Digest
from webmodels.store.store import Store


def cli_json(home: Path, *args: str, **env: str) -> Any:
    return json.loads(run_cli(home, "--json", *args, **env).stdout)


def cli_error(home: Path, *args: str) -> dict[str, Any]:
    """Run a command that must fail; its JSON error (code, message, details)."""
    result = run_cli(home, "--json", *args, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    reply = json.loads(result.stdout)
    assert reply["ok"] is False
    error: dict[str, Any] = reply["error"]
    return error


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def overhead_in(home: Path) -> int:
    with Store(home / "store-v2") as store:
        return layout_overhead(store)


def read_back(home: Path, sha256: str) -> bytes:
    return read_held(home, sha256)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- import and deduplication ---------------------------------------------------------


def test_importing_a_model_twice_stores_one_read_only_blob(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "model.onnx", weight_bytes=4096)
    sha = sha256_of(model)

    [first] = cli_json(
        home, "import", str(model), "--name", "acme/tiny", "--model-version", "1.0.0"
    )
    [second] = cli_json(home, "import", str(model))

    assert first["deduplicated"] is False
    assert second["deduplicated"] is True
    assert first["model"]["sha256"] == second["model"]["sha256"] == sha
    assert first["model"]["name"] == "acme/tiny"
    assert second["model"]["version"] == "1.0.0"  # a later import without names keeps them
    assert held_in(home) == {sha}
    with Store(home / "store-v2") as store:
        assert store.read(Digest(sha), 0, 10**9)[0] == model.read_bytes()
        assert all(p.stat().st_mode & 0o222 == 0 for p in on_disk(store, Digest(sha)))
        overhead = layout_overhead(store)  # a recipe's own bytes, with segments on
    du = cli_json(home, "du")
    assert (du["stored_blobs"], du["physical_bytes"]) == (1, model.stat().st_size + overhead)
    assert du["saved_bytes"] == 0  # one path imported twice is still one holder


def test_identical_files_in_two_places_are_stored_once_and_du_shows_the_saving(
    home: Path, tmp_path: Path
) -> None:
    a = tiny_model(tmp_path / "a" / "model.onnx", weight_bytes=8192)
    b = tmp_path / "b" / "copy.onnx"
    b.parent.mkdir()
    shutil.copyfile(a, b)
    size = a.stat().st_size

    results = cli_json(home, "import", str(a), str(b))

    assert [r["deduplicated"] for r in results] == [False, True]
    assert len(held_in(home)) == 1
    du, overhead = cli_json(home, "du"), overhead_in(home)
    assert du["models"] == 1
    assert du["physical_bytes"] == size + overhead
    assert du["logical_bytes"] == 2 * size
    assert du["saved_bytes"] == size - overhead
    text = run_cli(home, "du").stdout
    assert "saved" in text and "by deduplication" in text
    assert [m["sha256"] for m in cli_json(home, "ls")] == [sha256_of(a)]


def test_the_real_magika_model_is_imported_with_its_metadata_and_deduplicated(
    home: Path, tmp_path: Path
) -> None:
    model = real_model("magika")
    copy = tmp_path / "elsewhere" / "magika.onnx"
    copy.parent.mkdir()
    shutil.copyfile(model, copy)
    size = REAL_MODELS["magika"][2]

    first, second = cli_json(home, "import", str(model), str(copy), "--name", "google/magika")

    info = first["model"]
    assert info["format"] == "onnx" and info["size"] == size
    assert info["sha256"] == sha256_of(model)
    [inp] = info["inputs"]
    assert (inp["name"], inp["type"], inp["dims"][-1]) == ("bytes", "int32", 2048)
    [out] = info["outputs"]
    assert (out["name"], out["type"]) == ("target_label", "float32")
    assert {"ai.onnx", "ai.onnx.ml"} <= set(info["opsets"])
    assert second["deduplicated"] is True
    assert len(held_in(home)) == 1
    du, overhead = cli_json(home, "du"), overhead_in(home)
    assert (du["physical_bytes"], du["saved_bytes"]) == (size + overhead, size - overhead)
    listing = run_cli(home, "ls").stdout
    assert info["sha256"][:12] in listing and "google/magika" in listing


# -- invalid input ----------------------------------------------------------------------


def assert_nothing_stored(home: Path) -> None:
    assert held_in(home) == set()
    assert list((home / "store-v2" / "tmp").iterdir()) == []
    assert cli_json(home, "ls") == []


def test_a_file_that_is_not_onnx_is_refused_and_leaves_nothing(home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.onnx"
    notes.write_text("these are not the weights you are looking for\n" * 100)

    error = cli_error(home, "import", str(notes))
    plain = run_cli(home, "import", str(notes), check=False)

    assert error["code"] == "model_invalid"
    assert "ONNX" in error["message"]
    assert plain.returncode == 1
    assert "error [model_invalid]" in plain.stderr
    assert_nothing_stored(home)


def external_data_model(path: Path, location: str) -> Path:
    """A model whose initializer keeps its data in another file."""
    weights = numpy_helper.from_array(np.ones(4, dtype=np.float32), name="w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "ext", [x], [y], [weights]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_external_data_outside_the_model_is_unsafe(home: Path, tmp_path: Path) -> None:
    model = external_data_model(tmp_path / "evil.onnx", "../../etc/passwd")

    error = cli_error(home, "import", str(model))

    assert error["code"] == "model_unsafe"
    assert "../../etc/passwd" in error["message"]
    assert_nothing_stored(home)


def test_external_data_missing_beside_the_model_is_not_found(home: Path, tmp_path: Path) -> None:
    # With the file beside it, the two import as one model manifest (tests/manifests).
    model = external_data_model(tmp_path / "split.onnx", "weights.bin")

    error = cli_error(home, "import", str(model))

    assert error["code"] == "not_found"
    assert "weights.bin" in error["message"]
    assert_nothing_stored(home)


def test_raw_import_stores_any_file_with_a_sniffed_format(home: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "llama.gguf"
    gguf.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(range(256)) * 8)
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text('{"model": {"type": "BPE"}}')

    assert cli_error(home, "import", str(gguf))["code"] == "model_invalid"
    results = cli_json(home, "import", "--raw", str(gguf), str(tokenizer))

    assert [r["model"]["format"] for r in results] == ["gguf", "json"]
    assert [r["model"]["inputs"] for r in results] == [[], []]
    for result, source in zip(results, (gguf, tokenizer), strict=True):
        assert read_back(home, result["model"]["sha256"]) == source.read_bytes()
    assert sorted(m["format"] for m in cli_json(home, "ls")) == ["gguf", "json"]


def test_importing_a_missing_file_or_a_folder_fails_clearly(home: Path, tmp_path: Path) -> None:
    missing = cli_error(home, "import", str(tmp_path / "nope.onnx"))
    folder = cli_error(home, "import", str(tmp_path))  # it holds the store (a model folder
    # imports as one model manifest: tests/manifests)

    assert missing["code"] == "not_found" and "nope.onnx" in missing["message"]
    assert folder["code"] == "bad_request" and "folder" in folder["message"]


# -- pins and deletion ------------------------------------------------------------------------


def test_a_pinned_model_is_only_deleted_by_force_or_after_unpin(home: Path, tmp_path: Path) -> None:
    a = tiny_model(tmp_path / "a.onnx", seed=1)
    b = tiny_model(tmp_path / "b.onnx", seed=2)
    sha_a, sha_b = sha256_of(a), sha256_of(b)
    cli_json(home, "import", str(a), str(b))

    pinned = cli_json(home, "pin", sha_a, sha_b)
    refused = cli_error(home, "rm", sha_a)

    assert [m["pinned"] for m in pinned] == [True, True]
    assert refused["code"] == "model_pinned"
    assert sha_a in held_in(home)
    assert {m["sha256"]: m["pinned"] for m in cli_json(home, "ls")} == {sha_a: True, sha_b: True}

    forced = cli_json(home, "rm", "--force", sha_a)
    assert forced == {"deleted": [sha_a], "freed_bytes": a.stat().st_size}
    assert sha_a not in held_in(home)

    assert [m["pinned"] for m in cli_json(home, "unpin", sha_b)] == [False]
    deleted = run_cli(home, "rm", sha_b[:10])  # a unique prefix is enough
    assert f"deleted {sha_b}" in deleted.stdout
    assert held_in(home) == set()
    assert cli_json(home, "ls") == []
    assert "no models" in run_cli(home, "ls").stdout


def same_prefix_blobs(folder: Path) -> tuple[Path, Path]:
    """Two small files whose SHA-256s share their first 6 hex digits (found in ~5k tries)."""
    seen: dict[str, bytes] = {}
    for n in itertools.count():
        data = f"ambiguous prefix {n}\n".encode()
        prefix = hashlib.sha256(data).hexdigest()[:6]
        if prefix in seen:
            paths = (folder / "first.txt", folder / "second.txt")
            paths[0].write_bytes(seen[prefix])
            paths[1].write_bytes(data)
            return paths
        seen[prefix] = data
    raise AssertionError("unreachable")


def test_short_ambiguous_or_unknown_names_delete_nothing(home: Path, tmp_path: Path) -> None:
    first, second = same_prefix_blobs(tmp_path)
    cli_json(home, "import", "--raw", str(first), str(second))
    shared = sha256_of(first)[:6]

    ambiguous = cli_error(home, "rm", shared)
    short = cli_error(home, "rm", shared[:5])
    not_hex = cli_error(home, "rm", "model1")
    unknown = cli_error(home, "rm", "f" * 64)

    assert "2 models" in ambiguous["message"]
    assert ambiguous["code"] == "bad_request"
    assert short["code"] == not_hex["code"] == "bad_request"
    assert unknown["code"] == "not_found"
    assert len(cli_json(home, "ls")) == 2
    assert len(held_in(home)) == 2
    # the digits up to the first one where they differ name exactly one
    sha_1, sha_2 = sha256_of(first), sha256_of(second)
    differ = next(i for i, (x, y) in enumerate(zip(sha_1, sha_2, strict=True)) if x != y)
    assert cli_json(home, "rm", sha_2[: differ + 1])["deleted"] == [sha_2]
    assert [m["sha256"] for m in cli_json(home, "ls")] == [sha_1]
