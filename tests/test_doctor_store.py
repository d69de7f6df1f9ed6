"""`webmodels doctor` reports the store's health: a corrupt, quarantined model shows
up as a warning with the fix; a healthy store is ok."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

from support.catalogs import CatalogSigner, entry
from support.host import run_cli
from support.models import tiny_model


def store_check(home: Path, name: str = "store") -> dict[str, object]:
    result = run_cli(home, "doctor", "--json", check=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return checks[name]  # type: ignore[no-any-return]


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


def test_catalogs_are_listed_and_an_expired_one_is_a_warning(home: Path, tmp_path: Path) -> None:
    assert store_check(home, "catalogs")["status"] == "ok"
    signer = CatalogSigner("acme")
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    written = time.monotonic()
    document = signer.write(
        tmp_path / "c.json",
        1,
        [entry(data, "acme/model", "1.0.0")],
        expires_in=timedelta(seconds=3),
    )
    run_cli(home, "catalog", "add", str(document), "--key", signer.public)
    check = store_check(home, "catalogs")
    assert (check["status"], check["summary"]) == ("ok", "1 catalog(s): acme v1")
    time.sleep(max(0.0, written + 3.5 - time.monotonic()))  # until just past the expiry
    expired = store_check(home, "catalogs")
    assert expired["status"] == "warn" and "acme (expired" in str(expired["summary"])
    assert "webmodels update" in str(expired["fix"])
