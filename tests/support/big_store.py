"""A store of many tiny files, built in seconds: index rows and blob files written
directly, as `Store.ingest` leaves them (the scale tests and scripts/bench/list_scale.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webmodels.store import Store
from webmodels.store.metadata import ModelMetadata

OPAQUE = json.dumps(ModelMetadata(format="binary").to_json())


@dataclass(frozen=True)
class BigStore:
    root: Path
    digests: list[str]  # in the order the files were made
    names: list[str]  # each file's model name

    def of_site(self, partition_key: str, sites: Sequence[str]) -> list[str]:
        return [d for i, d in enumerate(self.digests) if sites[i % len(sites)] == partition_key]


def build_store(
    root: Path,
    count: int,
    *,
    per_model: int = 6,
    sites: Sequence[str] = (),
    blob_files: bool = True,
) -> BigStore:
    """`count` files under `root` (a store folder), `per_model` of them under each name
    ``acme/model-NNNNN`` 1.0.0; file i obtained by partition ``sites[i % len(sites)]``.
    `blob_files=False` writes the index rows only (creating 10,000 files takes most of
    the time on a busy disk): for tests that list and never open a file."""
    now = time.time()
    digests, names, objects, blobs, refs = [], [], [], [], []
    with Store(root) as store:
        for i in range(count):
            data = f"webmodels scale fixture file {i}\n".encode()
            sha = hashlib.sha256(data).hexdigest()
            if blob_files:
                path = store.files.blob_dir / sha[:2] / sha
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data)
            name = f"acme/model-{i // per_model:05d}"
            digests.append(sha)
            names.append(name)
            objects.append((sha, len(data), "binary", OPAQUE, name, "1.0.0", now + i * 1e-6))
            blobs.append((sha, "downloaded", now))
            if sites:
                refs.append((sha, "site", sites[i % len(sites)], now, now))
        with store.index.write() as db:
            db.executemany(
                "INSERT INTO objects (sha256, size, format, metadata, name, version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                objects,
            )
            db.executemany("INSERT INTO blobs (sha256, origin, stored_at) VALUES (?, ?, ?)", blobs)
            db.executemany(
                "INSERT INTO refs (sha256, kind, key, created_at, used_at) VALUES (?, ?, ?, ?, ?)",
                refs,
            )
    return BigStore(root, digests, names)
