"""Index rows of model manifests: a manifest and its entries, written in one
transaction once every member file is stored. An entry keeps its blob alive in gc
(store/gc.py) for as long as the manifest exists."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.values import Manifest, parse_manifest
from webmodels.store.index import Index


def save_manifest(
    index: Index, manifest: Manifest, *, name: str | None = None, version: str | None = None
) -> None:
    """Record ``manifest`` (idempotent); `not_found` if a member is not stored."""
    with index.write() as db:
        for entry in manifest.entries:
            stored = db.execute(
                "SELECT 1 FROM blobs b JOIN objects o USING (sha256) "
                "WHERE sha256 = ? AND state = 'ok' AND o.size = ?",
                (entry.digest.hex, entry.size),
            ).fetchone()
            if stored is None:
                raise HostError("not_found", f"{entry.path} ({entry.digest.short}) is not stored")
        db.execute(
            "INSERT INTO manifests (sha256, document, name, version, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET "
            "name = COALESCE(excluded.name, name), version = COALESCE(excluded.version, version)",
            (manifest.digest.hex, manifest.canonical.decode("ascii"), name, version, time.time()),
        )
        db.executemany(
            "INSERT OR IGNORE INTO manifest_entries (manifest, path, sha256, size, role) "
            "VALUES (?, ?, ?, ?, ?)",
            [(manifest.digest.hex, e.path, e.digest.hex, e.size, e.role) for e in manifest.entries],
        )


def load_manifest(index: Index, digest: Digest) -> Manifest | None:
    rows = index.query("SELECT document FROM manifests WHERE sha256 = ?", (digest.hex,))
    return parse_manifest(json.loads(rows[0]["document"])) if rows else None


def find_manifest(index: Index, name: str) -> Digest | None:
    """The newest manifest stored under ``name``."""
    rows = index.query(
        "SELECT sha256 FROM manifests WHERE name = ? ORDER BY created_at DESC LIMIT 1", (name,)
    )
    return Digest(rows[0]["sha256"]) if rows else None


def delete_manifest(index: Index, digest: Digest) -> bool:
    """Forget a manifest; its files stay while anything else references them (then gc)."""
    with index.write() as db:
        return db.execute("DELETE FROM manifests WHERE sha256 = ?", (digest.hex,)).rowcount > 0


@dataclass(frozen=True, slots=True)
class StoredManifest:
    manifest: Manifest
    name: str | None
    version: str | None

    @property
    def label(self) -> str:
        """How the user knows it: ``name@version``, the name, or the short hash."""
        if self.name is None:
            return self.manifest.digest.short
        return f"{self.name}@{self.version}" if self.version else self.name


def list_manifests(index: Index) -> list[StoredManifest]:
    """Every stored manifest, by name then age."""
    rows = index.query(
        "SELECT document, name, version FROM manifests "
        "ORDER BY COALESCE(name, ''), COALESCE(version, ''), created_at, sha256"
    )
    return [_stored(row) for row in rows]


def manifests_naming(index: Index, digest: Digest) -> list[StoredManifest]:
    """The stored manifests that name the file ``digest``."""
    rows = index.query(
        "SELECT document, name, version FROM manifests WHERE sha256 IN "
        "(SELECT manifest FROM manifest_entries WHERE sha256 = ?) ORDER BY created_at",
        (digest.hex,),
    )
    return [_stored(row) for row in rows]


def find_named_manifest(index: Index, name: str, version: str | None) -> Digest | None:
    """The newest manifest stored under ``name`` (and ``version`` when given)."""
    if version is None:
        return find_manifest(index, name)
    rows = index.query(
        "SELECT sha256 FROM manifests WHERE name = ? AND version = ? "
        "ORDER BY created_at DESC LIMIT 1",
        (name, version),
    )
    return Digest(rows[0]["sha256"]) if rows else None


def _stored(row: sqlite3.Row) -> StoredManifest:
    return StoredManifest(parse_manifest(json.loads(row["document"])), row["name"], row["version"])


def manifests_named(index: Index, name: str) -> list[StoredManifest]:
    """Every manifest stored under ``name``, newest first."""
    rows = index.query(
        "SELECT document, name, version FROM manifests WHERE name = ? ORDER BY created_at DESC",
        (name,),
    )
    return [_stored(row) for row in rows]
