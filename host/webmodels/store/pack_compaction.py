"""Compacting packs: rewriting a pack whose segments are partly freed (gc).

When a file is deleted, the segments only it named are freed, but a pack that other
files' segments still live in keeps their bytes: a running ONNX Runtime session may
map that pack, and a hole punched under its map would turn its weights to zeros
(segment_refs.release). `gc` finds packs whose freed bytes are worth the copy
(`wasted_packs`) and `compact` rewrites each: the live segments are copied into a new
pack (each re-hashed on the way: a segment whose bytes no longer match its name is
left where it is, for `verify`), the new pack is made durable and renamed into place,
the rows move to it in one write transaction (only rows still where the copy was
taken from), and the old pack is unlinked once no row names it. A session that
mapped the old pack keeps reading it (an unlinked file lives while it is mapped);
later sessions re-link their graphs to the new places (runtime/segment_sessions.py):
gc removes the kept graphs of the files whose segments moved, which the host's start
makes again in the background.

A process killed at any point leaves the old pack in use and the new one an orphan
(no row names it), or the rows moved and the old pack an orphan: `gc` removes either.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels.store.blobs import fsync_dir
from webmodels.store.index import Index
from webmodels.store.segment_refs import drop_orphan_pack
from webmodels.store.segments import SegmentStore, reaper
from webmodels.store.segments.packs import PackWriter, aligned

log = logging.getLogger(__name__)

WASTE_SHARE = 0.25
WASTE_BYTES = 256 << 20
WASTE_MIN = 1 << 20
"""A pack is rewritten once at least this share of its blocks, or this many bytes,
hold segments no file names (and never for less than `WASTE_MIN`: a small pack's
blocks are not exactly its segments' own): below, the copy of its live bytes costs
more than the space it frees is worth."""
_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Wasted:
    name: str
    path: Path
    on_disk: int  # bytes of blocks the pack takes
    live: int  # bytes of blocks its live segments take

    @property
    def freed(self) -> int:
        return max(0, self.on_disk - self.live)


def pack_usage(index: Index, store: SegmentStore) -> list[Wasted]:
    """Every pack: the blocks it takes and those its live segments take (0 for a pack
    no row names: an orphan, which gc removes whole)."""
    rows = index.query("SELECT pack, size FROM segment_refs WHERE pack IS NOT NULL AND refs > 0")
    live: dict[str, int] = {}
    for row in rows:
        live[row[0]] = live.get(row[0], 0) + aligned(int(row[1]))
    found = []
    for name, path in store.iter_packs():
        try:
            on_disk = path.stat().st_blocks * 512
        except FileNotFoundError:
            continue
        found.append(Wasted(name, path, on_disk, live.get(name, 0)))
    return found


def reclaimable_bytes(index: Index, store: SegmentStore) -> int:
    """Bytes of pack blocks no file's segment takes: what `gc` can free in packs.
    Counted once this process's queued frees are done: the copies of segments held
    already, which an import leaves in its new pack, are punched out within moments
    by the reaper, not by gc."""
    reaper.drain(timeout_s=10)
    return sum(pack.freed for pack in pack_usage(index, store))


def wasted_packs(index: Index, store: SegmentStore) -> list[Wasted]:
    """Packs worth compacting (see `WASTE_SHARE`), once this process's queued frees of
    duplicate copies are done (else a pack just written would look wasted)."""
    reaper.drain(timeout_s=60)
    found = []
    for pack in pack_usage(index, store):
        worth = pack.freed >= WASTE_BYTES or pack.freed >= WASTE_SHARE * pack.on_disk
        if pack.live and worth and pack.freed >= WASTE_MIN:
            found.append(pack)
    return found


@dataclass(frozen=True, slots=True)
class Compacted:
    freed: int  # bytes of blocks
    moved: frozenset[str]  # the segments (hex) that now lie elsewhere


def compact(index: Index, store: SegmentStore, name: str) -> Compacted:
    """Rewrite the pack ``name`` with only its live segments (see the module doc)."""
    old = store.pack_path(name)
    rows = index.query(
        "SELECT segment, size, pack_offset FROM segment_refs WHERE pack = ? AND refs > 0"
        " ORDER BY pack_offset",
        (name,),
    )
    if not rows:
        return Compacted(0, frozenset())
    store.ensure()
    before = old.stat().st_blocks * 512
    writer = PackWriter(store.tmp_dir)
    moved: list[tuple[str, int, int]] = []  # segment, old offset, new offset
    committed = False
    try:
        fd = os.open(old, os.O_RDONLY)
        try:
            for segment, size, offset in rows:
                # Copied in blocks and hashed on the way (a tensor may be gigabytes);
                # one whose bytes do not match its name stays where it is (a dead
                # range of the new pack).
                hasher = hashlib.sha256()
                now = writer.add_blocks(_blocks(fd, int(offset), int(size), hasher))
                if hasher.hexdigest() != segment:
                    log.warning("segment %s does not match its name; left for verify", segment)
                    continue
                moved.append((segment, int(offset), now))
        finally:
            os.close(fd)
        writer.finish()
        final = store.pack_path(writer.name)
        os.replace(writer.temp, final)
        writer.temp = final  # removed there if the rows do not move
        fsync_dir(store.pack_dir)
        with index.write() as db:
            for segment, was, now in moved:
                db.execute(
                    "UPDATE segment_refs SET pack = ?, pack_offset = ?"
                    " WHERE segment = ? AND pack = ? AND pack_offset = ?",
                    (writer.name, now, segment, name, was),
                )
        committed = True
    except BaseException:
        if not committed:
            writer.discard()
        raise
    # After the commit (inside it, a failed COMMIT would leave rows naming a pack
    # that is gone): each goes once no row names it.
    with index.write() as db:
        drop_orphan_pack(db, store, writer.name)  # every row moved on meanwhile
        drop_orphan_pack(db, store, name)
    hexes = frozenset(segment for segment, _, _ in moved)
    if old.exists():
        return Compacted(0, hexes)
    return Compacted(max(0, before - _allocated(store.pack_path(writer.name))), hexes)


def _blocks(fd: int, offset: int, size: int, hasher: Any) -> Callable[[], bytes | None]:
    """Blocks of [offset, offset + size) of ``fd``, each hashed as it is handed out;
    None at the end (or where the file ends early)."""
    done = 0

    def next_block() -> bytes | None:
        nonlocal done
        if done >= size:
            return None
        block = os.pread(fd, min(_BLOCK, size - done), offset + done)
        if not block:
            return None
        done += len(block)
        hasher.update(block)
        return block

    return next_block


def _allocated(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0
