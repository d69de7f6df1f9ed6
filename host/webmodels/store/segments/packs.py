"""Pack files: every segment of one ingest written into one file.

A segment kept in a file of its own cost a file created, renamed and later removed:
a corpus import made 1,490 files where the whole-file store made 45, and took 1.03 to
2.42 times as long, swinging with the disk's state (docs/segments.md). So an ingest
writes all its segments into one *pack* (``segments-v1/packs/<32 hex>.pack``), each at
an offset aligned to `ALIGN` (the gaps are holes: they take no blocks), then makes
that one file durable and renames it into place, as a whole file is.

Where a segment is, is the index's to say (``segment_refs.pack`` and ``pack_offset``;
NULL: the segment's own file, as stores written before packs keep them). A segment
that another file already holds keeps its place, and the new copy's range in the new
pack is freed later, on the reaper thread (`punch_later`): storing bytes someone else
stored first costs the writer what storing new bytes does. Aligned ranges are what
makes freeing one range alone possible: punching a hole frees whole blocks only.
ONNX Runtime maps external data at page-aligned offsets too.

A pack leaves when no row names it any more; a segment's range when its segment is
named by no file (gc, delete) or is a duplicate. Where the file system cannot punch
holes (`punch_supported`), ingest keeps each segment in its own file as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webmodels.store.segments.reaper import run_later

ALIGN = 4096
SUFFIX = ".pack"
WRITEBACK_EVERY = 8 << 20
"""Bytes written before their writeback is started (`PackWriter`): the final fsync
then waits for the last few MiB, not for the whole pack, as a whole file's copy
(written in order, flushed by the kernel as it goes) mostly is by its fsync."""
_SYNC_FILE_RANGE_WRITE = 2
_PUNCH_HOLE = 0x02  # FALLOC_FL_PUNCH_HOLE
_KEEP_SIZE = 0x01  # FALLOC_FL_KEEP_SIZE
_SUPPORTED: dict[Path, bool] = {}


def aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


def is_pack_name(name: str) -> bool:
    stem = name.removesuffix(SUFFIX)
    return name.endswith(SUFFIX) and len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)


class PackWriter:
    """A new pack being written: a private temp file, renamed to ``packs/<name>``
    by the caller once it is durable (`SegmentStore`)."""

    def __init__(self, tmp_dir: Path) -> None:
        token = uuid.uuid4().hex
        self.name = f"{token}{SUFFIX}"
        self.temp = tmp_dir / f"{os.getpid()}-{token}{SUFFIX}"
        # Read-only once published, as a segment file is; this descriptor still writes.
        self.fd: int | None = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        self.end = 0
        self._unflushed = 0  # where bytes whose writeback was not started begin

    def add(self, data: memoryview) -> int:
        """Write ``data`` at the next aligned offset; that offset."""
        assert self.fd is not None
        offset = aligned(self.end)
        done = 0
        while done < len(data):
            with data[done:] as rest:
                done += os.pwrite(self.fd, rest, offset + done)
        self.end = offset + len(data)
        self._start_writeback()
        return offset

    def add_blocks(self, blocks: Callable[[], bytes | None]) -> int:
        """Write what ``blocks`` returns until it returns None, from the next aligned
        offset on; that offset (for a segment read from a file in blocks)."""
        assert self.fd is not None
        offset = position = aligned(self.end)
        while (block := blocks()) is not None:
            view = memoryview(block)
            while view:
                written = os.pwrite(self.fd, view, position)
                view, position = view[written:], position + written
            self.end = position
            self._start_writeback()
        self.end = position
        return offset

    def _start_writeback(self) -> None:
        """Start writing back what was written since the last start, every
        `WRITEBACK_EVERY` bytes (``sync_file_range``, which does not wait; a hint)."""
        if self.end - self._unflushed < WRITEBACK_EVERY or _SYNC_FILE_RANGE is None:
            return
        assert self.fd is not None
        _SYNC_FILE_RANGE(
            self.fd, self._unflushed, self.end - self._unflushed, _SYNC_FILE_RANGE_WRITE
        )
        self._unflushed = self.end

    def finish(self) -> None:
        """Make the pack's bytes durable and close it."""
        if self.fd is None:
            return
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = None

    def discard(self) -> None:
        """Remove the pack (its temp file, or where it was renamed to: `temp`)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.temp.unlink(missing_ok=True)


def libc_call(name: str, *argtypes: Any) -> Callable[..., int] | None:
    """The C library's ``name`` on Linux (Python's ``os`` has no binding), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    call.argtypes = list(argtypes)
    call.restype = ctypes.c_int
    found: Callable[..., int] = call
    return found


_FALLOCATE = libc_call(
    "fallocate", ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong
)
_SYNC_FILE_RANGE = libc_call(
    "sync_file_range", ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint
)


def punch(path: Path, offset: int, length: int) -> bool:
    """Free the blocks of [offset, offset + length) in ``path`` (rounded out to whole
    `ALIGN` blocks: ranges are aligned and own their tail); the file keeps its size and
    reads zeros there. False where the file system cannot, or the file is gone."""
    if _FALLOCATE is None or length <= 0:
        return False
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:  # gone (its pack was removed), or not ours to write
        return False
    try:
        return _FALLOCATE(fd, _PUNCH_HOLE | _KEEP_SIZE, offset, aligned(length)) == 0
    finally:
        os.close(fd)


def punch_later(path: Path, offset: int, length: int) -> None:
    """`punch` on the reaper thread (the caller's time must not depend on it)."""
    run_later(lambda: punch(path, offset, length))


def punch_supported(folder: Path) -> bool:
    """Whether holes can be punched in files under ``folder`` (tried once per folder:
    a probe file of two blocks, the first punched)."""
    if folder not in _SUPPORTED:
        _SUPPORTED[folder] = _probe(folder)
    return _SUPPORTED[folder]


def _probe(folder: Path) -> bool:
    """False where the call is missing or the file system refuses it; any other
    failure (a failing disk) is raised, not remembered as "unsupported"."""
    if _FALLOCATE is None:
        return False
    probe = folder / f".{os.getpid()}-{uuid.uuid4().hex}.probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"\1" * (2 * ALIGN))
        if _FALLOCATE(fd, _PUNCH_HOLE | _KEEP_SIZE, 0, ALIGN) != 0:
            errno_ = ctypes.get_errno()
            if errno_ in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return False
            raise OSError(errno_, os.strerror(errno_), str(probe))
        return os.pread(fd, ALIGN, 0) == bytes(ALIGN) and os.fstat(fd).st_size == 2 * ALIGN
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
