"""Sending a file kept as segments into a connection (segments/sending.py): small parts
gathered into batches, large segments by sendfile. The bytes that arrive are the
file's, in order, across every kind of part boundary, from any resume offset, and a
reader that stops reading ends the transfer at the connection's timeout."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
from pathlib import Path

import pytest

from webmodels.digest import Digest
from webmodels.read_offsets import send_from
from webmodels.store.segmented import SegmentedFiles
from webmodels.store.segments import Inline, Recipe, Segment
from webmodels.store.segments.packs import aligned
from webmodels.store.segments.sending import BATCH, GATHER_MAX, send_parts


def _stored(tmp_path: Path) -> tuple[SegmentedFiles, Recipe, bytes]:
    """Segments around the batching limits (sent by sendfile above `GATHER_MAX`),
    inline parts between them, a run of many small segments that fills several
    batches, inline parts back to back."""
    rng = random.Random(15)
    files = SegmentedFiles(tmp_path / "store", enabled=True)
    files.store.ensure()
    sizes = [
        GATHER_MAX + 1,
        GATHER_MAX,
        GATHER_MAX - 1,
        *[8192 + 3 * i for i in range(300)],  # more than BATCH of small segments in a row
        BATCH,
        3 * GATHER_MAX + 17,
        4096,
    ]
    parts: list[Segment | Inline] = [Inline(b"\x08\x07header")]
    for i, size in enumerate(sizes):  # every other segment in a pack, at an offset
        parts.append(_put(files, rng.randbytes(size), packed=i % 2 == 1))
        parts.extend(Inline(rng.randbytes(rng.randrange(1, 900))) for _ in range(size % 3))
    recipe = Recipe(tuple(parts))
    data = b"".join(_bytes_of(files, part) for part in parts)
    assert any(p.size > GATHER_MAX for p in recipe.segments)
    return files, recipe, data


PACK = "0" * 32 + ".pack"


def _put(files: SegmentedFiles, data: bytes, *, packed: bool) -> Segment:
    digest = Digest(hashlib.sha256(data).hexdigest())
    if packed:  # appended to one pack file, 4 KiB-aligned, as an import writes them
        path = files.store.pack_path(PACK)
        offset = aligned(path.stat().st_size) if path.exists() else 0
        with path.open("ab") as fh:
            fh.write(bytes(offset - fh.tell()) + data)
        return Segment(digest, len(data), PACK, offset)
    path = files.store.path_of(digest)
    if not path.exists():
        path.write_bytes(data)
    return Segment(digest, len(data))


def _bytes_of(files: SegmentedFiles, part: Segment | Inline) -> bytes:
    if isinstance(part, Inline):
        return part.data
    path, offset = files.store.locate(part)
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(part.size)


def _received(send: object, *, timeout: float | None) -> bytes:
    left, right = socket.socketpair()
    left.settimeout(timeout)  # non-blocking underneath: sends wait on readiness
    got = bytearray()

    def drain() -> None:
        while block := right.recv(65536):
            got.extend(block)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        send(left)  # type: ignore[operator]
    finally:
        left.close()
        reader.join(timeout=60)
        right.close()
    return bytes(got)


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_whole_file_arrives_byte_for_byte(tmp_path: Path, timeout: float | None) -> None:
    files, recipe, data = _stored(tmp_path)
    assert _received(lambda c: files.send_parts(recipe, c), timeout=timeout) == data


def test_every_part_boundary_and_resume_offset_sends_the_rest(tmp_path: Path) -> None:
    files, recipe, data = _stored(tmp_path)
    starts, pos = [], 0
    for part in recipe.parts:
        starts.append(pos)
        pos += part.size
    offsets = {0, len(data) - 1, BATCH, BATCH + 1}
    for start in starts[:: max(1, len(starts) // 40)]:
        offsets.update({start, start + 1, max(0, start - 1)})
    for offset in sorted(o for o in offsets if 0 <= o < len(data)):
        got = _received(lambda c, o=offset: send_from(files, recipe, o, c), timeout=30.0)
        assert got == data[offset:], f"offset {offset}"


def test_a_missing_segment_ends_the_transfer_short(tmp_path: Path) -> None:
    files, recipe, data = _stored(tmp_path)
    lost = next(s for s in recipe.segments[len(recipe.segments) // 2 :] if s.pack is None)
    os.chmod(files.store.path_of(lost.digest), 0o600)
    files.store.path_of(lost.digest).unlink()
    with pytest.raises(OSError):
        send_parts(files.store, recipe.parts, socket.socket())  # fails before a send
    got = bytearray()

    def send(conn: socket.socket) -> None:
        with pytest.raises(OSError):
            files.send_parts(recipe, conn)

    got.extend(_received(send, timeout=30.0))
    assert len(got) < len(data) and data.startswith(bytes(got))


def test_a_reader_that_stops_reading_times_the_transfer_out(tmp_path: Path) -> None:
    files, recipe, _ = _stored(tmp_path)
    left, right = socket.socketpair()
    left.settimeout(0.5)
    try:
        with pytest.raises(TimeoutError):
            files.send_parts(recipe, left)  # nobody reads `right`
    finally:
        left.close()
        right.close()
