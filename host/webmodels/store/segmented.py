"""Stored files kept as segments: publishing, reading, verifying and dropping them.

With ``[store] segments = true`` (`Config.store_segments`), publishing a blob ingests
its verified temp file into content-addressed segments (`segments.SegmentStore`, under
``<store>/segments-v1/``) and writes its recipe (table ``recipes``) and the reference
count of every segment it names (table ``segment_refs``) in the same SQLite write
transaction that publishes its ``blobs`` row. A blob row with a recipe reads from its
segments; one without reads its whole file under ``blobs/``, so both layouts read at
once whatever the setting says now.

Segment files are written before the transaction (they are content-addressed and
idempotent); inside it, every segment the recipe names is checked to be on disk (a
`gc` that ran in between may have removed one whose count had dropped to 0) and
written again while the write lock keeps `gc` out. `drop` (gc, delete) removes the
recipe, lowers the counts and deletes the segments no recipe names any more, inside
the caller's write transaction.

Callers that need a path (ONNX Runtime, the derivation worker, graph parsers) get a
*view*: the file reconstructed once under ``<store>/views/`` and dropped with the
blob. Reads that pages time (``models.read``, the loopback fast path) never use a
view: they stream from the segments (`read_range`, `send_to`).
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from webmodels.config import ENV_STORE_SEGMENTS
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.permissions import make_private_dir
from webmodels.store import segment_refs
from webmodels.store.blobs import PendingBlob, Progress, disk_error
from webmodels.store.records import Location
from webmodels.store.segments import Inline, Recipe, Segment, SegmentStore, copy_to, verify
from webmodels.store.segments.recipe import decode_recipe, encode_recipe
from webmodels.store.segments.reconstruct import SegmentMissing, open_segment
from webmodels.store.segments.sending import send_parts
from webmodels.store.segments.split import split

if TYPE_CHECKING:
    from webmodels.store.index import Index
    from webmodels.store.store import Store

log = logging.getLogger(__name__)

VIEWS = "views"
LINKED = "linked"  # graphs rewritten to load from segments (runtime/segment_sessions.py)


class SegmentedFiles:
    def __init__(self, root: Path, *, enabled: bool | None = None) -> None:
        """``enabled``: publish new files as segments (None: yes, unless the environment
        variable WEBMODELS_STORE_SEGMENTS says "0")."""
        self.enabled = os.environ.get(ENV_STORE_SEGMENTS) != "0" if enabled is None else enabled
        self.root = root
        self.store = SegmentStore(root, packs=None)
        self.view_dir = root / VIEWS

    # -- publishing ------------------------------------------------------------------

    def ingest(self, pending: PendingBlob) -> Recipe:
        """Write the temp file's segments (before the write transaction)."""
        return self.store.ingest(pending.temp_path)

    def publish(
        self,
        db: sqlite3.Connection,
        digest: Digest,
        recipe: Recipe,
        pending: PendingBlob,
        *,
        rewrite: Callable[[], Recipe] | None = None,
    ) -> bool:
        """Index ``recipe`` for ``digest`` inside the caller's write transaction; False
        when the file already had one (its counts stay as they are). ``rewrite``
        writes the segments again where no temp file holds the bytes."""
        if self.recipe_in(db, digest) is not None:
            # Stored again: its counts stay; a segment whose bytes are gone takes the
            # new copy (healing a quarantined one), the rest of the new copies go.
            segment_refs.count_in(db, self.store, recipe, counted=True)
            return False
        if any(not self.store.has(segment) for segment in recipe.segments):
            # gc removed one meanwhile: write them again
            recipe = rewrite() if rewrite is not None else self.store.ingest(pending.temp_path)
        db.execute(
            "INSERT INTO recipes (sha256, recipe) VALUES (?, ?)",
            (digest.hex, encode_recipe(recipe)),
        )
        segment_refs.count_in(db, self.store, recipe)
        return True

    # -- reading ---------------------------------------------------------------------

    def recipe_in(self, db: sqlite3.Connection, digest: Digest) -> Recipe | None:
        """The file's recipe, each segment with where its bytes are (`located`)."""
        row = db.execute("SELECT recipe FROM recipes WHERE sha256 = ?", (digest.hex,)).fetchone()
        return segment_refs.located(db, decode_recipe(bytes(row[0]))) if row else None

    def read_range(self, recipe: Recipe, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of the file, found through the parts'
        cumulative sizes (only the parts the range touches are opened)."""
        return b"".join(self._range(recipe, offset, length))

    def send_to(self, recipe: Recipe, out_fd: int) -> int:
        """The whole file into ``out_fd`` (a socket: ``sendfile`` per segment)."""
        return copy_to(self.store, recipe, out_fd)

    def send_parts(self, recipe: Recipe, conn: socket.socket) -> None:
        """The whole file into a connection: small parts gathered into larger sends,
        large segments by ``sendfile`` (segments/sending.py)."""
        send_parts(self.store, recipe.parts, conn)

    def view(self, digest: Digest, recipe: Recipe) -> Path:
        """The file reconstructed under ``views/`` (made once; read-only)."""
        path = self.view_dir / digest.hex
        try:
            if path.stat().st_size == recipe.size:
                return path
        except FileNotFoundError:
            pass
        make_private_dir(self.view_dir, own=self.root)
        temp = self.view_dir / f".{os.getpid()}-{uuid.uuid4().hex}.partial"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        try:
            copy_to(self.store, recipe, fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(temp, path)
        return path

    # -- removing --------------------------------------------------------------------

    def drop(self, db: sqlite3.Connection, digest: Digest) -> list[Segment]:
        """Forget the file's recipe inside the caller's write transaction and lower its
        segments' counts; the segments no recipe names now, for `remove_unnamed` to
        free after the commit (`segment_refs.count_out`)."""
        recipe = self.recipe_in(db, digest)
        self.drop_view(digest)
        if recipe is None:
            return []
        db.execute("DELETE FROM recipes WHERE sha256 = ?", (digest.hex,))
        return segment_refs.count_out(db, recipe)

    def remove_unnamed(self, index: Index, segments: Iterable[Segment]) -> int:
        """Free the bytes of ``segments`` no recipe names (`segment_refs.release`)."""
        return segment_refs.release(index, self.store, segments)

    def take_back(self, index: Index, path: Path, recipe: Recipe | None) -> None:
        """After a publish or conversion of the file at ``path`` failed: free the
        segments it wrote that no recipe names (``recipe``: None when the failure came
        before it was known; the file is cut again to find the segments kept in their
        own files, and a pack it wrote is left for gc)."""
        try:
            parts = recipe if recipe is not None else split(path)
        except (OSError, ValueError) as exc:
            log.warning("segments of a failed publish left for gc: %s", exc)
            return
        self.remove_unnamed(index, parts.segments)

    def orphans(self, db: sqlite3.Connection) -> list[tuple[Digest, Path, int]]:
        return segment_refs.orphans(db, self.store)

    def orphan_packs(self, db: sqlite3.Connection) -> list[tuple[str, Path, int]]:
        return segment_refs.orphan_packs(db, self.store)

    def drop_orphan(self, db: sqlite3.Connection, digest: Digest) -> bool:
        return segment_refs.drop_orphan(db, self.store, digest)

    def drop_orphan_pack(self, db: sqlite3.Connection, name: str) -> bool:
        return segment_refs.drop_orphan_pack(db, self.store, name) > 0

    def drop_view(self, digest: Digest) -> None:
        """Remove what was made from the file to give callers a path: its view and
        the graph kept to load it from its segments."""
        _unlink(self.view_dir / digest.hex)
        self.drop_linked(digest)

    def drop_linked(self, digest: Digest) -> None:
        """Remove the graph kept to load the file from its segments (made again when
        the host starts, or by the next session: after its segments moved)."""
        for suffix in (".json", ".onnx"):
            _unlink(self.root / LINKED / f"{digest.hex}{suffix}")

    def physical_bytes(self) -> int:
        """Bytes of segment files on disk (the recipes' inline bytes live in the index)."""
        return self.store.physical_bytes()

    def _range(self, recipe: Recipe, offset: int, length: int) -> Iterator[bytes]:
        starts = _starts(recipe)
        end = min(offset + length, recipe.size)
        index = max(0, bisect.bisect_right(starts, offset) - 1)
        while index < len(recipe.parts) and starts[index] < end:
            part, start = recipe.parts[index], starts[index]
            lo, hi = max(offset, start) - start, min(end, start + part.size) - start
            if hi > lo:
                yield self._part_bytes(part, lo, hi)
            index += 1

    def _part_bytes(self, part: Segment | Inline, lo: int, hi: int) -> bytes:
        if isinstance(part, Inline):
            return part.data[lo:hi]
        fh, start = open_segment(self.store, part)
        with fh:
            data = os.pread(fh.fileno(), hi - lo, start + lo)
        if len(data) != hi - lo:
            raise SegmentMissing(f"segment {part.digest.hex} is short")
        return data


def _starts(recipe: Recipe) -> list[int]:
    starts, pos = [], 0
    for part in recipe.parts:
        starts.append(pos)
        pos += part.size
    return starts


def _unlink(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def check_segments(store: Store, recipe: Recipe, digest: Digest, progress: Progress) -> str | None:
    """`webmodels verify` for a file kept as segments: re-hash the reconstruction and
    each segment; a segment whose bytes do not match its name is quarantined (every
    file naming it then reads as missing a segment, and is reported as such)."""
    report = verify(store.segmented.store, recipe, digest)
    progress(recipe.size)
    where = {segment.digest: segment for segment in recipe.segments}
    for bad in report.bad:
        segment_refs.quarantine(store.index, store.segmented.store, where[bad])
    if report.bad:
        return f"segment hash mismatch ({', '.join(d.short for d in report.bad)})"
    if report.missing:
        return f"segment missing ({', '.join(d.short for d in report.missing)})"
    return None if report.whole_ok else "hash mismatch"


def view_location(store: Store, digest: Digest, recipe: Recipe) -> Location:
    """`Store.locate` for a file kept as segments: its view (see the module doc)."""
    try:
        path = store.segmented.view(digest, recipe)
    except SegmentMissing as exc:
        raise HostError("not_found", f"model {digest.hex} lost a segment") from exc
    except OSError as exc:  # making the view: a full or failing disk, said as one
        raise disk_error(exc, store.segmented.view_dir) from exc
    return Location(digest, path, recipe.size, preinstalled=False)


def read_range(
    store: Store, digest: Digest, recipe: Recipe, offset: int, length: int
) -> tuple[bytes, int]:
    """`Store.read` for a file kept as segments: bytes and the file's size."""
    if offset > recipe.size:
        raise HostError("bad_request", f"offset {offset} is past the end ({recipe.size} bytes)")
    try:
        return store.segmented.read_range(recipe, offset, length), recipe.size
    except SegmentMissing as exc:
        raise HostError("not_found", f"model {digest.hex} lost a segment") from exc


def physical_adjustment(store: Store) -> int:
    """What files kept as segments change in the store's physical bytes: minus their
    logical sizes (counted as if whole), plus each segment once and the recipes. The
    compile cache's outputs are not counted as if whole (they are not listed), but
    their segments are on disk like any other."""
    row = store.index.query(
        "SELECT (SELECT TOTAL(size) FROM segment_refs WHERE refs > 0)"
        " + (SELECT TOTAL(LENGTH(recipe)) FROM recipes)"
        " - (SELECT TOTAL(o.size) FROM recipes r JOIN objects o USING (sha256)"
        "    JOIN blobs b USING (sha256) WHERE b.state = 'ok' AND b.origin != 'derived')"
    )[0]
    return int(row[0] or 0)
