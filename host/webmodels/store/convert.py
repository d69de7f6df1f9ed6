"""Converting files stored whole (store-v1) to segments, one file at a time.

`convert_one` takes a stored blob kept as a whole file under ``blobs/`` and:

1. ingests the blob's bytes into segments (content-addressed, idempotent) and checks
   that the recipe rebuilds the file's SHA-256;
2. in ONE write transaction, writes its recipe and the reference count of every
   segment it names (which is what marks the file converted), after checking that its
   blob row is still stored and servable and that every segment is on disk;
3. after the commit, removes the whole file.

A file reads from its whole file until the commit and from its segments after it
(`Store.read` prefers a recipe). A process killed between 1 and 2 leaves segments no
recipe names (they wait for a collector) and temp files `SegmentStore.stale_temps`
names; one killed between 2 and 3 leaves both layouts, and `settle_converted` (run by
every pass and every `Store.open`) removes the whole file. The conversion is thus
resumable and crash-safe: a pass simply converts what still has no recipe.

`run_conversion` is the loop behind ``webmodels store convert``; `Converter` is the
host's background pass (only with ``[store] segments = true``): it waits until the
host has been up a while, then converts one file at a time with a pause in between,
and stops with the host.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.store import segment_refs
from webmodels.store.blobs import disk_error
from webmodels.store.segments import Recipe, reaper, verify
from webmodels.store.segments.recipe import encode_recipe

if TYPE_CHECKING:
    from webmodels.store.store import Store

log = logging.getLogger(__name__)

START_DELAY_S = 60.0  # the host's background pass: after start-up work settled
PAUSE_S = 1.0  # between two files, so a page's requests are not starved


@dataclass(frozen=True, slots=True)
class Pending:
    digest: Digest
    size: int


@dataclass(slots=True)
class ConvertReport:
    converted: int = 0
    bytes: int = 0
    skipped: int = 0  # gone, quarantined or corrupt meanwhile
    left: int = 0  # not reached (stopped)


def pending_files(store: Store) -> list[Pending]:
    """Stored blobs still kept whole: a servable row, no recipe (smallest first)."""
    rows = store.index.query(
        "SELECT b.sha256, o.size FROM blobs b JOIN objects o USING (sha256) "
        "WHERE b.state = 'ok' AND b.sha256 NOT IN (SELECT sha256 FROM recipes) "
        "ORDER BY o.size, b.sha256"
    )
    return [Pending(Digest(r[0]), int(r[1])) for r in rows]


def settle_converted(store: Store) -> int:
    """Remove the whole files of blobs whose recipe is committed (a conversion killed
    after its commit); the number removed."""
    removed = 0
    for row in store.index.query("SELECT sha256 FROM recipes"):
        digest = Digest(row[0])
        if store.files.exists(digest):
            store.files.remove(digest)
            removed += 1
    if removed:
        log.info("removed %d whole files already kept as segments", removed)
    return removed


def convert_one(store: Store, digest: Digest) -> bool:
    """Convert one blob (see the module doc); False when it is not a whole stored file
    any more, or its bytes no longer match its name (left for `webmodels verify`)."""
    path = store.files.path_of(digest)
    written: list[Recipe] = []
    try:
        return _convert(store, digest, path, written)
    except BaseException as exc:  # no segment it wrote may stay unnamed
        taken: list[Recipe | None] = [*written] or [None]  # None: cut again to find them
        for recipe in taken:
            store.segmented.take_back(store.index, path, recipe)
        if isinstance(exc, OSError):
            raise disk_error(exc, store.root) from exc
        raise


def _convert(store: Store, digest: Digest, path: Path, written: list[Recipe]) -> bool:
    try:
        recipe = store.segmented.store.ingest(path)
        written.append(recipe)
    except FileNotFoundError:
        return False  # removed, quarantined or converted by another process meanwhile
    if not verify(store.segmented.store, recipe, digest).ok:
        log.error("blob %s does not hash to its name; not converted", digest.hex)
        return False
    with store.index.write() as db:
        row = db.execute("SELECT state FROM blobs WHERE sha256 = ?", (digest.hex,)).fetchone()
        if row is None or row[0] != "ok" or store.segmented.recipe_in(db, digest) is not None:
            return False
        if any(not store.segmented.store.has(s) for s in recipe.segments):
            if not store.files.exists(digest):
                return False
            recipe = store.segmented.store.ingest(path)  # a collector removed one meanwhile
            written.append(recipe)
        _index(store, db, digest, recipe)
    store.files.remove(digest)  # after the commit: a kill here leaves both (settled later)
    return True


def _index(store: Store, db: sqlite3.Connection, digest: Digest, recipe: Recipe) -> None:
    db.execute(
        "INSERT INTO recipes (sha256, recipe) VALUES (?, ?)", (digest.hex, encode_recipe(recipe))
    )
    segment_refs.count_in(db, store.segmented.store, recipe)


def run_conversion(
    store: Store,
    *,
    progress: Callable[[Pending, bool], None] | None = None,
    stop: threading.Event | None = None,
    pause_s: float = 0.0,
) -> ConvertReport:
    """Convert every whole stored file, smallest first; resumable at any point."""
    settle_converted(store)
    store.segmented.store.ensure()
    report = ConvertReport()
    todo = pending_files(store)
    for index, item in enumerate(todo):
        if stop is not None and stop.is_set():
            report.left = len(todo) - index
            break
        done = convert_one(store, item.digest)
        report.converted += done
        report.bytes += item.size if done else 0
        report.skipped += not done
        if progress is not None:
            progress(item, done)
        if pause_s and stop is not None and stop.wait(pause_s):
            report.left = len(todo) - index - 1
            break
    reaper.drain()  # the copies of segments already held, renamed aside, are gone
    return report


class Converter:
    """The host's background pass: converts whole files after ``delay_s``, one at a
    time, ``pause_s`` apart, on a daemon thread; `close` stops it between two files."""

    def __init__(self, store: Store, *, delay_s: float = START_DELAY_S, pause_s: float = PAUSE_S):
        self.store = store
        self.delay_s = delay_s
        self.pause_s = pause_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="convert", daemon=True)
        self.report: ConvertReport | None = None

    def start(self) -> Converter:
        if self.store.segmented.enabled:
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        if self._stop.wait(self.delay_s):
            return
        try:
            self.report = run_conversion(self.store, stop=self._stop, pause_s=self.pause_s)
        except Exception:  # the next start tries again; nothing is lost
            log.exception("converting whole files to segments")
            return
        if self.report.converted:
            log.info("converted %d whole files to segments", self.report.converted)


def delay_from_env(default: float = START_DELAY_S) -> float:
    """``WEBMODELS_CONVERT_DELAY_S`` (seconds) overrides the background pass's delay."""
    try:
        return float(os.environ.get("WEBMODELS_CONVERT_DELAY_S", default))
    except ValueError:
        return default
