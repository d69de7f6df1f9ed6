"""`SegmentStore`: segment bytes on disk, in pack files or files of their own.

Layout (under the store's root; ``segments-v1`` is this layout's version)::

    segments-v1/packs/<32 hex>.pack   the segments of one ingest, 4 KiB-aligned (packs.py)
    segments-v1/sha256/ab/<64 hex>   a segment in its own file, named by its SHA-256
    segments-v1/tmp/<pid>-<uuid>.seg|.pack   being written; renamed or removed
    segments-v1/quarantine/<64 hex>.<UTC>  segments that failed verification

A store with an index (`SegmentedFiles`, ``packs=None``) writes each ingest's segments
into one pack where the file system can punch holes; the index says where each
segment is (`locate`). Without one (tests, benchmarks of the cutting), each segment is
a file named by its hash, and the file system is the index.

`ingest` reads each piece of the plan once, copying it into the pack (or a private
temp file) while hashing it. Then the pack gets its own fsync, its rename into
``packs/`` and its folder's fsync; segments of their own get one flush for all
(``syncfs`` on Linux, else an fsync each: `durable`), their renames, and one more
flush. A segment file already held takes the same steps as a new one: written,
flushed, then renamed once (aside, not over the held file: freeing the held file's
blocks cost milliseconds a segment, where a rename to a new name costs microseconds;
the aside copy is removed in the background, `reaper`), so the time to store bytes
does not tell whether someone else stored them first; a held segment's copy in a new
pack is freed the same way (store/segment_refs.py). Publishing is idempotent and
needs no lock: every writer has its own temp file, and only bytes whose hash was just
computed from the written copy are published.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.permissions import make_private_dir
from webmodels.store.blobs import fsync_dir, move_to_quarantine, process_alive
from webmodels.store.segments.durable import sync_files, sync_renames
from webmodels.store.segments.packs import PackWriter, is_pack_name, punch_supported
from webmodels.store.segments.reaper import remove_later
from webmodels.store.segments.recipe import Inline, Part, Recipe, Segment
from webmodels.store.segments.split import Piece, Plan, mapped_file, plan

LAYOUT = "segments-v1"
_BLOCK = 1 << 20


class SegmentStore:
    def __init__(self, root: Path, *, packs: bool | None = False) -> None:
        """``packs``: write each ingest's segments into one pack file (None: where the
        file system can free a pack's ranges, `packs.punch_supported`). Only a store
        with an index (`SegmentedFiles`) can find a segment in a pack again; without
        one, each segment is a file named by its hash."""
        self.root = root
        self._packs = packs
        self.base = root / LAYOUT
        self.segment_dir = self.base / "sha256"
        self.tmp_dir = self.base / "tmp"
        self.quarantine_dir = self.base / "quarantine"
        self.pack_dir = self.base / "packs"
        self._ready = False

    def ensure(self) -> None:
        """Make the layout's folders, the 256 shards included (once per instance)."""
        if self._ready and self.tmp_dir.is_dir():
            return
        for folder in (self.segment_dir, self.tmp_dir, self.quarantine_dir, self.pack_dir):
            make_private_dir(folder, own=self.root)
        for shard in range(256):
            make_private_dir(self.segment_dir / f"{shard:02x}", own=self.root)
        self._ready = True

    @property
    def packing(self) -> bool:
        """Whether new segments go into pack files (after `ensure`)."""
        if self._packs is None:
            self._packs = punch_supported(self.tmp_dir)
        return self._packs

    def path_of(self, digest: Digest) -> Path:
        """Where a segment kept in its own file lies (one in a pack: `locate`)."""
        return self.segment_dir / digest.hex[:2] / digest.hex

    def pack_path(self, name: str) -> Path:
        return self.pack_dir / name

    def locate(self, segment: Segment) -> tuple[Path, int]:
        """The file holding ``segment``'s bytes and their offset in it."""
        if segment.pack is None:
            return self.path_of(segment.digest), 0
        return self.pack_dir / segment.pack, segment.offset

    def has(self, segment: Segment) -> bool:
        """Whether the segment's file is there, long enough to hold its bytes (a
        segment's own file: exactly its size)."""
        path, offset = self.locate(segment)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        return size == segment.size if segment.pack is None else size >= offset + segment.size

    def ingest(self, path: Path, *, graph: Path | None = None) -> Recipe:
        """Store the file at ``path`` as segments; its recipe (see `split.plan`).

        Every segment is written and hashed first (into one pack, or each into a temp
        file of its own), then made durable, then renamed into place, then the renames
        are made durable: an fsync per segment and per shard folder cost a journal
        commit each (ingest ran at a quarter of a whole-file import on the corpus of
        scripts/bench/segments.py)."""
        self.ensure()
        layout = plan(path, graph=graph)
        batch = _Batch(PackWriter(self.tmp_dir) if self.packing else None)
        try:
            with mapped_file(path, layout.size) as data:
                parts = [self._part(data, piece, batch) for piece in layout.pieces]
            return self._commit(parts, batch)
        finally:
            batch.discard()  # what was not renamed: a failure on the way

    def ingest_bytes(self, data: memoryview, layout: Plan) -> Recipe:
        """Store a file held in memory as segments, cut as ``layout`` says (made from
        these bytes: `split.plan_bytes`); its recipe. ``data`` is the caller's own
        copy, which nothing changes meanwhile: each piece is written straight from
        it, and hashed from it on a second thread (`_write_pieces`). The same steps as
        `ingest` follow."""
        self.ensure()
        batch = _Batch(PackWriter(self.tmp_dir) if self.packing else None)
        try:
            parts = self._write_pieces(data, layout.pieces, batch)
            return self._commit(parts, batch)
        finally:
            batch.discard()

    def _commit(self, parts: list[Part], batch: _Batch) -> Recipe:
        """Make the written bytes durable, rename the pack or each temp file into place
        (taking it off ``batch``), make the renames durable."""
        folders: set[Path] = set()
        if batch.pack is not None and not any(isinstance(p, Segment) for p in parts):
            batch.discard()  # every part inline: no pack to keep
        if batch.pack is not None:
            batch.pack.finish()  # one file: its own fsync (a `syncfs` waits for others')
            final = self.pack_dir / batch.pack.name
            os.replace(batch.pack.temp, final)
            batch.pack.temp = final  # removed there if the rename cannot be made durable
            fsync_dir(self.pack_dir)
            batch.pack = None
        self.make_durable([temp for temp, _, _ in batch.files])
        while batch.files:
            folders.add(self._publish(*batch.files[-1]))
            batch.files.pop()  # renamed: no longer ours to remove
        if folders:
            self.make_renames_durable(folders)  # the renames themselves survive a crash
        return Recipe(tuple(parts))

    def make_durable(self, temps: list[Path]) -> None:
        """The written temp files' bytes reach the disk before any is renamed."""
        if temps:
            sync_files(self.base, temps)

    def make_renames_durable(self, folders: set[Path]) -> None:
        sync_renames(self.base, folders)

    def iter_segments(self) -> Iterator[tuple[Digest, Path]]:
        if not self.segment_dir.is_dir():
            return
        for shard in sorted(self.segment_dir.iterdir()):
            for path in sorted(shard.iterdir()):
                try:
                    yield Digest(path.name), path
                except ValueError:
                    continue  # not ours; never touched

    def quarantine(self, digest: Digest) -> Path | None:
        """Move a segment that failed verification out of service (kept to inspect).
        Files that do not name it are untouched; a file that does reads as missing a
        segment until it is stored again, which publishes the segment afresh."""
        make_private_dir(self.quarantine_dir, own=self.root)
        return move_to_quarantine(self.path_of(digest), self.quarantine_dir, digest)

    def stale_temps(self) -> list[Path]:
        """Temp files (segments, packs) whose writer is gone (killed mid-ingest)."""
        if not self.tmp_dir.is_dir():
            return []
        return [
            path
            for path in sorted([*self.tmp_dir.glob("*.seg"), *self.tmp_dir.glob("*.pack")])
            if not (path.name.split("-", 1)[0].isdigit() and _alive(path))
        ]

    def iter_packs(self) -> Iterator[tuple[str, Path]]:
        if not self.pack_dir.is_dir():
            return
        for path in sorted(self.pack_dir.iterdir()):
            if is_pack_name(path.name):
                yield path.name, path

    def physical_bytes(self) -> int:
        """Bytes of segment files (their sizes) and packs (their blocks: a pack's
        freed ranges are holes)."""
        own = sum(path.stat().st_size for _, path in self.iter_segments())
        return own + sum(path.stat().st_blocks * 512 for _, path in self.iter_packs())

    def _write_pieces(
        self, data: memoryview, pieces: tuple[Piece, ...], batch: _Batch
    ) -> list[Part]:
        """The parts of ``pieces`` of the caller's own bytes (nothing changes them
        meanwhile): each segment written here (into the pack, or a temp file of its
        own) while a second thread hashes the same bytes (hashlib releases the GIL:
        the hashes cost no time beside the writes on a multi-core machine). Both have
        ended before this returns or raises; what was written is on ``batch`` (the
        caller removes what it does not rename)."""
        segments = [piece for piece in pieces if not piece.inline]
        temps: list[Path] = []
        offsets: list[int] = []
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="segment-hash") as pool:
                hashing = pool.submit(_digests, data, segments)
                for piece in segments:
                    if batch.pack is not None:
                        with data[piece.offset : piece.offset + piece.length] as chunk:
                            offsets.append(batch.pack.add(chunk))
                    else:
                        temps.append(self._write_temp(data, piece))
                digests = hashing.result()
        except BaseException:
            for temp in temps:
                temp.unlink(missing_ok=True)
            raise
        pack = batch.pack.name if batch.pack is not None else None
        located = iter(zip(digests, offsets or [0] * len(digests), strict=True))
        parts: list[Part] = []
        for p in pieces:
            if p.inline:
                parts.append(Inline(bytes(data[p.offset : p.offset + p.length])))
                continue
            digest, offset = next(located)
            parts.append(Segment(digest, p.length, pack, offset))
        batch.files.extend(
            zip(temps, digests, (p.length for p in segments), strict=True) if temps else ()
        )
        return parts

    def _write_temp(self, data: memoryview, piece: Piece) -> Path:
        """A new temp file holding ``piece`` of ``data`` (removed again on a failure)."""
        temp = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.seg"
        with data[piece.offset : piece.offset + piece.length] as chunk:
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                try:
                    _write_all(fd, chunk)
                    _start_writeback(fd)
                finally:
                    os.close(fd)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return temp

    def _part(self, data: memoryview, piece: Piece, batch: _Batch) -> Part:
        if piece.inline:
            return Inline(bytes(data[piece.offset : piece.offset + piece.length]))
        # Released here whatever happens: a slice of the map that a traceback kept alive
        # would make closing the map fail and hide the error (a full disk).
        with data[piece.offset : piece.offset + piece.length] as chunk:
            if batch.pack is not None:
                hasher = hashlib.sha256()
                offset = batch.pack.add_blocks(_hashed_blocks(chunk, hasher))
                return Segment(Digest(hasher.hexdigest()), piece.length, batch.pack.name, offset)
            temp = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.seg"
            try:
                digest = _write_hashed(temp, chunk)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        batch.files.append((temp, digest, piece.length))
        return Segment(digest, piece.length)

    def _publish(self, temp: Path, digest: Digest, size: int) -> Path:
        """Rename a written, flushed segment into place. For one already held, the new
        copy is renamed aside instead (one rename to a new name either way: replacing
        the held file freed its blocks on the writer's time, a few ms a segment) and
        removed in the background (`reaper`); timing does not tell the two apart."""
        final = self.path_of(digest)
        if self._held(final, size):
            aside = temp.with_name(f"{temp.stem}-dup.seg")
            os.replace(temp, aside)
            remove_later(aside)
            return final.parent
        try:
            os.replace(temp, final)
        except FileNotFoundError:  # its shard was removed since `ensure`
            make_private_dir(final.parent, own=self.root)
            os.replace(temp, final)
        return final.parent

    @staticmethod
    def _held(final: Path, size: int) -> bool:
        try:
            return final.stat().st_size == size
        except FileNotFoundError:
            return False


