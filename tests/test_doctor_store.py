"""`webmodels doctor` reports the store's health: a corrupt, quarantined model shows
up as a warning with the fix; a healthy store is ok."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.catalogs import CatalogSigner, entry
from support.host import run_cli
from support.models import tiny_model
from webmodels.catalogs import keeper
from webmodels.store import Store


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
    # Stored whole (whatever the suite's switch), to corrupt the file under blobs/.
    run_cli(home, "import", str(tiny_model(tmp_path / "m.onnx")), WEBMODELS_STORE_SEGMENTS="0")
    [blob] = (home / "store-v2" / "blobs" / "sha256").glob("*/*")
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    assert run_cli(home, "verify", check=False).returncode == 1
    check = store_check(home)
    assert check["status"] == "warn"
    assert "1 quarantined" in str(check["summary"])
    assert "webmodels gc" in str(check["fix"])


def test_catalogs_are_listed_and_an_expired_one_is_a_warning(home: Path, tmp_path: Path) -> None:
    assert store_check(home, "catalogs")["status"] == "ok"
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    signer = CatalogSigner("acme")
    document = signer.write(tmp_path / "c.json", 1, [entry(data, "acme/model", "1.0.0")])
    run_cli(home, "catalog", "add", str(document), "--key", signer.public)
    check = store_check(home, "catalogs")
    assert (check["status"], check["summary"]) == ("ok", "1 catalog(s): acme v1")

    # A catalog that expired since it was added (installed as of an hour ago, when it
    # was still valid: no wall-clock wait, which a loaded machine overran).
    old = CatalogSigner("olden")
    stale = old.write(
        tmp_path / "o.json",
        1,
        [entry(data, "olden/model", "1.0.0")],
        expires_in=timedelta(hours=-1),
    )
    then = datetime.now(UTC) - timedelta(hours=2)
    with Store(home / "store-v2") as store:
        keeper.add(store.index, stale.read_bytes(), key=old.public, source=None, now=then)
    expired = store_check(home, "catalogs")
    assert expired["status"] == "warn" and "olden (expired" in str(expired["summary"])
    assert "acme" not in str(expired["summary"])  # the valid one still counts
    assert "webmodels update" in str(expired["fix"])
