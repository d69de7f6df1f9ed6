"""A store made by webmodels before store-v2 (tests/fixtures/store_v1: made by that
version's own code, commit 72fc7de) becomes a store-v2 with every model intact: the
folder moves when the host starts, each site still sees exactly what it saw, names,
versions, pins and shares hold, the quarantined file stays quarantined, and once the
whole files are converted to segments every file reads back byte for byte and the two
versions of the model share their common weights on disk (store/layout.py,
store/convert.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from support.host import HostProcess, run_cli
from webmodels.config import Config
from webmodels.digest import Digest
from webmodels.store import Store
from webmodels.store.segments.segment_store import LAYOUT as SEGMENTS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store_v1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
BY_VERSION = {(f["name"], f["version"]): f for f in EXPECTED["files"]}
ENCODER_10 = BY_VERSION[("demo/encoder", "1.0")]["sha256"]
ENCODER_11 = BY_VERSION[("demo/encoder", "1.1")]["sha256"]
TOKENIZER = BY_VERSION[("demo/tokenizer", "1.0")]["sha256"]
QUARANTINED = BY_VERSION[("demo/other", "1.0")]["sha256"]


def page(site: str) -> dict[str, Any]:
    partition = {"top_site": site, "origin": site}
    return {"partition": partition, "user_activation": True, "trusted": False}


SITE_A, SITE_B, SITE_C = (page(f"https://{s}.localhost") for s in "abc")


def old_store(home: Path) -> dict[str, bytes]:
    """The fixture unpacked as ``<home>/store-v1``; the bytes of each file it holds."""
    with tarfile.open(FIXTURE / "store-v1.tar.gz") as tar:
        tar.extractall(home, filter="tar")
    held = {}
    for path in (home / "store-v1" / "blobs").rglob("*"):
        if path.is_file():
            held[path.name] = path.read_bytes()
            assert hashlib.sha256(held[path.name]).hexdigest() == path.name
    assert set(held) == {ENCODER_10, ENCODER_11, TOKENIZER}
    return held


def index_rows(root: Path) -> list[dict[str, Any]]:
    with Store(root) as store:
        rows = store.index.query(
            "SELECT o.sha256, o.size, o.name, o.version, b.state FROM objects o "
            "JOIN blobs b USING (sha256) ORDER BY o.sha256"
        )
        refs = store.index.query("SELECT sha256, kind, key FROM refs ORDER BY 1, 2, 3")
    return [
        {
            "sha256": sha,
            "size": size,
            "name": name,
            "version": version,
            "state": state,
            "refs": sorted([k, key] for s, k, key in refs if s == sha and k != "import"),
        }
        for sha, size, name, version, state in rows
    ]


def found(host: HostProcess, sha: str, context: dict[str, Any]) -> bool:
    return bool(host.result("cos.lookup", {"sha256": sha}, context=context)["found"])


def test_a_store_v1_made_by_the_old_code_migrates_with_all_models_intact(home: Path) -> None:
    held = old_store(home)

    host = HostProcess(home)
    try:
        assert host.result("hello")["store_layout"] == "store-v2"
    finally:
        assert host.close() == 0
    assert not (home / "store-v1").exists() and (home / "store-v2" / "blobs").is_dir()
    assert index_rows(home / "store-v2") == EXPECTED["files"]

    host = HostProcess(home)
    try:
        # Each site sees exactly what it saw before: its own file, a file shared with
        # it, nothing of another site's.
        assert found(host, ENCODER_10, SITE_A) and not found(host, ENCODER_10, SITE_B)
        assert found(host, ENCODER_11, SITE_B) and not found(host, ENCODER_11, SITE_A)
        assert found(host, TOKENIZER, SITE_A) and not found(host, TOKENIZER, SITE_C)
        assert not found(host, QUARANTINED, SITE_A)
        read = host.result("models.read", {"sha256": ENCODER_10, "length": 4096}, context=SITE_A)
        assert base64.b64decode(read["data"]) == held[ENCODER_10][:4096]
    finally:
        assert host.close() == 0

    root = home / "store-v2"
    before = index_rows(root)
    converted = json.loads(run_cli(home, "--json", "store", "convert").stdout)
    assert converted["converted"] == 3  # the quarantined file is not brought back

    with Store(root) as store:
        assert list(store.files.iter_blobs()) == []  # no whole file left
        for sha, data in held.items():
            assert store.read(Digest(sha), 0, len(data) + 1)[0] == data
        stats = store.stats()
    assert index_rows(root) == before  # converting changed no name, version or reference
    verified = run_cli(home, "--json", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The two versions share two of their three 16 KiB weights: on disk once.
    segment_bytes = sum(
        p.stat().st_size for p in (root / SEGMENTS / "sha256").rglob("*") if p.is_file()
    )
    logical = sum(len(data) for data in held.values())
    print(f"{logical} B logical, {segment_bytes} B of segments on disk; {stats}")
    assert segment_bytes <= logical - 2 * (16 << 10)


def test_the_old_folder_stays_while_another_process_has_it_open(home: Path) -> None:
    """A host of the previous version still running (started by the browser before
    the upgrade) holds store-v1 open: the folder is not pulled away from it; the new
    code works in place and moves it at the first start after that host is gone."""
    held = old_store(home)
    index = home / "store-v1" / "index.sqlite3"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            "db.execute('SELECT count(*) FROM blobs').fetchall(); print('open', flush=True); "
            "sys.stdin.read()",
            str(index),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        config = Config(home=home, log_dir=home / "logs")
        with Store.open(config) as store:
            assert store.root == home / "store-v1" == config.store_dir
            assert store.read(Digest(ENCODER_11), 0, 100)[0] == held[ENCODER_11][:100]
        assert not (home / "store-v2").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0

    listed = json.loads(run_cli(home, "--json", "ls").stdout)  # a new process: moves it
    assert not (home / "store-v1").exists() and (home / "store-v2").is_dir()
    assert Config(home=home, log_dir=home / "logs").store_dir == home / "store-v2"
    assert {m["sha256"] for m in listed} >= {ENCODER_10, ENCODER_11, TOKENIZER}


def test_a_store_v2_is_used_and_a_later_store_v1_is_left_alone(home: Path) -> None:
    """A version from before store-v2 started after the move makes a new, empty
    store-v1; the new code keeps using store-v2 and never touches that folder."""
    old_store(home)
    (home / "store-v1").rename(home / "store-v2")
    (home / "store-v1").mkdir()
    marker = home / "store-v1" / "left-by-an-old-version"
    marker.write_text("")
    config = Config(home=home, log_dir=home / "logs")
    with Store.open(config) as store:
        assert store.root == home / "store-v2" == config.store_dir
        assert store.get(Digest(ENCODER_10)) is not None
    assert marker.exists()
