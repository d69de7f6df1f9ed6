"""Pre-installed model folders: indexed in place from their models.json, never copied,
hash-checked when indexed, re-checked by size and mtime, refused when a listed path
leads out of the folder."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from support.held import held_in, layout_overhead
from support.host import HostProcess, run_cli
from support.models import tiny_model
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import Store


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(folder: Path, *entries: dict[str, Any]) -> None:
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": list(entries)}))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A pre-installed folder holding one tiny model, listed with its hash."""
    path = tmp_path / "system-models"
    model = tiny_model(path / "acme" / "tiny.onnx", weight_bytes=4000)
    write_manifest(
        path,
        {
            "file": "acme/tiny.onnx",
            "sha256": sha256_of(model),
            "name": "acme/tiny",
            "version": "1.2",
        },
    )
    return path


def ls(home: Path, folder: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(home, "--preinstalled", str(folder), "--json", "ls", *args)
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def blob_files(home: Path) -> list[str]:
    """The stored copies' hashes (whole files or segments: support/held.py)."""
    return sorted(held_in(home))


def test_a_listed_model_is_served_in_place_and_never_copied(home: Path, folder: Path) -> None:
    model = folder / "acme" / "tiny.onnx"

    [info] = ls(home, folder)

    assert info["sha256"] == sha256_of(model)
    assert (info["source"], info["name"], info["version"]) == ("preinstalled", "acme/tiny", "1.2")
    assert info["preinstalled_path"] == str(model)
    assert info["stored"] is False and info["format"] == "onnx"
    assert info["inputs"][0]["name"] == "x"
    assert blob_files(home) == []
    du = json.loads(run_cli(home, "--preinstalled", str(folder), "--json", "du").stdout)
    assert (du["preinstalled_models"], du["preinstalled_bytes"]) == (1, model.stat().st_size)
    assert du["physical_bytes"] == 0


def test_the_folder_can_come_from_the_environment_and_a_host_serves_it(
    home: Path, folder: Path
) -> None:
    model = folder / "acme" / "tiny.onnx"
    env = {"WEBMODELS_PREINSTALLED": str(folder)}

    listed = json.loads(run_cli(home, "--json", "ls", **env).stdout)
    host = HostProcess(home, **env)
    try:
        read = host.result("models.read", {"sha256": sha256_of(model), "length": 1 << 20})
        loaded = host.result("models.load", {"query": {"sha256": sha256_of(model)}})
    finally:
        host.kill()

    assert [m["source"] for m in listed] == ["preinstalled"]
    assert read["size"] == model.stat().st_size and read["eof"] is True
    assert base64.b64decode(read["data"]) == model.read_bytes()
    assert loaded["model"]["name"] == "acme/tiny"
    assert blob_files(home) == []


def test_a_wrong_declared_hash_is_not_served(home: Path, folder: Path) -> None:
    model = folder / "acme" / "tiny.onnx"
    write_manifest(folder, {"file": "acme/tiny.onnx", "sha256": "ab" * 32, "name": "acme/tiny"})

    assert ls(home, folder) == []
    with Store(home / "store-v2", preinstalled_dirs=[folder]) as store:
        store.refresh_preinstalled()
        for digest in (Digest(sha256_of(model)), Digest("ab" * 32)):
            with pytest.raises(HostError) as caught:
                store.locate(digest)
            assert caught.value.code == "not_found"


def test_a_corrected_models_json_takes_effect_without_touching_the_file(
    home: Path, folder: Path
) -> None:
    sha = sha256_of(folder / "acme" / "tiny.onnx")
    write_manifest(folder, {"file": "acme/tiny.onnx", "sha256": "ab" * 32, "name": "acme/tiny"})
    assert ls(home, folder) == []

    write_manifest(folder, {"file": "acme/tiny.onnx", "sha256": sha, "name": "acme/tiny"})
    fixed = ls(home, folder)
    write_manifest(
        folder, {"file": "acme/tiny.onnx", "sha256": sha, "name": "acme/tiny", "version": "1.3"}
    )
    bumped = ls(home, folder)

    assert [(m["sha256"], m["version"]) for m in fixed] == [(sha, None)]
    assert [(m["sha256"], m["version"]) for m in bumped] == [(sha, "1.3")]
    verified = run_cli(home, "--preinstalled", str(folder), "verify")
    assert "all good" in verified.stdout


def test_paths_leading_out_of_the_folder_are_refused(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    inside = tiny_model(folder / "good.onnx", seed=1)
    outside = tiny_model(tmp_path / "private" / "secret.onnx", seed=2)
    (folder / "sub").mkdir()
    (folder / "link.onnx").symlink_to(outside)
    (folder / "inner-link.onnx").symlink_to(inside)  # a link that stays inside is fine
    write_manifest(
        folder,
        {"file": "good.onnx", "sha256": sha256_of(inside)},
        {"file": str(outside)},  # absolute
        {"file": "../private/secret.onnx"},
        {"file": "sub/../../private/secret.onnx"},
        {"file": "link.onnx"},
        {"file": "missing.onnx"},
        {"file": "sub"},  # a folder, not a file
        {"sha256": sha256_of(inside)},  # no file at all
        {"file": "inner-link.onnx", "sha256": sha256_of(inside)},
    )

    listed = ls(home, folder)

    assert [m["sha256"] for m in listed] == [sha256_of(inside)]
    assert sha256_of(outside) not in json.dumps(listed)


def test_a_file_changed_after_indexing_is_rehashed_and_dropped(home: Path, folder: Path) -> None:
    model = folder / "acme" / "tiny.onnx"
    digest = Digest(sha256_of(model))
    with Store(home / "store-v2", preinstalled_dirs=[folder]) as store:
        store.refresh_preinstalled()
        assert store.locate(digest).preinstalled

        with model.open("ab") as fh:
            fh.write(b"appended by someone")  # size and mtime change

        with pytest.raises(HostError) as caught:
            store.locate(digest)
        assert caught.value.code == "not_found"
        assert store.list_models() == []
    assert ls(home, folder) == []


def test_without_a_declared_hash_an_edited_file_is_served_under_its_new_hash(
    home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    model = tiny_model(folder / "m.onnx", seed=1)
    write_manifest(folder, {"file": "m.onnx", "name": "acme/m"})
    before = ls(home, folder)

    tiny_model(model, seed=2, weight_bytes=100)
    after = ls(home, folder)

    assert [m["sha256"] for m in before] != [m["sha256"] for m in after]
    assert [m["sha256"] for m in after] == [sha256_of(model)]
    assert after[0]["name"] == "acme/m"


def test_verify_catches_an_edit_that_kept_size_and_mtime(home: Path, folder: Path) -> None:
    model = folder / "acme" / "tiny.onnx"
    assert len(ls(home, folder)) == 1
    stat = model.stat()
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the weights: still a valid ONNX file
    model.write_bytes(bytes(data))
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert len(ls(home, folder)) == 1  # the cheap check cannot see it
    result = run_cli(home, "--preinstalled", str(folder), "verify", check=False)

    assert result.returncode == 1
    assert "hash mismatch" in result.stderr and "no longer served" in result.stderr
    assert ls(home, folder) == []
    assert ls(home, folder) == []  # and stays so on every later start
    assert model.exists()  # not ours to move


def test_a_preinstalled_model_cannot_be_deleted_by_the_store(home: Path, folder: Path) -> None:
    sha = sha256_of(folder / "acme" / "tiny.onnx")

    result = run_cli(home, "--preinstalled", str(folder), "--json", "rm", sha, check=False)

    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "read_only"
    assert "models.json" in json.loads(result.stdout)["error"]["message"]
    assert (folder / "acme" / "tiny.onnx").is_file()
    assert len(ls(home, folder)) == 1


def test_imported_and_preinstalled_copies_are_one_model_and_du_counts_them(
    home: Path, folder: Path, tmp_path: Path
) -> None:
    model = folder / "acme" / "tiny.onnx"
    size = model.stat().st_size
    copies = []
    for place in ("downloads", "projects"):
        copy = tmp_path / place / "tiny.onnx"
        copy.parent.mkdir()
        copies.append(shutil.copyfile(model, copy))
    run_cli(home, "--preinstalled", str(folder), "import", *map(str, copies))

    [info] = ls(home, folder)
    du = json.loads(run_cli(home, "--preinstalled", str(folder), "--json", "du").stdout)

    assert info["stored"] is True and info["preinstalled_path"] == str(model)
    assert len(blob_files(home)) == 1
    # Three holders (two importers, the system folder) and two files on disk: the
    # system's, which is never copied, and one blob shared by both importers.
    assert du["models"] == 1
    assert du["logical_bytes"] == 3 * size
    with Store(home / "store-v2") as store:
        overhead = layout_overhead(store)  # a recipe's own bytes, with segments on
    assert (du["physical_bytes"], du["preinstalled_bytes"]) == (size + overhead, size)
    assert du["saved_bytes"] == size - overhead
    # Deleting the stored copy leaves the pre-installed one served.
    run_cli(home, "--preinstalled", str(folder), "rm", info["sha256"])
    [after] = ls(home, folder)
    assert after["stored"] is False and after["source"] == "preinstalled"
    assert blob_files(home) == []
