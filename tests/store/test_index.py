"""The SQLite index: WAL, its schema version, refusing a newer one, transactions,
and several processes writing to one store at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support.held import held_in, read_held
from support.host import run_cli, webmodels_env
from support.models import tiny_model
from webmodels.errors import HostError
from webmodels.store import Store
from webmodels.store.index import SCHEMA_VERSION, Index


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_index_is_wal_at_the_current_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    Index(path).close()

    assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "user_version") == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"objects", "blobs", "preinstalled", "refs"} <= tables


def test_reopening_keeps_the_data_and_the_schema(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    with Store(home / "store-v2") as store:
        imported = store.import_file(model).model

    for _ in range(2):
        with Store(home / "store-v2") as store:
            assert store.list_models() == [imported]
            assert store.index.schema_version == SCHEMA_VERSION


def test_an_index_from_a_newer_webmodels_is_refused(home: Path, tmp_path: Path) -> None:
    run_cli(home, "ls")  # creates the store
    path = home / "store-v2" / "index.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(HostError) as caught:
        Index(path)
    result = run_cli(home, "ls", check=False)

    assert "newer than this webmodels" in caught.value.message
    assert result.returncode == 1
    assert "upgrade webmodels" in result.stderr
    assert pragma(path, "user_version") == SCHEMA_VERSION + 1  # left as it was


def test_a_failed_write_transaction_leaves_nothing(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite3")
    insert = (
        "INSERT INTO objects (sha256, size, format, metadata, created_at) "
        "VALUES (?, 1, 'binary', '{}', 0)"
    )

    with pytest.raises(RuntimeError), index.write() as db:
        db.execute(insert, ("a" * 64,))
        raise RuntimeError("crash between two statements")
    with index.write() as db:
        db.execute(insert, ("b" * 64,))

    assert [r["sha256"] for r in index.query("SELECT sha256 FROM objects")] == ["b" * 64]
    index.close()


def test_opening_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    # Another process is still creating the index (a write transaction, not yet in WAL
    # mode): switching to WAL must wait for it like every other statement does.
    path = tmp_path / "index.sqlite3"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE unrelated (x)")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()

    index = Index(path)

    release.join()
    other.close()
    assert index.schema_version == SCHEMA_VERSION
    assert pragma(path, "journal_mode") == "wal"
    index.close()


def start_import(home: Path, *files: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "webmodels", "--json", "import", *map(str, files)],
        env=webmodels_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_importing_one_file_at_once_store_one_blob(
    home: Path, tmp_path: Path
) -> None:
    # Both start on a store that does not exist yet: creating the index races too.
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=2 * 1024 * 1024)
    procs = [start_import(home, model) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    results = [json.loads(out)[0] for out, _ in outputs]
    assert sorted(r["deduplicated"] for r in results) == [False, True]
    assert len({r["model"]["sha256"] for r in results}) == 1
    [stored] = held_in(home)  # whole or as segments (support/held.py)
    assert read_held(home, stored) == model.read_bytes()
    assert list((home / "store-v2" / "tmp").iterdir()) == []
    with sqlite3.connect(home / "store-v2" / "index.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1


def test_processes_importing_different_files_at_once_all_succeed(
    home: Path, tmp_path: Path
) -> None:
    models = [tiny_model(tmp_path / f"m{n}.onnx", seed=n, weight_bytes=50_000) for n in range(4)]
    procs = [start_import(home, model) for model in models]
    outputs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    listed = json.loads(run_cli(home, "--json", "ls").stdout)
    assert len(listed) == 4
    assert len(held_in(home)) == 4
