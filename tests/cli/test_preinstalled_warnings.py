"""Pre-installed folders through the real `webmodels` command: a one-off
`--preinstalled DIR` run leaves no name behind that would not resolve, and a folder
that is missing or a models.json entry that is wrong is said in `ls` and `doctor`
instead of being ignored without a word."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from support.host import run_cli
from support.models import tiny_model

NAME, VERSION = "google/magika", "1.0.3"


def folder_with(tmp_path: Path, *, sha256: str | None = None) -> tuple[Path, str]:
    """A pre-installed folder holding one model; models.json declares `sha256` (the
    file's own hash unless given)."""
    folder = tmp_path / "preinstalled"
    model = tiny_model(folder / "magika" / "model.onnx")
    actual = hashlib.sha256(model.read_bytes()).hexdigest()
    entry = {"file": "magika/model.onnx", "sha256": sha256 or actual}
    manifest = {"version": 1, "models": [{**entry, "name": NAME, "version": VERSION}]}
    (folder / "models.json").write_text(json.dumps(manifest))
    return folder, actual


def ls(home: Path, *flags: str) -> tuple[list[dict[str, Any]], str]:
    result = run_cli(home, *flags, "--json", "ls")
    return json.loads(result.stdout), result.stderr


def test_a_one_off_preinstalled_run_leaves_no_label_behind(home: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    folder, sha = folder_with(tmp_path)
    run_cli(home, "import", str(folder / "magika" / "model.onnx"))  # also stored, unnamed

    [during], _ = ls(home, "--preinstalled", str(folder))
    assert (during["name"], during["version"], during["source"]) == (NAME, VERSION, "preinstalled")

    [after], _ = ls(home)  # the folder is no longer configured
    assert after["sha256"] == sha and after["source"] == "imported"
    assert (after["name"], after["version"]) == (None, None)
    resolved = run_cli(home, "resolve", f"{NAME}@^1", check=False)
    assert resolved.returncode != 0 and "not_found" in resolved.stderr + resolved.stdout
    print(f"four CLI runs took {time.monotonic() - started:.1f} s")


def test_ls_warns_of_a_missing_folder_and_a_wrong_hash(home: Path, tmp_path: Path) -> None:
    folder, sha = folder_with(tmp_path, sha256="ab" * 32)
    missing = tmp_path / "not-there"

    models, warnings = ls(home, "--preinstalled", str(folder), "--preinstalled", str(missing))
    assert models == []  # a file whose hash is not the declared one is never used
    assert f"pre-installed folder {missing} does not exist" in warnings
    assert f"its SHA-256 is {sha}, models.json says {'ab' * 32}" in warnings


def test_ls_warns_of_an_entry_it_skips(home: Path, tmp_path: Path) -> None:
    folder, _ = folder_with(tmp_path, sha256="not-a-hash")
    _, warnings = ls(home, "--preinstalled", str(folder))
    assert "'magika/model.onnx' is skipped: its sha256 is not 64 hex digits" in warnings


def test_doctor_warns_of_preinstalled_problems(home: Path, tmp_path: Path) -> None:
    folder, sha = folder_with(tmp_path, sha256="ab" * 32)
    missing = tmp_path / "not-there"
    started = time.monotonic()
    result = run_cli(
        home,
        "--preinstalled",
        str(folder),
        "--preinstalled",
        str(missing),
        "--json",
        "doctor",
        check=False,
    )
    print(f"doctor took {time.monotonic() - started:.1f} s")
    [check] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "preinstalled"]
    assert check["status"] == "warn"
    assert f"{missing} does not exist" in check["summary"]
    assert f"its SHA-256 is {sha}" in check["summary"]
    assert "models.json" in check["fix"]
