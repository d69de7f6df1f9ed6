"""The index's side of segments: how many recipes name each, where its bytes are, and
freeing the bytes no recipe names any more (table ``segment_refs``).

A row says where its segment is: in a pack (``pack``, ``pack_offset``:
segments/packs.py), or (``pack`` NULL) in the segment's own file. `count_in` runs in
the write transaction that publishes a recipe. A segment the index already has keeps
its place, and the copy the new ingest wrote is freed: its range of the new pack
punched, or the whole pack removed when every segment in it was held already, on
the reaper thread (the writer's time must not tell held bytes from new ones). A row
whose bytes are gone (quarantined) takes the new copy's place.

`count_out` lowers the counts when a recipe goes and hands back the segments no
recipe names now, which `release` frees after the commit (freed inside it, a failed
COMMIT would leave a recipe naming bytes that are gone). gc finds what a killed
writer left: segment files and packs no row names (`orphans`, `orphan_packs`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.permissions import make_private_dir
from webmodels.store.segments import Recipe, Segment, SegmentStore
from webmodels.store.segments.packs import punch, punch_later
from webmodels.store.segments.reaper import remove_later

if TYPE_CHECKING:
    from webmodels.store.index import Index

log = logging.getLogger(__name__)

_QUERY_MAX = 500  # parameters a query takes at once


def count_in(
    db: sqlite3.Connection, store: SegmentStore, recipe: Recipe, *, counted: bool = False
) -> None:
    """Count ``recipe``'s segments in (inside the caller's write transaction; every
    segment it names is on disk, checked by the caller). Copies the index does not
    need are freed in the background (see the module doc). ``counted``: the file's
    recipe is indexed already (stored again): counts stay, and only a segment whose
    bytes are gone (quarantined) takes the new copy's place, which heals the file."""
    kept: set[tuple[str, int]] = set()  # (pack, offset) of new copies a row now names
    for segment in distinct(recipe):
        row = db.execute(
            "SELECT pack, pack_offset FROM segment_refs WHERE segment = ?", (segment.digest.hex,)
        ).fetchone()
        held = row is not None and store.has(
            Segment(segment.digest, segment.size, row[0], int(row[1]))
        )
        if held or (counted and row is None):
            if segment.pack is None and row is not None and row[0] is not None:
                # Written to its own file (a store that could not pack then) while
                # the index keeps it in a pack: that file is not needed.
                remove_later(store.path_of(segment.digest))
            if not counted:
                db.execute(
                    "UPDATE segment_refs SET refs = refs + 1 WHERE segment = ?",
                    (segment.digest.hex,),
                )
            continue
        db.execute(
            "INSERT INTO segment_refs (segment, size, refs, pack, pack_offset)"
            " VALUES (?, ?, 1, ?, ?) ON CONFLICT(segment) DO UPDATE SET refs = refs + ?,"
            " pack = excluded.pack, pack_offset = excluded.pack_offset",
            (segment.digest.hex, segment.size, segment.pack, segment.offset, int(not counted)),
        )
        if segment.pack is not None:
            kept.add((segment.pack, segment.offset))
    _free_copies(store, recipe, kept)


def _free_copies(store: SegmentStore, recipe: Recipe, kept: set[tuple[str, int]]) -> None:
    """Free the ranges of the recipe's packs that no row names (held already, or a
    second copy within the file); a pack no row names at all goes whole."""
    packs: dict[str, list[Segment]] = defaultdict(list)
    for segment in recipe.segments:
        if segment.pack is not None:
            packs[segment.pack].append(segment)
    for name, segments in packs.items():
        path = store.pack_path(name)
        if not any((name, s.offset) in kept for s in segments):
            # Among the temp files first (a rename: microseconds), so that a removal
            # that fails leaves what the next start removes, not an orphan pack.
            aside = store.tmp_dir / f"{os.getpid()}-{name}"
            try:
                os.replace(path, aside)
            except OSError:
                aside = path  # removed where it is (or, failing that too, by gc)
            remove_later(aside)
            continue
        for segment in {s.offset: s for s in segments}.values():
            if (name, segment.offset) not in kept:
                punch_later(path, segment.offset, segment.size)


