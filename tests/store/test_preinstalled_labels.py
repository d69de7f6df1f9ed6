"""A store written by an older release keeps no label its pre-installed folders left.

Releases before this one copied a folder's ``models.json`` name and version onto the
stored object itself: after a one-off ``--preinstalled DIR`` run, `ls` went on showing
"google/magika 1.0.3 imported" while `resolve google/magika@^1` said not_found. The
`preinstalled_labels` migration removes such labels, and `doctor` says what it removed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from support.host import run_cli
from support.models import tiny_model
from webmodels.cli.catalog_cmd import resolve_as_user
from webmodels.cli.doctor_cmd import check_preinstalled
from webmodels.config import Config, Flags, load_config
from webmodels.naming.resolve import NameQuery
from webmodels.naming.versions import ModelName, VersionRange
from webmodels.store import Store
from webmodels.store.index import MIGRATIONS

NAME, VERSION = "google/magika", "1.0.3"
# The schema of the releases before the cleanup (all of it, on code without it).
OLD_SCHEMA = next((n for n, m in enumerate(MIGRATIONS) if "label_cleanups" in m), len(MIGRATIONS))


def old_store(home: Path, tmp_path: Path) -> tuple[Path, str]:
    """The store an older release left after `import model.onnx` and a one-off
    `--preinstalled DIR` run: the folder's label on the object and in its row."""
    folder = tmp_path / "preinstalled"
    model = tiny_model(folder / "magika" / "model.onnx")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    entry = {"file": "magika/model.onnx", "sha256": sha, "name": NAME, "version": VERSION}
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    with Store.open(config(home)) as store:
        store.import_file(model)  # stored, unnamed
    db = sqlite3.connect(home / "store-v2" / "index.sqlite3", isolation_level=None)
    db.execute("DROP TABLE IF EXISTS label_cleanups")
    # What later schemas added and re-adding would refuse: segments' pack columns.
    db.execute("DROP INDEX IF EXISTS segment_refs_pack")
    for column in ("pack", "pack_offset"):
        db.execute(f"ALTER TABLE segment_refs DROP COLUMN {column}")
    db.execute(f"PRAGMA user_version = {OLD_SCHEMA}")
    db.execute("UPDATE objects SET name = ?, version = ? WHERE sha256 = ?", (NAME, VERSION, sha))
    stat = model.stat()
    db.execute(
        "INSERT INTO preinstalled (path, folder, sha256, size, mtime_ns, name, version, "
        "state, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'ok', ?)",
        (str(model), str(folder), sha, stat.st_size, stat.st_mtime_ns, NAME, VERSION, 1.0),
    )
    db.close()
    return folder, sha


def config(home: Path, *folders: Path) -> Config:
    env = {"WEBMODELS_HOME": str(home), "WEBMODELS_CONFIG": str(home / "no-config.toml")}
    return load_config(Flags(preinstalled=list(folders) or None), env=env)


def test_ls_and_resolve_agree_after_the_folder_is_gone(home: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    _, sha = old_store(home, tmp_path)

    [listed] = json.loads(run_cli(home, "--json", "ls").stdout)
    resolved = run_cli(home, "resolve", f"{NAME}@^1", check=False)

    assert resolved.returncode != 0 and "not_found" in resolved.stderr
    assert listed["sha256"] == sha and listed["source"] == "imported"
    assert (listed["name"], listed["version"]) == (None, None)  # no name `resolve` denies
    print(f"two CLI runs on an old store took {time.monotonic() - started:.1f} s")


def test_a_configured_folder_still_names_its_file(home: Path, tmp_path: Path) -> None:
    folder, sha = old_store(home, tmp_path)
    query = NameQuery(ModelName.parse(NAME), VersionRange.parse("^1"))

    with Store.open(config(home, folder)) as store:  # the folder is still configured
        [record] = store.list_models()
        assert (record.name, record.version) == (NAME, VERSION)
        assert resolve_as_user(store, query).candidate.digest.hex == sha
    with Store.open(config(home)) as store:  # and then no longer
        [record] = store.list_models()
        assert (record.name, record.version) == (None, None)

    check = check_preinstalled(config(home))
    assert f"{NAME} {VERSION}" in check.summary and sha[:12] in check.summary
    assert check.details["labels_removed"] == [{"sha256": sha, "name": NAME, "version": VERSION}]
