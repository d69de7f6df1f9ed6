"""Derived blobs: what the host made from a model (the compile cache's optimized graphs
and their weights).

They are indexed like any blob but kept alive by a ``derived`` reference to their
source, never listed as models; a trigger drops the references with the source, so
`gc` removes them once the source is gone.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.store.blobs import PendingBlob
from webmodels.store.index import Index
from webmodels.store.metadata import ModelMetadata
from webmodels.store.rows import add_ref, upsert_object
from webmodels.store.segments import Recipe

if TYPE_CHECKING:
    from webmodels.store.store import Store

DERIVED = "derived"


def publish_derived(
    store: Store,
    source: Digest,
    pending: Sequence[PendingBlob],
    *,
    record: Callable[[sqlite3.Connection], None],
    recipes: Mapping[Digest, Recipe] | None = None,
) -> bool:
    """Publish blobs made from ``source`` (an optimized graph and its weights) in one
    write transaction, each kept alive by a ``derived`` reference for as long as the
    source exists (a trigger drops the references with the source); ``record`` adds
    the caller's own rows there. False, publishing nothing, when the source is gone.
    A blob with one of ``recipes`` (already ingested as segments) is kept as segments,
    unless its whole file is already there.
    """
    now = time.time()
    published: list[Digest] = []
    try:
        with store.index.write() as db:
            if not _source_present(db, source):
                return False
            for blob in pending:
                recipe = (recipes or {}).get(blob.digest)
                if recipe is not None and store.files.path_of(blob.digest).is_file():
                    recipe = None  # kept whole already
                if recipe is None and store.files.publish(blob):
                    published.append(blob.digest)
                meta = ModelMetadata(format=DERIVED)
                upsert_object(db, blob.digest, blob.size, meta, None, None, now)
                db.execute(
                    "INSERT INTO blobs (sha256, origin, stored_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(sha256) DO UPDATE SET state = 'ok'",
                    (blob.digest.hex, DERIVED, now),
                )
                if recipe is not None:
                    store.segmented.publish(db, blob.digest, recipe, blob)
                add_ref(db, blob.digest, (DERIVED, source.hex), now)
            record(db)
    except BaseException:
        for digest in published:
            store.remove_unindexed(digest)
        raise
    store.files.settled(blob.digest for blob in pending)
    return True


def derived_from(index: Index, sources: Iterable[Digest]) -> list[Digest]:
    """The blobs made from ``sources`` (for removing them together)."""
    found: list[Digest] = []
    for source in sources:
        rows = index.query(
            "SELECT sha256 FROM refs WHERE kind = ? AND key = ?", (DERIVED, source.hex)
        )
        found += [Digest(r["sha256"]) for r in rows]
    return found


def _source_present(db: sqlite3.Connection, source: Digest) -> bool:
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = ? AND state = 'ok') "
        "OR EXISTS (SELECT 1 FROM preinstalled WHERE sha256 = ? AND state = 'ok')",
        (source.hex, source.hex),
    ).fetchone()
    return bool(row[0])