def count_out(db: sqlite3.Connection, recipe: Recipe) -> list[Segment]:
    """Lower the counts of ``recipe``'s segments (inside the caller's write
    transaction); those no recipe names now, located, for `release` after the commit."""
    unnamed = []
    for segment in distinct(recipe):
        db.execute(
            "UPDATE segment_refs SET refs = refs - 1 WHERE segment = ? AND refs > 0",
            (segment.digest.hex,),
        )
        row = db.execute(
            "SELECT refs, pack, pack_offset FROM segment_refs WHERE segment = ?",
            (segment.digest.hex,),
        ).fetchone()
        if row is not None and row[0] == 0:
            db.execute("DELETE FROM segment_refs WHERE segment = ?", (segment.digest.hex,))
            unnamed.append(Segment(segment.digest, segment.size, row[1], int(row[2])))
    return unnamed


def release(index: Index, store: SegmentStore, segments: Iterable[Segment]) -> int:
    """Free the bytes of ``segments`` that no row names (in a write transaction of
    its own, as `drop_orphan`): a segment's own file, or the pack holding it once no
    row names the pack; bytes freed. Best effort: what stays is an orphan the next
    `gc` removes. A range of a pack other segments still live in is not freed here:
    a running session may map it (ONNX Runtime reads external data through a map,
    which a hole punched under it would turn to zeros; an unlinked file stays
    readable while mapped). `gc` rewrites such a pack (store/pack_compaction.py)."""
    freed = 0
    try:
        with index.write() as db:
            packs: set[str] = set()
            for segment in dict.fromkeys(segments):
                if segment.pack is None:
                    freed += _drop_own_file(db, store, segment.digest)
                elif not _names(db, segment):
                    packs.add(segment.pack)
            for name in packs:
                freed += drop_orphan_pack(db, store, name)
    except (OSError, sqlite3.Error, HostError) as exc:
        log.warning("unnamed segments left for gc: %s", exc)
    return freed


def _names(db: sqlite3.Connection, segment: Segment) -> bool:
    row = db.execute(
        "SELECT 1 FROM segment_refs WHERE segment = ? AND refs > 0 AND pack IS ?"
        " AND pack_offset = ?",
        (segment.digest.hex, segment.pack, segment.offset),
    ).fetchone()
    return row is not None


def _drop_own_file(db: sqlite3.Connection, store: SegmentStore, digest: Digest) -> int:
    """Delete a segment's own file unless a row names it there; bytes freed. One whose
    unlink fails is moved among the temp files (the next start removes it)."""
    if _names(db, Segment(digest, 0)):
        return 0
    try:
        return _unlink(store.path_of(digest), allocated=False)
    except OSError:
        temp = store.tmp_dir / f"{os.getpid()}-{digest.hex}.seg"
        try:
            os.replace(store.path_of(digest), temp)
        except OSError as exc:
            log.warning("segment %s left for gc: %s", digest.hex, exc)
        return 0


def drop_orphan(db: sqlite3.Connection, store: SegmentStore, digest: Digest) -> bool:
    """gc: delete an orphan segment file inside the caller's write transaction, unless
    a row names it by now (a writer re-checks its segments inside its own transaction
    and writes again one removed here)."""
    return _drop_own_file(db, store, digest) > 0


def drop_orphan_pack(db: sqlite3.Connection, store: SegmentStore, name: str) -> int:
    """Delete the pack ``name`` inside the caller's write transaction unless a row
    names it (a writer that renamed it but has not committed re-checks inside its own
    transaction and writes again); bytes freed."""
    if db.execute("SELECT 1 FROM segment_refs WHERE pack = ? LIMIT 1", (name,)).fetchone():
        return 0
    try:
        return _unlink(store.pack_path(name))
    except OSError:  # among the temp files, which the next start removes
        try:
            os.replace(store.pack_path(name), store.tmp_dir / f"{os.getpid()}-{name}")
        except OSError as exc:
            log.warning("pack %s left for gc: %s", name, exc)
        return 0


