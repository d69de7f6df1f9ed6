"""`verify` (corrupt blobs are found, quarantined and never served again) and `gc`
(plan, then execute; only what nothing uses is removed), for files stored whole: these
tests corrupt and remove files under ``blobs/`` by hand, so the store keeps whole files
whatever the suite's switch says. The same for files kept as segments:
tests/store/segments/ (test_live_store.py: verify finds a corrupt segment, gc keeps what
another file names) and the segment store's fault runs (tests/test_stress_segments.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.held import holds
from support.host import HostProcess, run_cli
from support.models import tiny_model
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import Store
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.metadata import ModelMetadata


@pytest.fixture(autouse=True)
def whole_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBMODELS_STORE_SEGMENTS", "0")  # passed on to hosts and CLIs


def cli_json(home: Path, *args: str, check: bool = True) -> Any:
    return json.loads(run_cli(home, "--json", *args, check=check).stdout)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob_path(home: Path, sha256: str) -> Path:
    return home / "store-v2" / "blobs" / "sha256" / sha256[:2] / sha256


def flip_a_byte(path: Path) -> None:
    os.chmod(path, 0o644)  # published blobs are read-only
    with path.open("r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, io.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# -- verify ---------------------------------------------------------------------------------


def test_a_corrupt_blob_is_found_quarantined_and_never_served(home: Path, tmp_path: Path) -> None:
    good = tiny_model(tmp_path / "good.onnx", seed=1, weight_bytes=3000)
    bad = tiny_model(tmp_path / "bad.onnx", seed=2, weight_bytes=3000)
    sha_good, sha_bad = sha256_of(good), sha256_of(bad)
    cli_json(home, "import", str(good), str(bad))
    flip_a_byte(blob_path(home, sha_bad))

    plain = run_cli(home, "verify", check=False)

    assert plain.returncode == 1
    assert f"CORRUPT {sha_bad}: hash mismatch" in plain.stderr
    assert not blob_path(home, sha_bad).exists()
    [quarantined] = list((home / "store-v2" / "quarantine").iterdir())
    assert quarantined.name.startswith(sha_bad)
    assert blob_path(home, sha_good).is_file()
    listed = {m["sha256"]: m for m in cli_json(home, "ls")}
    assert (listed[sha_bad]["quarantined"], listed[sha_bad]["stored"]) == (True, False)
    assert listed[sha_good]["quarantined"] is False
    assert "quarantined" in run_cli(home, "ls").stdout
    assert cli_json(home, "du")["quarantined"] == 1
    again = cli_json(home, "verify")  # the rest is fine now
    assert (again["checked"], again["problems"]) == (1, [])

    with Store(home / "store-v2") as store, pytest.raises(HostError) as caught:
        store.locate(Digest(sha_bad))
    assert caught.value.code == "not_found"
    host = HostProcess(home)
    try:
        read = host.call("models.read", {"sha256": sha_bad})
        load = host.call("models.load", {"query": {"sha256": sha_bad}})
        served = host.result("models.read", {"sha256": sha_good, "length": 1 << 20})
    finally:
        host.kill()
    assert read["error"]["code"] == load["error"]["code"] == "not_found"
    assert base64.b64decode(served["data"]) == good.read_bytes()


def test_importing_the_good_bytes_again_restores_a_quarantined_model(
    home: Path, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=3000)
    sha = sha256_of(model)
    cli_json(home, "import", str(model))
    flip_a_byte(blob_path(home, sha))
    report = cli_json(home, "verify", check=False)
    assert [(p["sha256"], p["problem"]) for p in report["problems"]] == [(sha, "hash mismatch")]
    assert Path(report["problems"][0]["quarantined_to"]).parent.name == "quarantine"

    [result] = cli_json(home, "import", str(model))

    assert result["deduplicated"] is False
    assert result["model"]["stored"] is True and result["model"]["quarantined"] is False
    assert blob_path(home, sha).read_bytes() == model.read_bytes()
    assert cli_json(home, "verify")["problems"] == []
    host = HostProcess(home)
    try:
        served = host.result("models.read", {"sha256": sha, "length": 1 << 20})
    finally:
        host.kill()
    assert base64.b64decode(served["data"]) == model.read_bytes()


def test_verify_reports_a_vanished_blob(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    sha = sha256_of(model)
    cli_json(home, "import", str(model))
    blob_path(home, sha).unlink()

    report = cli_json(home, "verify", check=False)

    assert [(p["sha256"], p["problem"]) for p in report["problems"]] == [(sha, "missing")]
    assert cli_json(home, "ls")[0]["quarantined"] is True


# -- gc ------------------------------------------------------------------------------------


def add_unreferenced_blob(store: Store, data: bytes) -> Digest:
    """A stored blob nothing refers to (as a download whose sites were all cleared)."""
    pending = store.files.write_stream(io.BytesIO(data))
    store.ingest(pending, ModelMetadata("binary"), origin="downloaded")
    return pending.digest


def add_orphan_file(home: Path, data: bytes) -> Path:
    """A correctly named blob file the index does not know (as after a crash)."""
    path = blob_path(home, hashlib.sha256(data).hexdigest())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_gc_plans_then_removes_only_what_nothing_uses(home: Path, tmp_path: Path) -> None:
    kept = tiny_model(tmp_path / "kept.onnx", seed=1)
    gone = tiny_model(tmp_path / "gone.onnx", seed=2)
    cli_json(home, "import", str(kept), str(gone))
    blob_path(home, sha256_of(gone)).unlink()  # behind the index's back
    with Store(home / "store-v2") as store:
        unreferenced = add_unreferenced_blob(store, b"a tokenizer nobody uses")
    orphan = add_orphan_file(home, b"left behind by a crash")
    stranger = home / "store-v2" / "blobs" / "sha256" / "README"
    stranger.write_text("not a blob name: never touched")
    stale = home / "store-v2" / "tmp" / f"{dead_pid()}-0123.partial"
    before = sorted(p for p in (home / "store-v2").rglob("*") if p.is_file())

    dry = cli_json(home, "gc", "--dry-run")

    planned = {(i["kind"], i["sha256"]) for i in dry["planned"]}
    assert planned == {
        ("dangling_row", sha256_of(gone)),
        ("blob", unreferenced.hex),
        ("orphan_file", orphan.name),
    }  # the stale temp file was already cleaned when the command opened the store
    assert (dry["dry_run"], dry["removed"], dry["freed_bytes"]) == (True, [], 0)
    assert sorted(p for p in (home / "store-v2").rglob("*") if p.is_file()) == before
    assert not stale.exists()

    done = cli_json(home, "gc")

    assert {(i["kind"], i["sha256"]) for i in done["removed"]} == planned
    assert done["freed_bytes"] == len(b"a tokenizer nobody uses") + len(b"left behind by a crash")
    assert not blob_path(home, unreferenced.hex).exists() and not orphan.exists()
    assert blob_path(home, sha256_of(kept)).is_file()
    assert stranger.is_file()
    assert [m["sha256"] for m in cli_json(home, "ls")] == [sha256_of(kept)]
    assert cli_json(home, "gc")["planned"] == []
    assert "nothing to collect" in run_cli(home, "gc").stdout


def test_a_dangling_row_is_listed_as_stored_until_gc_drops_it(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    sha = sha256_of(model)
    cli_json(home, "import", str(model))
    blob_path(home, sha).unlink()
    assert [(m["sha256"], m["stored"]) for m in cli_json(home, "ls")] == [(sha, True)]

    with Store(home / "store-v2") as store:
        result = execute_gc(store, plan_gc(store))
        assert [(i.kind, i.digest) for i in result.removed] == [("dangling_row", Digest(sha))]
        assert result.freed_bytes == 0
        assert store.get(Digest(sha)) is None
    assert cli_json(home, "ls") == []


def test_a_vanished_blob_is_never_served_and_rm_clears_it(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    sha = sha256_of(model)
    cli_json(home, "import", str(model))
    blob_path(home, sha).unlink()

    with Store(home / "store-v2") as store, pytest.raises(HostError) as caught:
        store.locate(Digest(sha))
    listed = cli_json(home, "ls")
    deleted = cli_json(home, "rm", sha)

    assert caught.value.code == "not_found"
    assert [(m["sha256"], m["quarantined"]) for m in listed] == [(sha, True)]
    assert deleted == {"deleted": [sha], "freed_bytes": 0}  # nothing was on disk
    assert cli_json(home, "ls") == []


def test_a_stale_plan_never_removes_what_came_into_use(home: Path, tmp_path: Path) -> None:
    with Store(home / "store-v2") as store:
        unused = add_unreferenced_blob(store, b"about to be used by a site")
        orphan_data = b"about to be imported"
        orphan = add_orphan_file(home, orphan_data)
        plan = plan_gc(store)
        assert {i.kind for i in plan.items} == {"blob", "orphan_file"}

        store.record_use(unused, "https://a.example https://a.example")
        source = tmp_path / "import-me.bin"
        source.write_bytes(orphan_data)
        store.import_file(source, raw=True)
        result = execute_gc(store, plan)

        assert result.removed == ()
        assert {i.kind for i in result.skipped} == {"blob", "orphan_file"}
        assert holds(store, unused) and orphan.is_file()
        assert {r.digest for r in store.list_models()} == {unused, Digest(orphan.name)}
        assert store.read(unused, 0, 100)[0] == b"about to be used by a site"


def test_referenced_and_pinned_blobs_survive_gc(home: Path, tmp_path: Path) -> None:
    with Store(home / "store-v2") as store:
        imported = store.import_file(tiny_model(tmp_path / "m.onnx")).model.digest
        pinned = add_unreferenced_blob(store, b"pinned by the user")
        store.pin(pinned, True)
        used = add_unreferenced_blob(store, b"used by a site")
        store.record_use(used, "https://a.example https://a.example")

        assert plan_gc(store).items == ()
        assert execute_gc(store, plan_gc(store)).removed == ()
        assert all(holds(store, d) for d in (imported, pinned, used))
