"""The fault seam's reach into the segment store (store/segments/): the calls
stress_lib/faults.py does not patch because they take a descriptor, not a path.

`installed` (faults.py) fails `open`, `replace`, `unlink`, `mkdir`, a file object's
`read`/`write`/`flush`, `fsync` and SQLite writes. The segment store also writes a
segment through `os.write` on a descriptor from `os.open`, reads parts with
`os.pread` and `io.FileIO`, and makes a batch durable with one ``syncfs`` (through
ctypes, store/segments/durable.py). `segment_faults` makes each of those an I/O point
for descriptors opened on the harness's folders, and defers the reaper's removals
(`segments.reaper`, a background thread) until the operation ended, so the count of
calls does not depend on when that thread runs (the removals still happen, after the
operation, as they would on a loaded machine).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stress_lib.faults import FaultyFile, Injector
from webmodels.store.segments import durable, reaper, segment_store


@contextmanager
def segment_faults(injector: Injector, roots: list[Path]) -> Iterator[list[Path]]:
    """Install inside `faults.installed`; yields the removals deferred from the reaper."""
    prefixes = tuple(str(r) for r in roots)
    ours: set[int] = set()
    deferred: list[Path] = []
    real_open, real_write, real_pread, real_close = os.open, os.write, os.pread, os.close
    real_fileio, real_syncfs = io.FileIO, durable._SYNCFS
    real_remove_later = segment_store.remove_later

    def is_ours(path: Any) -> bool:
        return isinstance(path, str | Path) and str(path).startswith(prefixes)

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)  # (the path seam counted it)
        if is_ours(path):
            ours.add(fd)
        return fd

    def write(fd: int, data: Any) -> int:
        if fd in ours:
            injector.hit("write segment")
        return real_write(fd, data)

    def pread(fd: int, n: int, offset: int) -> bytes:
        if fd in ours:
            injector.hit("pread segment", can_fill=False)
        return real_pread(fd, n, offset)

    def close(fd: int) -> None:
        ours.discard(fd)
        real_close(fd)

    def fileio(path: Any, *args: Any, **kwargs: Any) -> Any:
        if is_ours(path):
            injector.hit(f"open {Path(path).name}", can_fill=False)
            return FaultyFile(real_fileio(path, *args, **kwargs), injector, Path(path).name)
        return real_fileio(path, *args, **kwargs)

    def syncfs_call(fd: int) -> int:
        injector.hit("syncfs")
        assert real_syncfs is not None
        return real_syncfs(fd)

    patches: dict[tuple[Any, str], Callable[..., Any] | None] = {
        (os, "open"): open_,
        (os, "write"): write,
        (os, "pread"): pread,
        (os, "close"): close,
        (io, "FileIO"): fileio,
        (durable, "_SYNCFS"): syncfs_call if real_syncfs is not None else None,
        (segment_store, "remove_later"): deferred.append,
    }
    saved = {key: getattr(key[0], key[1]) for key in patches}
    try:
        for (module, name), fn in patches.items():
            setattr(module, name, fn)
        yield deferred
    finally:
        for (module, name), fn in saved.items():
            setattr(module, name, fn)
        for path in deferred:
            real_remove_later(path)
        reaper.drain()
