"""The SQLite index of the store: WAL, a busy timeout, ``BEGIN IMMEDIATE`` for writes,
and schema migrations through ``PRAGMA user_version``.

Several host processes (browsers, profiles) and the CLI open one index at once. WAL
lets readers run beside one writer; ``BEGIN IMMEDIATE`` takes the write lock up front
so two writers never deadlock upgrading a read transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from webmodels.errors import HostError
from webmodels.permissions import create_private_file
from webmodels.store import schema

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 15_000

# Read through this module's names (a test may stand in an older schema).
MIGRATIONS, SCHEMA_VERSION = schema.MIGRATIONS, schema.SCHEMA_VERSION


class Index:
    """One connection shared by the threads of a process, guarded by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            # 0600 before SQLite sees it: its -wal and -shm files take this file's mode.
            create_private_file(path)
            self._db = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (sqlite3.Error, OSError) as exc:
            raise HostError("internal", f"cannot open the store index {path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(self._db)
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        # Deleted rows (a forgotten site) are overwritten, not left in free pages.
        self._db.execute("PRAGMA secure_delete = ON")
        self.migrate()

    def checkpoint(self) -> None:
        """Copies the write-ahead log into the database and empties it, so rows deleted
        (with `secure_delete`) leave no old copy in the log; skipped while readers of
        other processes need it (they checkpoint on their own later)."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.info("checkpoint skipped: %s", exc)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def migrate(self) -> None:
        with self.write() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > SCHEMA_VERSION:
                raise HostError(
                    "internal",
                    f"the store index {self.path} has schema {current}, newer than this "
                    f"webmodels ({SCHEMA_VERSION}); upgrade webmodels",
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[version]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")

    @property
    def schema_version(self) -> int:
        return int(self.query("PRAGMA user_version")[0][0])

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, else roll back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                # A failed COMMIT (a full disk) must not leave the connection inside a
                # transaction; SQLite may already have rolled it back itself.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and _disk_full(exc):
                    raise HostError("disk_full", f"the disk holding {self.path} is full") from exc
                if isinstance(exc, sqlite3.Error) and _disk_failed(exc):
                    raise HostError(
                        "internal", f"the store index {self.path} could not be written: {exc}"
                    ) from exc
                raise

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """One read statement (autocommit), all rows."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several statements see one consistent state."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL, waiting for a process that is creating the same index.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database
    is locked" at once instead of waiting through the busy timeout, so two processes
    opening a new store together would otherwise fail.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise HostError("internal", f"cannot open the store index: {exc}") from exc
            time.sleep(0.02)


def _disk_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _disk_failed(exc: sqlite3.Error) -> bool:
    # SQLITE_IOERR and its extended codes (a failed read, write, fsync or truncate).
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_IOERR


def _statements(script: str) -> list[str]:
    # executescript() would commit the migration's transaction half-way; split instead,
    # keeping a trigger's BEGIN … END body (with its own semicolons) in one statement.
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    statements, pending = [], ""
    for piece in code.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().rstrip(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().rstrip(";").strip())
    return statements
