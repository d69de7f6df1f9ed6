"""`Store`: the one entry point to blobs and index (the host and the CLI both use it).

Invariants (tests in tests/store check each):
* a file under ``blobs/`` has the SHA-256 its name says (verified before publishing);
* an index row for a stored blob implies its file (publishing renames inside the
  write transaction; removal deletes the row and the file in one transaction, and a
  row whose file vanished is treated as absent and dropped by `gc`);
* nothing is deleted that a pin or a reference protects.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from webmodels.config import Config
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import derived, importing, layout, listing, segmented
from webmodels.store import preinstalled_index as pre_index
from webmodels.store.blobs import BlobFiles, PendingBlob, Progress, disk_error
from webmodels.store.index import Index
from webmodels.store.metadata import ModelMetadata
from webmodels.store.records import (
    ImportResult,
    Location,
    ModelRecord,
    StoreStats,
    derived_only,
    record_from_rows,
)
from webmodels.store.rows import add_ref, upsert_object
from webmodels.store.segmented import SegmentedFiles
from webmodels.store.segments import Recipe, reaper

log = logging.getLogger(__name__)


class Store:
    def __init__(
        self, root: Path, *, preinstalled_dirs: Sequence[Path] = (), segments: bool | None = None
    ) -> None:
        self.root = root
        self.files = BlobFiles(root)
        self.segmented = SegmentedFiles(root, enabled=segments)  # new files as segments?
        try:
            self.files.ensure()
        except OSError as exc:
            raise HostError("internal", f"cannot create the store at {root}: {exc}") from exc
        self.index = Index(root / "index.sqlite3")
        self.preinstalled_dirs = tuple(preinstalled_dirs)
        # Called (on the storing thread) after an ONNX model entered the store: a
        # download, an upload or an import. The host compiles it in the background.
        self.on_stored: list[Callable[[ModelRecord], None]] = []

    @classmethod
    def open(cls, config: Config) -> Store:
        store = cls(
            layout.settle(config.home),
            preinstalled_dirs=config.preinstalled_dirs,
            segments=config.store_segments,
        )
        store.remove_stale_temp_files()
        store.refresh_preinstalled()
        return store

    def close(self) -> None:
        # The copies of segments held already are freed on the reaper thread, which
        # does not outlive the process: a CLI run waits for them here.
        reaper.drain(timeout_s=60)
        self.index.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- adding ----------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        *,
        name: str | None = None,
        version: str | None = None,
        raw: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Copy a file into the store (store/importing.py). ONNX unless ``raw``."""
        return importing.import_file(self, path, name, version, raw, progress)

    def ingest(
        self,
        pending: PendingBlob,
        metadata: ModelMetadata,
        *,
        origin: str,
        refs: Sequence[tuple[str, str]] = (),
        name: str | None = None,
        version: str | None = None,
        expected: Digest | None = None,
        write: Callable[[], Recipe] | None = None,
    ) -> ImportResult:
        """Publish verified bytes and index them in one write transaction (``write``:
        the segments' writer where no temp file holds the bytes, store/importing.py)."""
        if expected is not None and expected != pending.digest:
            self.files.discard(pending)
            raise HostError(
                "integrity_mismatch",
                f"expected SHA-256 {expected.hex}, got {pending.digest.hex}",
                expected=expected.hex,
                actual=pending.digest.hex,
            )
        digest, now = pending.digest, time.time()
        published = moved = False
        recipe: Recipe | None = None
        try:
            if self.segmented.enabled and write is None:
                write = functools.partial(self.segmented.ingest, pending)
            recipe = write() if write is not None else None
            with self.index.write() as db:
                moved = True  # from here the file may be in place (a failed fsync after it)
                published = recipe is not None or self.files.publish(pending)
                upsert_object(db, digest, pending.size, metadata, name, version, now)
                db.execute(
                    "INSERT INTO blobs (sha256, origin, stored_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(sha256) DO UPDATE SET state = 'ok', origin = CASE "
                    "WHEN blobs.origin = 'derived' THEN excluded.origin ELSE blobs.origin END",
                    (digest.hex, origin, now),
                )
                if recipe is not None:
                    published = self.segmented.publish(db, digest, recipe, pending, rewrite=write)
                for ref in refs:
                    add_ref(db, digest, ref, now)
        except BaseException as exc:
            if moved and self.remove_unindexed(digest):  # no file may stay without its row
                self.files.settled([digest])
            if self.segmented.enabled:  # no segment it wrote may stay unnamed
                self.segmented.take_back(self.index, pending.temp_path, recipe)
                self.files.discard(pending)
            if isinstance(exc, OSError):
                raise disk_error(exc, self.root) from exc
            raise
        self.files.discard(pending)  # a no-op once renamed into blobs/
        self.files.settled([digest])
        record = self.get(digest)
        assert record is not None
        log.info("stored %s (%d bytes, new=%s)", digest.hex, pending.size, published)
        # A graph with external data runs only with its manifest's files: not alone.
        if record.format == "onnx" and not record.metadata.external_data:
            for listener in self.on_stored:
                try:
                    listener(record)
                except Exception:  # a listener's bug must not fail the download
                    log.exception("on_stored listener")
        return ImportResult(model=record, deduplicated=not published)

    def ingest_derived(
        self,
        source: Digest,
        pending: Sequence[PendingBlob],
        *,
        record: Callable[[sqlite3.Connection], None],
        recipes: Mapping[Digest, Recipe] | None = None,
    ) -> bool:
        """Publish blobs made from ``source``; False when the source is gone (derived.py)."""
        return derived.publish_derived(self, source, pending, record=record, recipes=recipes)

    def derived_blobs(self, sources: Iterable[Digest]) -> list[Digest]:
        """The blobs made from ``sources`` (for removing them together)."""
        return derived.derived_from(self.index, sources)

    def remove_unindexed(self, digest: Digest) -> bool:
        """Take back a blob whose index write failed (a full disk), unless another
        process has indexed the same bytes since; False when that failed too (its
        publishing marker stays, and the next start settles it)."""
        try:
            with self.index.write() as db:
                row = db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (digest.hex,))
                if row.fetchone() is None:
                    self.files.remove(digest)
        except (HostError, sqlite3.Error, OSError) as exc:
            log.warning("left unindexed blob %s for the next start: %s", digest.hex, exc)
            return False
        return True

    # -- reading -----------------------------------------------------------------

    def get(self, digest: Digest) -> ModelRecord | None:
        records = self._records(digest)
        return records[0] if records else None

    def list_models(self) -> list[ModelRecord]:
        return self._records(None)

    def locate(self, digest: Digest) -> Location:
        """Where to read a servable model; checks size (and mtime for pre-installed)."""
        record = self.get(digest)
        if record is not None and record.preinstalled_path is not None:
            location = pre_index.check(self, record.preinstalled_path)
            if location is not None:
                return location
            record = self.get(digest)
        if record is not None and record.stored:
            if (recipe := self.recipe_of(digest)) is not None:
                return segmented.view_location(self, digest, recipe)
            path = self.files.path_of(digest)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = -1
            if size == record.size:
                return Location(digest, path, size, preinstalled=False)
            if (recipe := self.recipe_of(digest)) is not None:  # converted meanwhile
                return segmented.view_location(self, digest, recipe)
            log.error("blob %s has %d bytes, index says %d", digest.hex, size, record.size)
            self.quarantine(digest)
        raise HostError("not_found", f"no stored model with SHA-256 {digest.hex}")

    def read(self, digest: Digest, offset: int, length: int) -> tuple[bytes, int]:
        """Bytes [offset, offset+length) and the model's total size."""
        if (recipe := self.servable_recipe(digest)) is not None:
            return segmented.read_range(self, digest, recipe, offset, length)
        location = self.locate(digest)
        if offset > location.size:
            raise HostError(
                "bad_request", f"offset {offset} is past the end ({location.size} bytes)"
            )
        try:
            return self.files.read_range(location.path, offset, length), location.size
        except FileNotFoundError as exc:  # deleted since `locate` (gc, the user)
            if (recipe := self.servable_recipe(digest)) is not None:  # converted meanwhile
                return segmented.read_range(self, digest, recipe, offset, length)
            raise HostError("not_found", f"no stored model with SHA-256 {digest.hex}") from exc

    def recipe_of(self, digest: Digest) -> Recipe | None:
        """The file's recipe when it is kept as segments (whatever its state)."""
        with self.index.snapshot() as db:
            return self.segmented.recipe_in(db, digest)

    def servable_recipe(self, digest: Digest) -> Recipe | None:
        """The recipe of a stored, servable file kept as segments; None otherwise."""
        record = self.get(digest)
        return self.recipe_of(digest) if record is not None and record.stored else None

    def _records(self, only: Digest | None) -> list[ModelRecord]:
        where, args = ("WHERE sha256 = ?", (only.hex,)) if only else ("", ())
        with self.index.snapshot() as db:
            objects = db.execute(f"SELECT * FROM objects {where} ORDER BY created_at", args)
            objects_rows = objects.fetchall()
            blobs = {r["sha256"]: r for r in db.execute(f"SELECT * FROM blobs {where}", args)}
            pres: dict[str, sqlite3.Row] = {}
            for r in db.execute(f"SELECT * FROM preinstalled {where} ORDER BY path", args):
                if r["state"] == "ok":
                    pres.setdefault(r["sha256"], r)
            refs: dict[str, list[sqlite3.Row]] = {}
            for r in db.execute(f"SELECT * FROM refs {where} ORDER BY created_at", args):
                refs.setdefault(r["sha256"], []).append(r)
        records = []
        for row in objects_rows:
            blob, pre_row = blobs.get(row["sha256"]), pres.get(row["sha256"])
            row_refs = refs.get(row["sha256"], [])
            if derived_only(blob, pre_row, row_refs):
                continue  # a compiled form, not a model anyone stored
            record = record_from_rows(row, blob, pre_row, row_refs)
            if record.servable or record.quarantined:
                records.append(record)
        return records

    # -- references, pins, deletion -------------------------------------------------

    def share(self, digest: Digest, top_site: str, shared: bool) -> ModelRecord:
        """The user's decision that every frame under `top_site` may see this model."""
        record = self._require(digest)
        with self.index.write() as db:
            if shared:
                add_ref(db, digest, ("share", top_site), time.time())
            else:
                db.execute(
                    "DELETE FROM refs WHERE sha256 = ? AND kind = 'share' AND key = ?",
                    (digest.hex, top_site),
                )
        return self.get(digest) or record

    def setting(self, key: str, default: str) -> str:
        rows = self.index.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.index.write() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def name_object(self, digest: Digest, name: str, version: str) -> None:
        """Label a model with the catalog name and version it was obtained under, unless
        it has one (what `webmodels ls` shows; resolution reads the catalogs instead)."""
        with self.index.write() as db:
            db.execute(
                "UPDATE objects SET name = ?, version = ? WHERE sha256 = ? AND name IS NULL",
                (name, version, digest.hex),
            )

    def record_use(self, digest: Digest, partition_key: str) -> None:
        """Note that a partition obtained this model (the popup lists the sites)."""
        with self.index.write() as db:
            add_ref(db, digest, ("site", partition_key), time.time())

    def pin(self, digest: Digest, pinned: bool) -> ModelRecord:
        record = self._require(digest)
        with self.index.write() as db:
            if pinned:
                add_ref(db, digest, ("pin", ""), time.time())
            else:
                db.execute("DELETE FROM refs WHERE sha256 = ? AND kind = 'pin'", (digest.hex,))
        return self.get(digest) or record

    def delete(self, digest: Digest, *, force: bool = False) -> int:
        """Drop every reference to a model and remove its stored copy; bytes freed."""
        from webmodels.store.gc import execute_gc, plan_gc

        record = self._require(digest)
        if record.pinned and not force:
            raise HostError("model_pinned", f"{digest.short} is pinned; unpin it first")
        if not record.stored and record.preinstalled_path is not None:
            raise HostError(
                "read_only",
                f"{digest.short} is pre-installed at {record.preinstalled_path}; "
                "remove it from its models.json instead",
            )
        derived = self.derived_blobs([digest])
        with self.index.write() as db:
            db.execute("DELETE FROM refs WHERE sha256 = ?", (digest.hex,))
        freed = execute_gc(self, plan_gc(self, only=(digest,))).freed_bytes
        # Its compiled forms go with it (their references went with its blob row).
        return freed + (execute_gc(self, plan_gc(self, only=derived)).freed_bytes if derived else 0)

    def clear_site(self, top_site: str) -> tuple[int, int]:
        """Forget everything of a top-level site (in all its frames' partitions: its
        references, shares, compiled graphs, probe charges, name requests, download
        requests; store/sites.py) and remove what nothing else holds; (references
        dropped, bytes freed)."""
        from webmodels.store.gc import execute_gc, plan_gc
        from webmodels.store.sites import forget_site

        forgotten = forget_site(self, top_site)
        digests = list(forgotten.models)
        derived = self.derived_blobs(digests)
        freed = execute_gc(self, plan_gc(self, only=digests)).freed_bytes if digests else 0
        unused = [*derived, *forgotten.compiled]
        if unused:
            freed += execute_gc(self, plan_gc(self, only=unused)).freed_bytes
        self.index.checkpoint()  # no copy of the forgotten rows stays in the log
        return forgotten.references_dropped, freed

    def _require(self, digest: Digest) -> ModelRecord:
        record = self.get(digest)
        if record is None:
            raise HostError("not_found", f"no model with SHA-256 {digest.hex}")
        return record

    def quarantine(self, digest: Digest) -> Path | None:
        """Move a stored blob that failed a check out of reach; it is never served again."""
        with self.index.write() as db:
            db.execute("UPDATE blobs SET state = 'quarantined' WHERE sha256 = ?", (digest.hex,))
            moved = self.files.quarantine(digest)
        log.error("quarantined blob %s -> %s", digest.hex, moved)
        return moved

    # -- pre-installed folders ------------------------------------------------------

    def refresh_preinstalled(self) -> None:
        """Index the configured folders; only files whose size or mtime changed are hashed."""
        pre_index.refresh(self)

    # -- housekeeping -----------------------------------------------------------------

    def remove_stale_temp_files(self) -> list[Path]:
        from webmodels.store.convert import settle_converted
        from webmodels.store.gc import settle_publishing, settle_set_aside

        settle_set_aside(self)
        settle_publishing(self)
        settle_converted(self)  # a conversion killed after its commit
        removed = []
        for path in [*self.files.stale_temp_files(), *self.segmented.store.stale_temps()]:
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
        if removed:
            log.info("removed %d stale temp files", len(removed))
        return removed

    def stats(self) -> StoreStats:
        return listing.store_stats(self)
