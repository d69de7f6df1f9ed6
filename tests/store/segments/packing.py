"""Segments moved into a pack file by hand, as the store's pack writer lays them out
(one file under ``segments-v1/packs/``, each segment at a 4 KiB-aligned offset; the
index row says which pack and where): for tests of readers of packed segments."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from webmodels.digest import Digest
from webmodels.store.segments import Segment
from webmodels.store.store import Store

ALIGN = 4096
FILL = b"\xee"  # between segments: not zeros, so that a read at a wrong offset shows


def packed_digests(store: Store, model: Digest) -> list[Digest]:
    """The segments of a stored model's recipe."""
    recipe = store.recipe_of(model)
    assert recipe is not None
    return sorted({s.digest for s in recipe.segments}, key=lambda d: d.hex)


def where(store: Store, digest: Digest) -> tuple[Path, int, int]:
    """The file holding a segment, its offset there and its size (from the index)."""
    [row] = store.index.query(
        "SELECT size, pack, pack_offset FROM segment_refs WHERE segment = ?", (digest.hex,)
    )
    segment = Segment(digest, int(row["size"]), row["pack"], int(row["pack_offset"]))
    path, offset = store.segmented.store.locate(segment)
    return path, offset, segment.size


def move_into_pack(store: Store, digests: Iterable[Digest], *, lead: int = ALIGN) -> str:
    """Copy each segment's bytes (from wherever they are) into one new pack file, the
    first at ``lead`` (so none starts at offset 0), point the index at them and remove
    their own files; where one was in a pack, its old place there is overwritten.
    Returns the pack's name."""
    segments = store.segmented.store
    segments.pack_dir.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.pack"
    rows: list[tuple[str, int, str]] = []
    old: list[tuple[Path, int, int]] = []
    with segments.pack_path(name).open("wb") as out:
        out.write(FILL * lead)
        for digest in sorted(set(digests), key=lambda d: d.hex):
            path, at, size = where(store, digest)
            with path.open("rb") as fh:
                data = os.pread(fh.fileno(), size, at)
            assert len(data) == size
            offset = -(-out.tell() // ALIGN) * ALIGN
            out.write(FILL * (offset - out.tell()) + data)
            rows.append((name, offset, digest.hex))
            old.append((path, at, size))
        out.write(FILL * ALIGN)
    with store.index.write() as db:
        db.executemany("UPDATE segment_refs SET pack = ?, pack_offset = ? WHERE segment = ?", rows)
    for path, at, size in old:
        if path.parent == segments.pack_dir:
            with path.open("r+b") as fh:
                os.pwrite(fh.fileno(), FILL * size, at)
        else:
            path.unlink()
    return name
