"""The store's folder under the data folder, and moving a ``store-v1`` folder to ``store-v2``.

``store-v1`` kept every file whole under ``blobs/``. ``store-v2`` is the same folder
plus segments (``segments-v1/``, the ``recipes`` and ``segment_refs`` tables,
``linked/``): a file is either a recipe of segments or, until the background
conversion reaches it (store/convert.py) or where ``[store] segments = false``, a
whole file as before. So a ``store-v1`` folder *is* a ``store-v2`` folder with nothing
converted yet, and the migration is:

1. one ``rename(store-v1, store-v2)`` of the folder — atomic: a process killed at any
   point finds either name, never half of each;
2. the host's background conversion, one file at a time, resumable and crash-safe
   (store/convert.py); every file stays readable throughout, from its whole file until
   its recipe commits.

The rename waits until no other process has the old store open: a host of the
previous version still running (the browser started it before the upgrade) keeps
paths under ``store-v1``, and pulling the folder away from it would make its reads
fail. SQLite says whether a database is open: in WAL mode every connection holds a
shared POSIX lock on one byte of the ``-shm`` file for as long as it is open (the
"dead-man switch", byte 128; SQLite's os_unix.c). We take that byte exclusively for
the time of the rename — which also keeps a new connection from opening the old store
meanwhile — and leave the store where it is while it is taken (`current_dir` keeps
answering ``store-v1`` then; the next start tries again). Where POSIX locks do not
exist the rename is tried and, if refused, tried again at the next start.

A version of webmodels from before ``store-v2`` that starts afterwards finds no
``store-v1`` and makes a new, empty one: it never sees (or collects) files it cannot
read. `Config.store_dir` prefers ``store-v2`` whenever both exist.

`settle` runs before this process opens the store (`Store.open`): closing the file
descriptor it locks with drops every POSIX lock this process holds on the ``-shm``
file, SQLite's own included, so it never touches a store this process has open.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from webmodels import STORE_LAYOUT, STORE_LAYOUT_V1

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite3"
_SHM_DMS_BYTE = 128  # SQLite's WAL-index "dead-man switch" byte (UNIX_SHM_DMS)
_kept: set[Path] = set()  # store-v1 folders this process opened in place


def settle(home: Path) -> Path:
    """Move ``store-v1`` to ``store-v2`` where nothing holds it open; the folder to open."""
    v1, v2 = home / STORE_LAYOUT_V1, home / STORE_LAYOUT
    if v2.exists() or not v1.is_dir():
        return v2
    if v1 in _kept:  # this process opened it: never lock (and unlock) its files again
        return v1
    with _unused(v1 / INDEX_FILE) as free:
        if not free:
            log.info("store-v1 is open in another process: kept until it closes")
            _kept.add(v1)
            return v1
        try:
            os.rename(v1, v2)
        except OSError as exc:  # e.g. a file open on Windows; v1 still works
            log.warning("could not move %s to %s: %s", v1, v2, exc)
            _kept.add(v1)
            return v1
    _sync_dir(home)
    log.info("moved the store to %s (store-v2); whole files convert in the background", v2)
    return v2


@contextlib.contextmanager
def _unused(index: Path) -> Iterator[bool]:
    """True while no other process has the SQLite database ``index`` open (held for
    the ``with`` block so none opens it meanwhile)."""
    shm = index.with_name(index.name + "-shm")
    try:
        import fcntl
    except ImportError:  # no POSIX locks: the rename itself is the test
        yield True
        return
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        yield True  # the last connection to close removes it: none is open
        return
    except OSError as exc:
        log.warning("cannot check whether %s is in use: %s", index, exc)
        yield False
        return
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE, os.SEEK_SET)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        os.close(fd)  # drops the lock


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
