"""Index rows written from several places (imports, downloads, pre-installed folders)."""

from __future__ import annotations

import json
import sqlite3

from webmodels.digest import Digest
from webmodels.store.metadata import ModelMetadata


def upsert_object(
    db: sqlite3.Connection,
    digest: Digest,
    size: int,
    metadata: ModelMetadata,
    name: str | None,
    version: str | None,
    now: float,
) -> None:
    # A richer description (ONNX metadata) replaces an opaque one, never the reverse.
    db.execute(
        "INSERT INTO objects (sha256, size, format, metadata, name, version, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET "
        "format = CASE WHEN excluded.format = 'onnx' THEN 'onnx' ELSE format END, "
        "metadata = CASE WHEN excluded.format = 'onnx' THEN excluded.metadata ELSE metadata END, "
        "name = COALESCE(excluded.name, name), version = COALESCE(excluded.version, version)",
        (digest.hex, size, metadata.format, json.dumps(metadata.to_json()), name, version, now),
    )


def add_ref(db: sqlite3.Connection, digest: Digest, ref: tuple[str, str], now: float) -> None:
    kind, key = ref
    db.execute(
        "INSERT INTO refs (sha256, kind, key, created_at, used_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(sha256, kind, key) DO UPDATE SET used_at = excluded.used_at",
        (digest.hex, kind, key, now, now),
    )
