"""What must hold in a store that keeps files as segments, after every injected fault,
checked as the next start sees it (the whole-file checks are stress_lib/checks.py).

* `PRAGMA integrity_check` is ok;
* every indexed blob rebuilds from its recipe (or its whole file) and re-hashes to its
  name; no segment a recipe names is missing or of the wrong size;
* every segment's reference count is the number of recipes naming it (a count too
  low lets a later delete remove a segment another file still needs);
* no blob file without its index row, no segment file or pack no recipe names that
  was not there before, and no temp file (the store's ``tmp/``, the segments' ``tmp/``, ``views/``)
  survives the next start.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stress_lib.checks import Verdict, sha256_of
from webmodels.digest import Digest
from webmodels.store import blobs
from webmodels.store.segments import Recipe, reconstruct, segment_store
from webmodels.store.segments.recipe import decode_recipe
from webmodels.store.segments.reconstruct import SegmentMissing
from webmodels.store.store import Store


@contextmanager
def next_start() -> Iterator[None]:
    """The writers of this run are gone, as they are for a newly started host."""
    real = blobs.process_alive, segment_store.process_alive
    blobs.process_alive = segment_store.process_alive = lambda pid: False
    try:
        yield
    finally:
        blobs.process_alive, segment_store.process_alive = real


def unreferenced_segments(store: Store) -> set[str]:
    """Segment files and packs no row names there (hex digests, pack names)."""
    with store.index.snapshot() as db:
        own = {d.hex for d, _, _ in store.segmented.orphans(db)}
        return own | {name for name, _, _ in store.segmented.orphan_packs(db)}


def check_segmented(root: Path, verdict: Verdict, *, before: frozenset[str]) -> None:
    """Open `root` as the next start does and check it (see the module doc); `before`:
    unreferenced segments and blob files there before the operation ran."""
    with next_start():
        store = Store(root)
        store.remove_stale_temp_files()
    try:
        _check(store, verdict, before)
    finally:
        store.close()


def _check(store: Store, verdict: Verdict, before: frozenset[str]) -> None:
    ok = [r[0] for r in store.index.query("PRAGMA integrity_check")]
    if ok != ["ok"]:
        verdict.corrupted.append(f"integrity_check: {ok}")
    recipes = {r[0]: decode_recipe(bytes(r[1])) for r in store.index.query("SELECT * FROM recipes")}
    named: Counter[str] = Counter()
    for recipe in recipes.values():
        named.update({s.digest.hex for s in recipe.segments})
    counts = {r[0]: r[1] for r in store.index.query("SELECT segment, refs FROM segment_refs")}
    for segment in set(named) | set(counts):
        if counts.get(segment, 0) != named[segment]:
            verdict.corrupted.append(
                f"segment {segment[:12]}: count {counts.get(segment, 0)}, "
                f"named by {named[segment]} recipes"
            )
    rows = store.index.query(
        "SELECT b.sha256, o.size FROM blobs b JOIN objects o USING (sha256) WHERE b.state = 'ok'"
    )
    for row in rows:
        digest = Digest(row["sha256"])
        if digest.hex in recipes:
            located = store.recipe_of(digest)  # each segment where the index says it is
            _check_recipe(store, digest, located or recipes[digest.hex], verdict)
            continue
        path = store.files.path_of(digest)
        if not path.is_file():
            verdict.lost.append(f"indexed blob {digest.short} has no file")
        elif path.stat().st_size != row["size"] or sha256_of(path) != digest.hex:
            verdict.corrupted.append(f"blob {digest.short} does not re-hash")
    indexed = {r["sha256"] for r in store.index.query("SELECT sha256 FROM blobs")}
    for digest, _path in store.files.iter_blobs():
        if digest.hex not in indexed and digest.hex not in before:
            verdict.corrupted.append(f"unindexed blob {digest.short}")
    for segment in sorted(unreferenced_segments(store) - before):
        verdict.corrupted.append(f"unreferenced segment {segment[:12]} survives the next start")
    seg = store.segmented
    temps = [
        *[
            p
            for kind in ("partial", "aside", "publishing")
            for p in store.files.tmp_dir.glob(f"*.{kind}")
        ],
        *seg.store.tmp_dir.glob("*.seg"),
        *seg.store.tmp_dir.glob("*.pack"),
        *seg.view_dir.glob(".*.partial"),
    ]
    for temp in temps:
        verdict.corrupted.append(f"temp file survives the next start: {temp.name}")


def _check_recipe(store: Store, digest: Digest, recipe: Recipe, verdict: Verdict) -> None:
    for segment in recipe.segments:
        if not store.segmented.store.has(segment):
            verdict.lost.append(f"blob {digest.short}: segment {segment.digest.short} missing")
            return
    whole = hashlib.sha256()
    try:
        for block in reconstruct(store.segmented.store, recipe):
            whole.update(block)
    except SegmentMissing as exc:
        verdict.lost.append(f"blob {digest.short}: {exc}")
        return
    if whole.hexdigest() != digest.hex:
        verdict.corrupted.append(f"blob {digest.short} does not rebuild to its name")
