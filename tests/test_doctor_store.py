"""`webmodels doctor` reports the store's health: a corrupt, quarantined model shows
up as a warning with the fix; a healthy store is ok."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support.host import run_cli
from support.models import tiny_model


def store_check(home: Path) -> dict[str, object]:
    result = run_cli(home, "doctor", "--json", check=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return checks["store"]  # type: ignore[no-any-return]


def test_healthy_store_is_ok(home: Path, tmp_path: Path) -> None:
    run_cli(home, "import", str(tiny_model(tmp_path / "m.onnx")))
    check = store_check(home)
    assert check["status"] == "ok"
    assert check["details"]["models"] == 1  # type: ignore[index]


def test_quarantine_and_leftovers_are_reported(home: Path, tmp_path: Path) -> None:
    run_cli(home, "import", str(tiny_model(tmp_path / "m.onnx")))
    [blob] = (home / "store-v1" / "blobs" / "sha256").glob("*/*")
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    assert run_cli(home, "verify", check=False).returncode == 1
    check = store_check(home)
    assert check["status"] == "warn"
    assert "1 quarantined" in str(check["summary"])
    assert "webmodels gc" in str(check["fix"])
