"""Garbage collection, plan then execute (as huggingface_hub's cache deletion).

`plan_gc` only looks; `execute_gc` re-checks every item inside one write transaction
before removing it, so a plan that went stale (a new reference, a new import in
another process) never deletes what is now in use.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.permissions import make_private_dir
from webmodels.store.blobs import ASIDE, PUBLISHING, disk_error
from webmodels.store.pack_compaction import compact, wasted_packs
from webmodels.store.quarantine import older_than
from webmodels.store.segments import Segment
from webmodels.store.segments.sharing import load_recipes

if TYPE_CHECKING:
    from webmodels.store.store import Store

log = logging.getLogger(__name__)
ABANDONED_DOWNLOAD_AGE_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class GcItem:
    kind: str  # blob | dangling_row | orphan_file | orphan_segment | orphan_pack | pack_space
    # | temp_file | object_row | quarantined
    path: Path | None
    size: int
    digest: Digest | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "size": self.size,
            "sha256": self.digest.hex if self.digest else None,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class GcPlan:
    items: tuple[GcItem, ...]

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items)


@dataclass(frozen=True, slots=True)
class GcResult:
    removed: tuple[GcItem, ...]
    skipped: tuple[GcItem, ...]  # in use again by the time of execution

    @property
    def freed_bytes(self) -> int:
        return sum(i.size for i in self.removed)


def plan_gc(
    store: Store, *, only: Sequence[Digest] | None = None, quarantine_age_s: float | None = None
) -> GcPlan:
    """What to remove; with ``quarantine_age_s``, also the quarantined files that have
    been in quarantine that long (0: all of them)."""
    items: list[GcItem] = []
    with store.index.snapshot() as db:
        segmented = {r[0] for r in db.execute("SELECT sha256 FROM recipes")}
        for row in db.execute("SELECT b.sha256, o.size FROM blobs b JOIN objects o USING (sha256)"):
            digest = Digest(row["sha256"])
            if only is not None and digest not in only:
                continue
            path = store.files.path_of(digest)
            held = path.exists() or digest.hex in segmented  # a whole file or segments
            if not _referenced(db, digest):
                # What is on disk (nothing once quarantined), so "freed" is never inflated.
                size = row["size"] if held else 0
                items.append(GcItem("blob", path, size, digest, "no references"))
            elif not held and not _quarantined(db, digest):
                items.append(GcItem("dangling_row", None, 0, digest, "file missing"))
        if only is None:
            known = {r["sha256"] for r in db.execute("SELECT sha256 FROM blobs")}
            for digest, path in store.files.iter_blobs():
                if digest.hex not in known:
                    size = path.stat().st_size
                    items.append(GcItem("orphan_file", path, size, digest, "not in the index"))
            for digest, path, size in store.segmented.orphans(db):
                items.append(GcItem("orphan_segment", path, size, digest, "no recipe names it"))
            for _, path, size in store.segmented.orphan_packs(db):
                items.append(GcItem("orphan_pack", path, size, None, "no recipe names it"))
    if only is None:
        for pack in wasted_packs(store.index, store.segmented.store):
            why = f"{pack.freed} of its {pack.on_disk} bytes hold segments no file names"
            items.append(GcItem("pack_space", pack.path, pack.freed, None, why))
    if only is None:
        for path in store.files.stale_temp_files():
            items.append(GcItem("temp_file", path, path.stat().st_size, None, "writer is gone"))
        for path in _abandoned_downloads(store):
            items.append(GcItem("temp_file", path, path.stat().st_size, None, "download abandoned"))
        if quarantine_age_s is not None:
            items += _old_quarantine(store, quarantine_age_s)
    return GcPlan(tuple(items))


def _old_quarantine(store: Store, age_s: float) -> list[GcItem]:
    found = []
    for held in older_than(store.files.quarantine_dir, age_s):
        days = (time.time() - held.quarantined_at) / 86400
        reason = f"quarantined {days:.1f} days ago"
        found.append(GcItem("quarantined", held.path, held.size, None, reason))
    return found


def _abandoned_downloads(store: Store) -> list[Path]:
    """Partial downloads (``dl-<job id>.partial``) that no active job resumes and that
    nobody touched for a day. Younger ones stay: the next request resumes them."""
    found = []
    active = {r["id"] for r in store.index.query("SELECT id FROM jobs WHERE state = 'active'")}
    cutoff = time.time() - ABANDONED_DOWNLOAD_AGE_S
    for path in store.files.tmp_dir.glob("dl-*.partial"):
        job_id = path.stem.removeprefix("dl-")
        try:
            old = path.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if job_id not in active and old:
            found.append(path)
    return found


def execute_gc(store: Store, plan: GcPlan) -> GcResult:
    """Blob files leave by being set aside inside the write transaction and deleted
    after its commit: a failed commit (a disk error) puts them back, so no row is left
    without its file; one whose deletion then fails is a temp file the next start removes."""
    removed: list[GcItem] = []
    skipped: list[GcItem] = []
    aside: dict[Digest, Path] = {}
    unnamed: list[Segment] = []  # segments no recipe names after the commit
    try:
        with store.index.write() as db:
            for item in plan.items:
                done = _execute_item(store, db, item, aside, unnamed)
                (removed if done else skipped).append(item)
            _drop_unused_objects(db)
    except BaseException as exc:
        for digest, path in aside.items():
            try:
                store.files.put_back(digest, path)
            except OSError:
                log.warning("%s stays set aside; the next start puts it back", path)
        if isinstance(exc, OSError):
            raise disk_error(exc, store.root) from exc
        raise
    for path in aside.values():
        try:
            path.unlink(missing_ok=True)  # (another start may have settled it)
        except OSError as exc:
            log.warning("left %s for the next start: %s", path, exc)
    if unnamed:
        store.segmented.remove_unnamed(store.index, unnamed)
    if any(item.kind == "pack_space" for item in plan.items):  # a whole gc, not a delete
        removed = [i for i in removed if i.kind != "pack_space"] + _compact(store)
    log.info("gc removed %d items (%d bytes)", len(removed), sum(i.size for i in removed))
    return GcResult(tuple(removed), tuple(skipped))


def _compact(store: Store) -> list[GcItem]:
    """Rewrite the packs worth it now (this run's removals included) with their live
    segments (store/pack_compaction.py); one item each, with the bytes it freed."""
    done = []
    moved: set[str] = set()
    for pack in wasted_packs(store.index, store.segmented.store):
        try:
            result = compact(store.index, store.segmented.store, pack.name)
        except OSError as exc:
            log.warning("pack %s not compacted: %s", pack.name, exc)
            continue
        moved |= result.moved
        why = "rewritten without its freed segments"
        done.append(GcItem("pack_space", pack.path, result.freed, None, why))
    if moved:  # graphs kept to load files from their segments name the old places
        with store.index.snapshot() as db:
            for digest, recipe in load_recipes(db).items():
                if any(segment.digest.hex in moved for segment in recipe.segments):
                    store.segmented.drop_linked(digest)
    return done


def _execute_item(
    store: Store,
    db: sqlite3.Connection,
    item: GcItem,
    aside: dict[Digest, Path],
    unnamed: list[Segment],
) -> bool:
    digest = item.digest
    if item.kind == "blob" and digest is not None:
        if _referenced(db, digest):
            return False
        unnamed += store.segmented.drop(db, digest)  # its recipe; unshared segments after
        db.execute("DELETE FROM blobs WHERE sha256 = ?", (digest.hex,))
        _set_aside(store, digest, aside)
        return True
    if item.kind == "dangling_row" and digest is not None:
        if store.files.exists(digest) or store.segmented.recipe_in(db, digest) is not None:
            return False
        db.execute("DELETE FROM blobs WHERE sha256 = ?", (digest.hex,))
        return True
    if item.kind == "orphan_file" and digest is not None:
        # Inside the write transaction: a publisher renames only while holding it.
        if db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (digest.hex,)).fetchone():
            return False
        _set_aside(store, digest, aside)
        return True
    if item.kind == "orphan_segment" and digest is not None:
        return store.segmented.drop_orphan(db, digest)
    if item.kind == "pack_space":
        return True  # after the transaction, with what it freed too (`_compact`)
    if item.kind == "orphan_pack" and item.path is not None:
        return store.segmented.drop_orphan_pack(db, item.path.name)
    if item.kind == "quarantined" and item.path is not None:
        # Never served and never published again: nothing can be using it.
        if item.path.parent != store.files.quarantine_dir or not item.path.is_file():
            return False
        item.path.unlink()
        return True
    if item.kind == "temp_file" and item.path is not None:
        if item.path not in [*store.files.stale_temp_files(), *_abandoned_downloads(store)]:
            return False
        item.path.unlink(missing_ok=True)
        item.path.with_suffix(".json").unlink(missing_ok=True)
        return True
    return False


def settle_set_aside(store: Store) -> None:
    """Blobs set aside by a gc that crashed or whose disk failed: back in place when
    their row is still there (the removal never committed), else deleted."""
    for path in store.files.tmp_dir.glob(f"*{ASIDE}"):
        try:
            digest = Digest(path.name.removesuffix(ASIDE))
        except ValueError:
            continue
        with store.index.write() as db:  # after any gc still between set-aside and commit
            row = db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (digest.hex,)).fetchone()
            if row is not None and not store.files.exists(digest):
                make_private_dir(store.files.path_of(digest).parent, own=store.root)
                store.files.put_back(digest, path)
            else:
                path.unlink(missing_ok=True)


def settle_publishing(store: Store) -> int:
    """Blobs renamed into place by a process that died before its index write
    committed (blobs.PUBLISHING markers): removed unless a row names them. Holding the
    write lock, no live publisher is between its rename and its COMMIT. The number
    removed."""
    removed = 0
    for marker in store.files.tmp_dir.glob(f"*{PUBLISHING}"):
        try:
            digest = Digest(marker.name.removesuffix(PUBLISHING))
        except ValueError:
            continue
        with store.index.write() as db:
            row = db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (digest.hex,)).fetchone()
            if row is None and store.files.path_of(digest).exists():
                store.files.remove(digest)
                removed += 1
            marker.unlink(missing_ok=True)
    if removed:
        log.info("took back %d blobs whose index write never committed", removed)
    return removed


def _set_aside(store: Store, digest: Digest, aside: dict[Digest, Path]) -> None:
    if digest not in aside and (path := store.files.set_aside(digest)) is not None:
        aside[digest] = path


def _drop_unused_objects(db: sqlite3.Connection) -> None:
    db.execute(
        "DELETE FROM refs WHERE sha256 NOT IN (SELECT sha256 FROM blobs) "
        "AND sha256 NOT IN (SELECT sha256 FROM preinstalled) AND kind != 'pin'"
    )
    db.execute(
        "DELETE FROM objects WHERE sha256 NOT IN (SELECT sha256 FROM blobs) "
        "AND sha256 NOT IN (SELECT sha256 FROM preinstalled) "
        "AND sha256 NOT IN (SELECT sha256 FROM refs)"
    )


def _referenced(db: sqlite3.Connection, digest: Digest) -> bool:
    """A reference, or membership of a stored model manifest, keeps a blob."""
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM refs WHERE sha256 = ?) "
        "OR EXISTS (SELECT 1 FROM manifest_entries WHERE sha256 = ?)",
        (digest.hex, digest.hex),
    ).fetchone()
    return bool(row[0])


def _quarantined(db: sqlite3.Connection, digest: Digest) -> bool:
    row = db.execute("SELECT state FROM blobs WHERE sha256 = ?", (digest.hex,)).fetchone()
    return row is not None and row["state"] == "quarantined"