class _Batch:
    """What one ingest wrote and has not renamed into place yet."""

    def __init__(self, pack: PackWriter | None) -> None:
        self.pack = pack
        self.files: list[tuple[Path, Digest, int]] = []  # temp, segment, size

    def discard(self) -> None:
        if self.pack is not None:
            self.pack.discard()
            self.pack = None
        for temp, _, _ in self.files:
            temp.unlink(missing_ok=True)
        self.files.clear()


def _hashed_blocks(chunk: memoryview, hasher: Any) -> Callable[[], bytes | None]:
    """Blocks of ``chunk``, each copied first (the source may change under a map) and
    hashed as it is handed out; None at the end."""
    starts = iter(range(0, len(chunk), _BLOCK))

    def next_block() -> bytes | None:
        start = next(starts, None)
        if start is None:
            return None
        block = bytes(chunk[start : start + _BLOCK])
        hasher.update(block)
        return block

    return next_block


def _write_hashed(temp: Path, chunk: memoryview) -> Digest:
    """Write ``chunk`` to a new ``temp`` file; the SHA-256 of exactly the bytes
    written (each block is copied first: the source may change under a map)."""
    hasher = hashlib.sha256()
    # Created read-only (0400, the user's alone), as published: no chmod before the
    # rename; the descriptor opened here still writes.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        for start in range(0, len(chunk), _BLOCK):
            block = bytes(chunk[start : start + _BLOCK])
            hasher.update(block)
            _write_all(fd, memoryview(block))
        _start_writeback(fd)
    finally:
        os.close(fd)
    return Digest(hasher.hexdigest())


def _digests(data: memoryview, pieces: list[Piece]) -> list[Digest]:
    """The SHA-256 of each of ``pieces`` of ``data``, in order."""
    digests = []
    for piece in pieces:
        with data[piece.offset : piece.offset + piece.length] as chunk:
            digests.append(Digest(hashlib.sha256(chunk).hexdigest()))
    return digests


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _start_writeback(fd: int) -> None:
    """Start writing the file out now, without waiting (a hint; the fsync that follows
    is what makes it durable). On Linux, ``POSIX_FADV_DONTNEED`` starts writeback of
    the dirty pages, so ext4 allocates every segment's blocks before the first fsync:
    that fsync's journal commit then covers them all and the later ones find their
    metadata already committed, where each fsync otherwise committed on its own."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _alive(temp: Path) -> bool:
    return process_alive(int(temp.name.split("-", 1)[0]))
