"""`webmodels import` of several files, each on its own, and the labels it records,
run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.host import run_cli
from support.models import tiny_model


def imported(home: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = run_cli(home, "import", "--json", *args, check=False)
    return result.returncode, json.loads(result.stdout)


def test_each_file_is_imported_on_its_own_and_a_refused_one_fails_the_command(
    home: Path, tmp_path: Path
) -> None:
    good = tiny_model(tmp_path / "a.onnx", seed=1)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model\n" * 50)
    later = tiny_model(tmp_path / "c.onnx", seed=2)
    run_cli(home, "import", str(later))

    text = run_cli(home, "import", str(bad), str(good), str(later), check=False)

    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[0].split()[:2] == ["RESULT", "SHA256"]
    assert lines[1].startswith("refused") and "bad.onnx" in lines[1]
    assert "[model_invalid]" in lines[1]
    assert lines[2].startswith("stored") and "a.onnx" in lines[2]
    assert lines[3].startswith("already stored") and "c.onnx" in lines[3]
    assert lines[4] == "1 of 3 files refused"
    stored = json.loads(run_cli(home, "ls", "--json").stdout)
    assert len(stored) == 2  # the good file after the bad one was stored

    code, results = imported(home, str(good), str(bad))
    assert code == 1
    assert [r["result"] for r in results] == ["already stored", "refused"]
    assert results[1]["error"]["code"] == "model_invalid"


def test_labels_follow_the_naming_rules_of_pull_and_catalogs(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    for args, problem in (
        (("--name", "My Model"), "expected publisher/model"),
        (("--name", "Acme/Dense"), "uppercase"),
        (("--name", "acme/dense", "--model-version", "banana"), "banana"),
    ):
        result = run_cli(home, "import", str(model), *args, check=False)
        assert result.returncode == 1
        assert "error [bad_request]" in result.stderr and problem in result.stderr
    assert json.loads(run_cli(home, "ls", "--json").stdout) == []  # nothing stored


def test_a_stored_model_keeps_its_label_unless_rename_is_given(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    imported(home, str(model), "--name", "acme/dense", "--model-version", "1.0.0")

    code, [again] = imported(home, str(model), "--name", "other/thing", "--model-version", "2.0.0")
    assert code == 0
    assert (again["model"]["name"], again["model"]["version"]) == ("acme/dense", "1.0.0")
    assert again["note"] == "kept its label acme/dense@1.0.0 (--rename to replace it)"

    _, [renamed] = imported(home, str(model), "--name", "other/thing", "--rename")
    assert (renamed["model"]["name"], renamed["model"]["version"]) == ("other/thing", "1.0.0")
    assert renamed["note"] == "renamed (was acme/dense@1.0.0)"
    [listed] = json.loads(run_cli(home, "ls", "--json").stdout)
    assert listed["name"] == "other/thing"
