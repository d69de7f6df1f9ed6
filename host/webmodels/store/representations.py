"""Rows of the ``representations`` table: forms the host derived of a model, with
their provenance (source SHA-256, recipe, tool versions, the numerical check's error).

A form is an ordinary blob, so pages read it like any model. What keeps it alive
depends on its scope: a form in the shared scope ('' : a common or pre-installed
model, the CLI) has a ``derived`` reference to its source and goes with it; a form in
a partition's scope has that partition's ``site`` reference, exactly like a model the
site downloaded, so forgetting the site forgets the form (`forget_scope`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.store.blobs import PendingBlob
from webmodels.store.derived import DERIVED
from webmodels.store.metadata import ModelMetadata
from webmodels.store.rows import add_ref, upsert_object
from webmodels.store.segments import Recipe

if TYPE_CHECKING:
    from webmodels.store.index import Index
    from webmodels.store.store import Store

ORIGIN = "representation"  # blobs.origin of a derived form


@dataclass(frozen=True, slots=True)
class Provenance:
    source: Digest
    recipe: str  # canonical JSON (Recipe.key)
    scope: str
    form: Digest
    tools: Mapping[str, str]
    max_error: float
    tolerance: float
    created_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.hex,
            "recipe": json.loads(self.recipe),
            "tools": dict(self.tools),
            "max_error": self.max_error,
            "tolerance": self.tolerance,
        }


def find(index: Index, source: Digest, recipe: str, scope: str) -> Provenance | None:
    """The form of ``source`` made by ``recipe`` in ``scope``, while its blob is there."""
    rows = index.query(
        "SELECT r.* FROM representations r JOIN blobs b ON b.sha256 = r.sha256 "
        "AND b.state = 'ok' WHERE r.source = ? AND r.recipe = ? AND r.scope = ?",
        (source.hex, recipe, scope),
    )
    return _provenance(rows[0]) if rows else None


def of_form(index: Index, form: Digest, scopes: tuple[str, ...]) -> Provenance | None:
    """How ``form`` was made, as recorded in one of ``scopes`` (None: not a form)."""
    marks = ",".join("?" * len(scopes))
    rows = index.query(
        f"SELECT * FROM representations WHERE sha256 = ? AND scope IN ({marks}) "
        "ORDER BY scope DESC LIMIT 1",
        (form.hex, *scopes),
    )
    return _provenance(rows[0]) if rows else None


def all_forms(index: Index) -> list[Provenance]:
    rows = index.query("SELECT * FROM representations ORDER BY source, created_at")
    return [_provenance(row) for row in rows]


def publish_form(
    store: Store,
    pending: PendingBlob,
    metadata: ModelMetadata,
    provenance: Provenance,
    *,
    recipes: Mapping[Digest, Recipe] | None = None,
) -> None:
    """Publish a checked form and its provenance in one write transaction."""
    publish_files(store, [(pending, metadata, provenance)], recipes=recipes)


def publish_files(
    store: Store,
    files: list[tuple[PendingBlob, ModelMetadata, Provenance]],
    *,
    recipes: Mapping[Digest, Recipe] | None = None,
) -> None:
    """Publish the files of a checked form (one, or a graph and its external data),
    each with its provenance row, in one write transaction. A file with one of
    ``recipes`` (already ingested as segments: representations/form_segments.py) is
    kept as segments, unless its whole file is already there (as publish_derived)."""
    now = time.time()
    moved: list[PendingBlob] = []
    unused: list[Recipe] = []  # segments written for a file kept whole after all
    try:
        with store.index.write() as db:
            for pending, metadata, provenance in files:
                recipe = (recipes or {}).get(pending.digest)
                if recipe is not None and store.files.path_of(pending.digest).is_file():
                    unused.append(recipe)
                    recipe = None  # kept whole already
                if recipe is None:
                    moved.append(pending)  # from here the file may be in place
                    store.files.publish(pending)
                upsert_object(db, pending.digest, pending.size, metadata, None, None, now)
                db.execute(
                    "INSERT INTO blobs (sha256, origin, stored_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(sha256) DO UPDATE SET state = 'ok'",
                    (pending.digest.hex, ORIGIN, now),
                )
                if recipe is not None:
                    store.segmented.publish(db, pending.digest, recipe, pending)
                scope = provenance.scope
                ref = ("site", scope) if scope else (DERIVED, provenance.source.hex)
                add_ref(db, pending.digest, ref, now)
                _record(db, provenance, now)
    except BaseException:
        for pending in moved:  # the index never took them: no file stays without its row
            store.remove_unindexed(pending.digest)
        _take_back(store, (recipes or {}).values())  # those no recipe names now
        raise
    store.files.settled([pending.digest for pending, _, _ in files])
    _take_back(store, unused)


def _take_back(store: Store, recipes: Iterable[Recipe]) -> None:
    segments = [segment for recipe in recipes for segment in recipe.segments]
    if segments:
        store.segmented.remove_unnamed(store.index, segments)


def _record(db: sqlite3.Connection, p: Provenance, now: float) -> None:
    db.execute(
        "INSERT OR REPLACE INTO representations (source, recipe, scope, sha256, tools, "
        "max_error, tolerance, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            p.source.hex,
            p.recipe,
            p.scope,
            p.form.hex,
            json.dumps(dict(p.tools), sort_keys=True),
            p.max_error,
            p.tolerance,
            now,
        ),
    )


def forget_scope(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> None:
    """Drop the provenance rows of the scopes ``where`` selects (a forgotten site);
    its ``site`` references, dropped beside, were what kept those forms."""
    db.execute(f"DELETE FROM representations WHERE {where}", args)


def _provenance(row: sqlite3.Row) -> Provenance:
    return Provenance(
        source=Digest(row["source"]),
        recipe=str(row["recipe"]),
        scope=str(row["scope"]),
        form=Digest(row["sha256"]),
        tools=json.loads(row["tools"]),
        max_error=float(row["max_error"]),
        tolerance=float(row["tolerance"]),
        created_at=float(row["created_at"]),
    )