def orphans(db: sqlite3.Connection, store: SegmentStore) -> list[tuple[Digest, Path, int]]:
    """Segment files no row names there (a publish or a conversion killed before its
    commit, or a segment kept in a pack now): digest, path, size."""
    named = {
        r[0] for r in db.execute("SELECT segment FROM segment_refs WHERE refs > 0 AND pack IS NULL")
    }
    found = []
    for digest, path in store.iter_segments():
        if digest.hex not in named:
            try:
                found.append((digest, path, path.stat().st_size))
            except FileNotFoundError:
                continue
    return found


def orphan_packs(db: sqlite3.Connection, store: SegmentStore) -> list[tuple[str, Path, int]]:
    """Packs no row names (a writer killed before its commit): name, path, bytes on
    disk."""
    named = {r[0] for r in db.execute("SELECT DISTINCT pack FROM segment_refs")}
    found = []
    for name, path in store.iter_packs():
        if name not in named:
            try:
                found.append((name, path, path.stat().st_blocks * 512))
            except FileNotFoundError:
                continue
    return found


def quarantine(index: Index, store: SegmentStore, segment: Segment) -> Path | None:
    """Take a segment whose bytes failed verification out of service (kept under
    ``quarantine/`` to inspect). Files that name it read as missing a segment until
    it is stored again, which puts it in place afresh: a packed segment's row then
    names its own file, which is not there (`count_in` takes the next copy)."""
    if segment.pack is None:
        return store.quarantine(segment.digest)
    with index.write() as db:
        if not _names(db, segment):
            return None
        make_private_dir(store.quarantine_dir, own=store.root)
        kept = store.quarantine_dir / f"{segment.digest.hex}.packed"
        data = _pread(store.pack_path(segment.pack), segment.offset, segment.size)
        kept.write_bytes(data)
        db.execute(
            "UPDATE segment_refs SET pack = NULL, pack_offset = 0 WHERE segment = ?",
            (segment.digest.hex,),
        )
    punch(store.pack_path(segment.pack), segment.offset, segment.size)
    return kept


def located(db: sqlite3.Connection, recipe: Recipe) -> Recipe:
    """``recipe`` with each segment kept in a pack naming it and its offset there;
    the others are in their own files."""
    where = packed_locations(db, {segment.digest.hex for segment in recipe.segments})
    if not where:
        return recipe
    parts = tuple(
        Segment(part.digest, part.size, *where[part.digest.hex])
        if isinstance(part, Segment) and part.digest.hex in where
        else part
        for part in recipe.parts
    )
    return Recipe(parts)


def packed_locations(db: sqlite3.Connection, hexes: Iterable[str]) -> dict[str, tuple[str, int]]:
    """{segment hex: (pack, offset)} of those among ``hexes`` kept in a pack."""
    wanted, found = list(hexes), {}
    for start in range(0, len(wanted), _QUERY_MAX):
        chunk = wanted[start : start + _QUERY_MAX]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            "SELECT segment, pack, pack_offset FROM segment_refs"
            f" WHERE pack IS NOT NULL AND segment IN ({marks})",
            chunk,
        )
        found.update({row[0]: (row[1], int(row[2])) for row in rows})
    return found


def distinct(recipe: Recipe) -> list[Segment]:
    """Each segment ``recipe`` names, once (the first copy of one named twice)."""
    first: dict[Digest, Segment] = {}
    for segment in recipe.segments:
        first.setdefault(segment.digest, segment)
    return list(first.values())


def _pread(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def _unlink(path: Path, *, allocated: bool = True) -> int:
    """Remove ``path``; its blocks' bytes (``allocated``: a pack has holes) or size."""
    try:
        stat = path.stat()
        size = stat.st_blocks * 512 if allocated else stat.st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size
