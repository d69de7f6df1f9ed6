"""A Python-level fault injector: counts the store's I/O calls and fails the Nth.

Why a seam in Python rather than libfiu's LD_PRELOAD (`fiu-run`): the preload must be
in place when a process starts, so trying every N would cost one process start per
injection (hundreds per operation), far over the CI budget; the seam fails call N in
the running process in microseconds, names the call it failed, and needs no system
package. What it cannot reach is I/O inside C libraries other than through the calls
patched here; SQLite's own reads and writes are reached at statement level instead
(each write statement and each COMMIT can fail as SQLite reports a failed write).

Only paths under the harness's folders count (files elsewhere, such as the test
runner's, pass through), and only while `installed` is active.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_WRITES = (
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "COMMIT",
    "CREATE",
    "ALTER",
    "DROP",
    "PRAGMA USER_VERSION",
)


@dataclass
class Injector:
    """Fails I/O call number `fail_at` (1-based) with `err`; `persistent`: every later
    call too (a full disk stays full), else only that one (a transient EIO)."""

    fail_at: int
    err: int
    persistent: bool
    calls: int = 0
    fired: list[str] = field(default_factory=list)

    def hit(self, site: str, *, can_fill: bool = True) -> None:
        """An I/O call; `can_fill`: it can meet a full disk (unlink, chmod and reads
        cannot, so a full disk does not fail them and they do not count then)."""
        if self.err == errno.ENOSPC and not can_fill:
            return
        self.calls += 1
        if self.calls == self.fail_at or (self.persistent and self.calls > self.fail_at):
            self.fired.append(site)
            raise OSError(self.err, os.strerror(self.err))

    def hit_sql(self, statement: str) -> None:
        try:
            self.hit("sqlite " + statement.split(None, 1)[0].upper())
        except OSError as exc:
            full = exc.errno == errno.ENOSPC
            error = sqlite3.OperationalError(
                "database or disk is full" if full else "disk I/O error"
            )
            error.sqlite_errorcode = sqlite3.SQLITE_FULL if full else sqlite3.SQLITE_IOERR  # type: ignore[attr-defined]
            raise error from None


class FaultyFile:
    """A file object whose reads, writes and flushes are I/O points."""

    def __init__(self, raw: Any, injector: Injector, name: str) -> None:
        self._raw, self._injector, self._name = raw, injector, name

    def read(self, *args: Any) -> Any:
        self._injector.hit(f"read {self._name}", can_fill=False)
        return self._raw.read(*args)

    def write(self, data: Any) -> Any:
        self._injector.hit(f"write {self._name}")
        return self._raw.write(data)

    def flush(self) -> None:
        self._injector.hit(f"flush {self._name}")
        self._raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __enter__(self) -> FaultyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)


class FaultyConnection:
    """A SQLite connection whose write statements and commits are I/O points."""

    def __init__(self, raw: sqlite3.Connection, injector: Injector) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_injector", injector)

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        statement = sql.strip().upper()
        if statement.startswith("BEGIN"):
            object.__setattr__(self, "_writing", statement.startswith("BEGIN IMMEDIATE"))
        # A read transaction's COMMIT writes nothing.
        writing = getattr(self, "_writing", False) or not statement.startswith("COMMIT")
        if statement.startswith(_WRITES) and writing:
            self._injector.hit_sql(sql.strip())
        return self._raw.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


@contextmanager
def installed(injector: Injector, roots: list[Path]) -> Iterator[Injector]:
    """Patch the I/O functions the store uses, for paths under `roots`."""
    prefixes = tuple(str(r) for r in roots)

    def ours(path: Any) -> bool:
        return isinstance(path, str | Path) and str(path).startswith(prefixes)

    def guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        can_fill = name not in ("unlink", "chmod")

        def patched(path: Any, *args: Any, **kwargs: Any) -> Any:
            if ours(path):
                injector.hit(f"{name} {Path(path).name}", can_fill=can_fill)
            return real(path, *args, **kwargs)

        return patched

    real_fdopen, real_io_open, real_fsync = os.fdopen, io.open, os.fsync
    real_connect = sqlite3.connect

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        return FaultyFile(real_fdopen(fd, *args, **kwargs), injector, f"fd{fd}")

    def io_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if not ours(path):
            return real_io_open(path, *args, **kwargs)
        mode = str(args[0] if args else kwargs.get("mode", "r"))
        injector.hit(f"open {Path(path).name}", can_fill=any(c in mode for c in "wax+"))
        return FaultyFile(real_io_open(path, *args, **kwargs), injector, Path(path).name)

    def fsync(fd: int) -> None:
        injector.hit("fsync")
        real_fsync(fd)

    def connect(path: Any, *args: Any, **kwargs: Any) -> Any:
        db = real_connect(path, *args, **kwargs)
        return FaultyConnection(db, injector) if ours(path) else db

    patches: dict[str, Callable[..., Any]] = {
        name: guard(name, getattr(os, name))
        for name in ("open", "replace", "rename", "link", "unlink", "chmod", "mkdir")
    }
    saved = {name: getattr(os, name) for name in patches}
    try:
        for name, fn in patches.items():
            setattr(os, name, fn)
        os.fdopen, io.open, os.fsync = fdopen, io_open, fsync  # type: ignore[assignment]
        sqlite3.connect = connect  # type: ignore[assignment]
        yield injector
    finally:
        for name, fn in saved.items():
            setattr(os, name, fn)
        os.fdopen, io.open, os.fsync = real_fdopen, real_io_open, real_fsync  # type: ignore[assignment]
        sqlite3.connect = real_connect


def wrap_index(index: Any, injector: Injector) -> Callable[[], None]:
    """Make an open `Index`'s statements I/O points; returns the undo."""
    raw = index._db
    index._db = FaultyConnection(raw, injector)

    def undo() -> None:
        index._db = raw

    return undo
