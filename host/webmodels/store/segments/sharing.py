"""What stored files share below the file: ``webmodels du --explain`` and per-file usage.

Reads the index's ``recipes`` table (one recipe per file kept as segments) inside a
snapshot the caller holds; a file kept whole shares nothing (its bytes are its own).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from webmodels.digest import Digest
from webmodels.store.segments.recipe import Recipe, Segment, decode_recipe


@dataclass(frozen=True, slots=True)
class Shared:
    """What one file shares with ``other``: distinct segments both name, their bytes."""

    other: Digest
    segments: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Usage:
    """One stored file's bytes: ``logical`` its size; ``own`` the bytes only it holds
    (segments no other file names, its inline bytes; a whole file: all of it);
    ``shared`` the bytes of segments other files name too (held once for all)."""

    digest: Digest
    logical: int
    own: int
    shared: int
    segmented: bool


def load_recipes(db: sqlite3.Connection) -> dict[Digest, Recipe]:
    return {Digest(r[0]): decode_recipe(bytes(r[1])) for r in db.execute("SELECT * FROM recipes")}


def explain(recipes: dict[Digest, Recipe], digest: Digest) -> list[Shared]:
    """Every other file kept as segments that shares a segment with ``digest``, most
    shared bytes first (empty for a file kept whole)."""
    mine = _distinct(recipes[digest]) if digest in recipes else {}
    found = []
    for other, recipe in recipes.items():
        if other == digest:
            continue
        common = mine.keys() & _distinct(recipe).keys()
        if common:
            found.append(Shared(other, len(common), sum(mine[d].size for d in common)))
    return sorted(found, key=lambda s: (-s.bytes, s.other.hex))


def usage(recipes: dict[Digest, Recipe], sizes: dict[Digest, int]) -> list[Usage]:
    """Per stored file (``sizes``: digest to logical size), largest first."""
    holders: dict[Digest, int] = {}
    for held in recipes.values():
        for segment_digest in _distinct(held):
            holders[segment_digest] = holders.get(segment_digest, 0) + 1
    out = []
    for digest, size in sizes.items():
        recipe = recipes.get(digest)
        if recipe is None:
            out.append(Usage(digest, size, size, 0, segmented=False))
            continue
        segments = _distinct(recipe).values()
        shared = sum(s.size for s in segments if holders[s.digest] > 1)
        own = sum(s.size for s in segments if holders[s.digest] == 1) + recipe.inline_bytes
        out.append(Usage(digest, size, own, shared, segmented=True))
    return sorted(out, key=lambda u: (-u.logical, u.digest.hex))


def file_usage(db: sqlite3.Connection, digest: Digest, size: int) -> Usage:
    """One file's usage from the segments' reference counts (table ``segment_refs``),
    without decoding any other recipe: what the popup shows per model."""
    row = db.execute("SELECT recipe FROM recipes WHERE sha256 = ?", (digest.hex,)).fetchone()
    if row is None:
        return Usage(digest, size, size, 0, segmented=False)
    recipe = decode_recipe(bytes(row[0]))
    segments = _distinct(recipe)
    holders: dict[str, int] = {}
    names = [d.hex for d in segments]
    for start in range(0, len(names), _BATCH):
        batch = names[start : start + _BATCH]
        marks = ",".join("?" * len(batch))
        query = f"SELECT segment, refs FROM segment_refs WHERE segment IN ({marks})"
        holders.update((str(r[0]), int(r[1])) for r in db.execute(query, batch))
    shared = sum(s.size for d, s in segments.items() if holders.get(d.hex, 0) > 1)
    own = sum(s.size for d, s in segments.items() if holders.get(d.hex, 0) <= 1)
    return Usage(digest, size, own + recipe.inline_bytes, shared, segmented=True)


_BATCH = 500  # SQLite's bound parameters per query (999 in old builds)


def _distinct(recipe: Recipe) -> dict[Digest, Segment]:
    return {segment.digest: segment for segment in recipe.segments}
