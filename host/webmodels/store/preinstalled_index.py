"""Indexing pre-installed folders in place: hashed once, re-checked by size and mtime,
re-indexed when the file or its ``models.json`` entry changes.

A folder's names and versions live in the ``preinstalled`` table only, never on the
stored object: they hold while the folder is configured, and a one-off
``--preinstalled DIR`` run leaves no label behind that names would not resolve to."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from webmodels.config import Config, system_preinstalled_dirs
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import preinstalled as pre
from webmodels.store.blobs import hash_file
from webmodels.store.metadata import ModelMetadata, read_onnx_metadata, sniff_format
from webmodels.store.records import Location
from webmodels.store.rows import upsert_object

if TYPE_CHECKING:
    from webmodels.store.store import Store

log = logging.getLogger(__name__)
_PRE_KEYS = ("sha256", "size", "mtime_ns", "name", "version", "state")


def refresh(store: Store) -> None:
    """Index the configured folders; only files whose size or mtime changed are hashed."""
    seen: set[str] = set()
    for folder in store.preinstalled_dirs:
        for entry in pre.read_folder(folder):
            seen.add(str(entry.path))
            try:
                index_entry(store, entry)
            except (OSError, HostError) as exc:
                log.warning("skipping pre-installed %s: %s", entry.path, exc)
    with store.index.write() as db:
        for row in db.execute("SELECT path FROM preinstalled").fetchall():
            if row["path"] not in seen:
                db.execute("DELETE FROM preinstalled WHERE path = ?", (row["path"],))


def index_entry(store: Store, entry: pre.PreinstalledEntry) -> None:
    stat = entry.path.stat()
    rows = store.index.query("SELECT * FROM preinstalled WHERE path = ?", (str(entry.path),))
    row = rows[0] if rows else None
    if row is not None and (row["size"], row["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns):
        digest, size = Digest(row["sha256"]), int(row["size"])  # unchanged: no re-hash
    else:
        digest, size = hash_file(entry.path)
    state = "ok" if entry.declared in (None, digest) else "quarantined"
    # models.json may change without the file: a corrected hash, a new name or version.
    listed = (digest.hex, size, stat.st_mtime_ns, entry.name, entry.version, state)
    if row is not None and tuple(row[k] for k in _PRE_KEYS) == listed:
        return
    if state != "ok" and entry.declared is not None:
        log.error(
            "pre-installed %s: hash %s, models.json says %s",
            entry.path,
            digest.hex,
            entry.declared.hex,
        )
    metadata = (
        read_onnx_metadata(entry.path)
        if entry.path.suffix == ".onnx" and state == "ok"
        else ModelMetadata(format=sniff_format(entry.path))
    )
    now = time.time()
    with store.index.write() as db:
        upsert_object(db, digest, size, metadata, None, None, now)
        db.execute(
            "INSERT OR REPLACE INTO preinstalled (path, folder, sha256, size, mtime_ns, "
            "name, version, state, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(entry.path),
                str(entry.folder),
                digest.hex,
                size,
                stat.st_mtime_ns,
                entry.name,
                entry.version,
                state,
                now,
            ),
        )


def problems(store: Store, *, required: Collection[Path] = ()) -> list[str]:
    """What is wrong with the configured folders, in words: a `required` folder missing
    or without ``models.json``, entries skipped, and files whose hash is not the one
    ``models.json`` declares (indexed as quarantined: never served)."""
    found: list[str] = []
    quarantined = {
        row["path"]: row["sha256"]
        for row in store.index.query("SELECT path, sha256 FROM preinstalled WHERE state != 'ok'")
    }
    for folder in store.preinstalled_dirs:
        scan = pre.scan_folder(folder, required=folder in required)
        found += scan.problems
        for entry in scan.entries:
            actual = quarantined.get(str(entry.path))
            if actual is not None and entry.declared is not None:
                found.append(
                    f"{entry.path} is not used: its SHA-256 is {actual}, "
                    f"{pre.MANIFEST} says {entry.declared.hex}"
                )
    return found


def configured_problems(store: Store, config: Config) -> list[str]:
    """`problems`, where every folder the user named (``--preinstalled``,
    ``WEBMODELS_PREINSTALLED``, the config file) must exist and hold a models.json."""
    system = set(system_preinstalled_dirs())
    return problems(store, required=[d for d in config.preinstalled_dirs if d not in system])


def removed_labels(store: Store) -> list[dict[str, str | None]]:
    """The labels older releases had copied from a models.json onto stored objects,
    which the `preinstalled_labels` migration removed (store/index.py)."""
    rows = store.index.query(
        "SELECT sha256, name, version FROM label_cleanups WHERE reason = 'preinstalled' "
        "ORDER BY cleaned_at, sha256"
    )
    return [{"sha256": r["sha256"], "name": r["name"], "version": r["version"]} for r in rows]


def check(store: Store, path: Path) -> Location | None:
    """The location of a pre-installed file if it is unchanged on disk (size, mtime);
    a changed one is re-indexed and None returned."""
    rows = store.index.query("SELECT * FROM preinstalled WHERE path = ?", (str(path),))
    if not rows or rows[0]["state"] != "ok":
        return None
    row = rows[0]
    try:
        stat = path.stat()
    except OSError:
        stat = None
    if stat is None or stat.st_size != row["size"] or stat.st_mtime_ns != row["mtime_ns"]:
        log.warning("pre-installed %s changed on disk; re-indexing", path)
        refresh(store)
        return None
    return Location(Digest(row["sha256"]), path, row["size"], preinstalled=True)
