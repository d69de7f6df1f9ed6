"""Making a batch of new files and renames durable with as few flushes as possible.

An fsync per segment file and per folder cost one journal commit each: hundreds per
model, where importing a whole file costs one. On Linux, ``syncfs`` flushes the whole
file system the store lives on in one call (one journal commit for the batch; Python's
``os`` has no binding, so it is called through ``ctypes``). Elsewhere, or where the
call is refused, each file (or folder) is fsynced in turn, after all were written, so
the kernel has had time to write most of them back already.

One ``syncfs`` per batch, not two (`write_back` then the renames then `syncfs`): a
``syncfs`` waits for every dirty page of the file system, other programs' too, so on
a disk others write to each one costs what they wrote meanwhile. The bytes of each
new file are instead written to the device and waited for with ``sync_file_range``
(``WAIT_BEFORE | WRITE | WAIT_AFTER``: only this file's pages, no journal commit)
before any file is renamed. The one ``syncfs`` after the renames then commits, in
the journal, the files' block allocations and their renames together. Why a crash
cannot leave a name whose bytes are lost: the data I/O of every file completed before
its rename was issued; a journal commit that makes the rename durable comes after it
(this ``syncfs`` or the file system's own periodic commit) and is written behind a
cache flush of the device (a journaling file system's commit is a write barrier), so
the data it points at is on stable storage first; journal transactions commit in
order, so the allocation is never newer than the rename. A crash before that commit
leaves the temp file, or nothing, never a published segment. ``sync_file_range``
alone makes nothing durable (it flushes no metadata and no device cache: its manual
says so); here it only orders the data before the rename, and the ``syncfs`` is what
commits. Where ``sync_file_range`` or ``syncfs`` is missing (not Linux) or refused,
the two-step path is taken: flush the data, rename, flush the renames.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from webmodels.store.blobs import fsync_dir

# <linux/fs.h>: wait for writeback already under way, start it, wait for it to end
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def _load_syncfs(libc: ctypes.CDLL | None) -> Callable[[int], int] | None:
    try:
        call = libc.syncfs if libc is not None else None
    except AttributeError:
        return None
    if call is None:
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int
    syncfs_call: Callable[[int], int] = call
    return syncfs_call


def _load_sync_file_range(libc: ctypes.CDLL | None) -> Callable[[int, int, int, int], int] | None:
    try:
        call = libc.sync_file_range if libc is not None else None
    except AttributeError:
        return None
    if call is None:
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    range_call: Callable[[int, int, int, int], int] = call
    return range_call


_LIBC = _libc()
_SYNCFS = _load_syncfs(_LIBC)
_SYNC_FILE_RANGE = _load_sync_file_range(_LIBC)


def syncfs(anchor: Path) -> bool:
    """Flush every file system write on the file system holding ``anchor``; False
    where ``syncfs`` is not available (nothing was flushed)."""
    if _SYNCFS is None:
        return False
    fd = os.open(anchor, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), str(anchor))
    finally:
        os.close(fd)
    return True


def write_back(files: Iterable[Path]) -> bool:
    """Write the data of ``files`` to the device and wait for it (not durable by
    itself: see the module docstring); False where that cannot be done, in which case
    the caller takes the two-step path (`sync_files`, renames, `sync_renames`)."""
    if _SYNC_FILE_RANGE is None or _SYNCFS is None:
        return False
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            if _SYNC_FILE_RANGE(fd, 0, 0, _WAIT_BEFORE | _WRITE | _WAIT_AFTER) != 0:
                return False  # refused here (ENOSYS, EINVAL): flush the two-step way
        finally:
            os.close(fd)
    return True


def sync_files(anchor: Path, files: Iterable[Path]) -> None:
    """Make the data of ``files`` (all on ``anchor``'s file system) durable."""
    if not syncfs(anchor):
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def sync_renames(anchor: Path, folders: Iterable[Path]) -> None:
    """Make renames into ``folders`` (all on ``anchor``'s file system) durable."""
    if not syncfs(anchor):
        for folder in sorted(set(folders)):
            fsync_dir(folder)
