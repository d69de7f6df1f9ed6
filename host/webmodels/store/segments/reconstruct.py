"""Rebuild a file from its recipe: as a stream, into a file descriptor, or to verify.

Nothing here holds more than one block (1 MiB) of a file in memory. `copy_to` moves
segment bytes kernel-side where the OS can (``copy_file_range`` into a file,
``sendfile`` into a socket or pipe) and falls back to read and write.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

from webmodels.digest import Digest
from webmodels.store.segments.recipe import Inline, Recipe, Segment
from webmodels.store.segments.segment_store import SegmentStore

_BLOCK = 1 << 20
# A kernel copy that cannot serve this pair of descriptors: use the next way.
_NO_KERNEL_COPY = frozenset(
    (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF, errno.EOPNOTSUPP)
)


class SegmentMissing(LookupError):
    """A recipe names a segment the store does not hold (or holds at another size)."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    whole_ok: bool  # the reconstruction hashes to the file's SHA-256
    bad: tuple[Digest, ...]  # segments whose bytes do not hash to their name
    missing: tuple[Digest, ...]  # segments absent or of the wrong size

    @property
    def ok(self) -> bool:
        return self.whole_ok and not self.bad and not self.missing


def reconstruct(store: SegmentStore, recipe: Recipe) -> Iterator[bytes]:
    """The file's bytes, in order, in blocks of at most 1 MiB."""
    for part in recipe.parts:
        if isinstance(part, Inline):
            yield part.data
            continue
        yield from _segment_blocks(store, part)


def copy_to(store: SegmentStore, recipe: Recipe, out_fd: int) -> int:
    """Write the file's bytes to ``out_fd`` at its current position; bytes written."""
    kernel = True
    for part in recipe.parts:
        if isinstance(part, Inline):
            _write_all(out_fd, part.data)
            continue
        fh, start = open_segment(store, part)
        with fh:
            kernel = kernel and _kernel_copy(fh.fileno(), out_fd, start, part.size)
            if not kernel:
                for block in _blocks(fh, part, start):
                    _write_all(out_fd, block)
    return recipe.size


def verify(store: SegmentStore, recipe: Recipe, sha256: Digest) -> VerifyReport:
    """Re-hash every segment and the whole reconstruction, in one read of each."""
    whole = hashlib.sha256()
    bad: list[Digest] = []
    missing: list[Digest] = []
    for part in recipe.parts:
        if isinstance(part, Inline):
            whole.update(part.data)
            continue
        own = hashlib.sha256()
        try:
            for block in _segment_blocks(store, part):
                own.update(block)
                whole.update(block)
        except SegmentMissing:
            missing.append(part.digest)
            continue
        if own.hexdigest() != part.digest.hex:
            bad.append(part.digest)
    whole_ok = not missing and whole.hexdigest() == sha256.hex
    return VerifyReport(whole_ok, tuple(dict.fromkeys(bad)), tuple(dict.fromkeys(missing)))


def _segment_blocks(store: SegmentStore, segment: Segment) -> Iterator[bytes]:
    fh, start = open_segment(store, segment)
    with fh:
        yield from _blocks(fh, segment, start)


def _blocks(fh: io.FileIO, segment: Segment, start: int) -> Iterator[bytes]:
    """The segment's bytes from ``fh`` (where they start at ``start``), in blocks."""
    done = 0
    while done < segment.size:
        block = os.pread(fh.fileno(), min(_BLOCK, segment.size - done), start + done)
        if not block:
            raise SegmentMissing(f"segment {segment.digest.hex} is short")
        done += len(block)
        yield block


def open_segment(store: SegmentStore, segment: Segment) -> tuple[io.FileIO, int]:
    """The file holding ``segment`` open for reading, and where its bytes start;
    `SegmentMissing` when the file is gone or too short to hold them."""
    path, start = store.locate(segment)
    try:
        fh = io.FileIO(path, "rb")
    except FileNotFoundError as exc:
        raise SegmentMissing(f"no segment {segment.digest.hex}") from exc
    size = os.fstat(fh.fileno()).st_size
    if size != segment.size if segment.pack is None else size < start + segment.size:
        fh.close()
        raise SegmentMissing(f"segment {segment.digest.hex} is not {segment.size} bytes")
    return fh, start


def _kernel_copy(src: int, dst: int, start: int, size: int) -> bool:
    """Copy ``size`` bytes from ``start`` on kernel-side; False (nothing copied)
    where neither call serves these descriptors, so the caller falls back to read and
    write."""
    for call in (_copy_file_range, _sendfile):
        done = 0
        try:
            while done < size:
                sent = call(src, dst, start + done, size - done)
                if sent == 0:
                    raise SegmentMissing("a segment shrank while it was read")
                done += sent
            return True
        except OSError as exc:
            if done or exc.errno not in _NO_KERNEL_COPY:
                raise
    return False


def _copy_file_range(src: int, dst: int, offset: int, count: int) -> int:
    if not hasattr(os, "copy_file_range"):
        raise OSError(errno.ENOSYS, "no copy_file_range")
    return os.copy_file_range(src, dst, min(count, 1 << 30), offset)


def _sendfile(src: int, dst: int, offset: int, count: int) -> int:
    return os.sendfile(dst, src, offset, min(count, 1 << 30))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
