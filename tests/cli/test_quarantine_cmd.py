"""What `verify` quarantines, as `du` and `gc` show and reclaim it, run as a user runs
the commands."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from support.host import run_cli
from support.models import tiny_model


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(run_cli(home, "--json", *args).stdout)


def test_du_counts_quarantined_bytes_and_gc_removes_them_by_age_or_at_once(
    home: Path, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=3000)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    # Stored whole (whatever the suite's switch), to corrupt the file under blobs/.
    run_cli(home, "import", str(model), WEBMODELS_STORE_SEGMENTS="0")
    blob = home / "store-v2" / "blobs" / "sha256" / sha[:2] / sha
    blob.chmod(0o600)
    blob.write_bytes(b"x" + blob.read_bytes()[1:])
    run_cli(home, "verify", check=False)
    folder = home / "store-v2" / "quarantine"
    [fresh] = list(folder.iterdir())
    assert re.fullmatch(sha + r"\.\d{8}T\d{6}Z", fresh.name), fresh.name  # UTC, readable
    # A file quarantined 40 days ago by an older version (its name ends in a Unix time).
    old = folder / f"{'ab' * 32}.{int(time.time()) - 40 * 86400}"
    old.write_bytes(os.urandom(1000))

    du = cli_json(home, "du")
    assert (du["quarantine_files"], du["quarantine_bytes"]) == (2, fresh.stat().st_size + 1000)
    assert "2 file(s)" in run_cli(home, "du").stdout

    aged = cli_json(home, "gc")  # default: older than quarantine_days (30)
    assert [i["path"] for i in aged["removed"] if i["kind"] == "quarantined"] == [str(old)]
    assert sorted(folder.iterdir()) == [fresh]
    kept = cli_json(home, "gc", "--quarantine-days", "1")
    assert [i for i in kept["planned"] if i["kind"] == "quarantined"] == []

    now = cli_json(home, "gc", "--quarantine")
    assert [i["path"] for i in now["removed"] if i["kind"] == "quarantined"] == [str(fresh)]
    assert list(folder.iterdir()) == []
    assert cli_json(home, "du")["quarantine_bytes"] == 0
