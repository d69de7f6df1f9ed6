"""Making a batch of new files and renames durable with as few flushes as possible.

An fsync per segment file and per folder cost one journal commit each: hundreds per
model, where importing a whole file costs one. On Linux, ``syncfs`` flushes the whole
file system the store lives on in one call (one journal commit for the batch; Python's
``os`` has no binding, so it is called through ``ctypes``). Elsewhere, or where the
call is refused, each file (or folder) is fsynced in turn, after all were written, so
the kernel has had time to write most of them back already.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

from webmodels.store.blobs import fsync_dir
from webmodels.store.segments.packs import libc_call

_SYNCFS = libc_call("syncfs", ctypes.c_int)


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
