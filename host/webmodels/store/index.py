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

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 15_000

# Append-only: migration N takes the schema from version N to N+1. Never edit one
# that has shipped; add another.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE objects (            -- every file known by hash, stored or pre-installed
        sha256      TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        format      TEXT NOT NULL,
        metadata    TEXT NOT NULL,    -- JSON of metadata.ModelMetadata
        name        TEXT,
        version     TEXT,
        created_at  REAL NOT NULL
    );
    CREATE TABLE blobs (              -- a copy under blobs/sha256/
        sha256      TEXT PRIMARY KEY REFERENCES objects(sha256),
        origin      TEXT NOT NULL,    -- imported | downloaded | derived
        state       TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'quarantined')),
        stored_at   REAL NOT NULL,
        verified_at REAL
    );
    CREATE TABLE preinstalled (       -- files indexed in place, never copied
        path        TEXT PRIMARY KEY,
        folder      TEXT NOT NULL,
        sha256      TEXT NOT NULL REFERENCES objects(sha256),
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        name        TEXT,
        version     TEXT,
        state       TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'quarantined')),
        indexed_at  REAL NOT NULL
    );
    CREATE INDEX preinstalled_sha256 ON preinstalled(sha256);
    CREATE TABLE refs (               -- what keeps a blob alive: imports, pins, sites
        sha256      TEXT NOT NULL REFERENCES objects(sha256),
        kind        TEXT NOT NULL,    -- import | pin | site
        key         TEXT NOT NULL,    -- source path, '' for a pin, partition key
        created_at  REAL NOT NULL,
        used_at     REAL,
        PRIMARY KEY (sha256, kind, key)
    );
    CREATE INDEX refs_kind_key ON refs(kind, key);
    """,
    """
    CREATE TABLE jobs (               -- downloads, owned by the host (fetch/jobs.py)
        id            TEXT PRIMARY KEY,
        sha256        TEXT NOT NULL,
        urls          TEXT NOT NULL,  -- JSON list, mirrors in order
        size          INTEGER,        -- declared size, checked against Content-Length
        state         TEXT NOT NULL
                      CHECK (state IN ('active', 'done', 'failed', 'cancelled')),
        background    INTEGER NOT NULL DEFAULT 0,
        loaded        INTEGER NOT NULL DEFAULT 0,
        total         INTEGER,
        lease_owner   TEXT,           -- host:pid:token of the process transferring
        lease_expires REAL NOT NULL DEFAULT 0,
        error         TEXT,           -- JSON {code, message, details}
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL
    );
    CREATE UNIQUE INDEX jobs_one_active ON jobs(sha256) WHERE state = 'active';
    CREATE TABLE job_waiters (        -- who asked: a job with none stops (unless background)
        job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        waiter     TEXT NOT NULL,     -- <lease owner>/<request id>
        partition  TEXT,              -- partition key; NULL for the CLI
        created_at REAL NOT NULL,
        PRIMARY KEY (job_id, waiter)
    );
    """,
    """
    CREATE TABLE derived (            -- forms the host made of a model: the compile cache
        key         TEXT PRIMARY KEY, -- SHA-256 of the key parts (runtime/compile_cache.py)
        source      TEXT NOT NULL,    -- the model's sha256
        transform   TEXT NOT NULL,    -- ort-optimized | ort-ep-context
        scope       TEXT NOT NULL DEFAULT '',  -- '' shared; a partition key when per site
        graph       TEXT,             -- blob of the graph; NULL when compiling failed
        weights     TEXT,             -- blob of its external initializers, if any
        details     TEXT NOT NULL,    -- JSON of the key parts (runtime, provider, level, cpu)
        error       TEXT,             -- why compiling failed
        created_at  REAL NOT NULL,
        used_at     REAL
    );
    CREATE INDEX derived_source ON derived(source);
    CREATE TRIGGER derived_blob_gone AFTER DELETE ON blobs
    WHEN NOT EXISTS (SELECT 1 FROM preinstalled WHERE sha256 = OLD.sha256)
    BEGIN
        DELETE FROM refs WHERE kind = 'derived' AND key = OLD.sha256;
        DELETE FROM derived
        WHERE source = OLD.sha256 OR graph = OLD.sha256 OR weights = OLD.sha256;
    END;
    CREATE TRIGGER derived_preinstalled_gone AFTER DELETE ON preinstalled
    WHEN NOT EXISTS (SELECT 1 FROM preinstalled WHERE sha256 = OLD.sha256)
    AND NOT EXISTS (SELECT 1 FROM blobs WHERE sha256 = OLD.sha256 AND state = 'ok')
    BEGIN
        DELETE FROM refs WHERE kind = 'derived' AND key = OLD.sha256;
        DELETE FROM derived WHERE source = OLD.sha256;
    END;
    """,
    """
    CREATE TABLE commons (            -- the last good commons list (commons/keeper.py)
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        version      INTEGER NOT NULL,
        document     BLOB NOT NULL,   -- the signed envelope as installed
        installed_at REAL NOT NULL
    );
    CREATE TABLE probe_charges (      -- probe budget: common models a top-level site
        top_site    TEXT NOT NULL,    -- asked about without having obtained them
        sha256      TEXT NOT NULL,
        charged_at  REAL NOT NULL,
        PRIMARY KEY (top_site, sha256)
    );
    """,
    """
    ALTER TABLE jobs ADD COLUMN size_limit INTEGER  -- bytes a gesture-less start may fetch
    """,
    """
    ALTER TABLE jobs ADD COLUMN quota_left INTEGER  -- the requesters' most remaining quota
    """,
    """
    CREATE TABLE settings (           -- the user's choices (popup, CLI): privacy_mode
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE catalogs (           -- configured catalogs, each with its own key
        name         TEXT PRIMARY KEY,
        key          TEXT NOT NULL,   -- the public key that must sign every version
        source       TEXT,            -- file or URL `webmodels update` re-reads
        version      INTEGER NOT NULL,
        document     BLOB NOT NULL,   -- the signed envelope last accepted
        installed_at REAL NOT NULL
    );
    CREATE TABLE name_requests (      -- ranges pages asked for: `webmodels update`
        partition  TEXT NOT NULL,     -- fetches newer versions within them
        name       TEXT NOT NULL,
        range      TEXT NOT NULL,
        used_at    REAL NOT NULL,
        PRIMARY KEY (partition, name, range)
    );
    """,
    """
    ALTER TABLE jobs ADD COLUMN origin TEXT  -- the page that chose the URLs (fetch/access.py)
    """,
    """
    ALTER TABLE jobs ADD COLUMN scope TEXT NOT NULL DEFAULT '';  -- '' shared; else a partition
    DROP INDEX jobs_one_active;
    CREATE UNIQUE INDEX jobs_one_active_per_scope ON jobs(sha256, scope) WHERE state = 'active';
    """,
    """
    CREATE TABLE commons_lists (      -- the last good commons list of each trusted key
        key_id       TEXT PRIMARY KEY, -- the key that signed it (commons/keeper.py)
        version      INTEGER NOT NULL,
        document     BLOB NOT NULL,   -- the signed envelope as installed
        installed_at REAL NOT NULL
    );
    INSERT INTO commons_lists (key_id, version, document, installed_at)
        SELECT json_extract(CAST(document AS TEXT), '$.key_id'), version, document, installed_at
        FROM commons WHERE json_type(CAST(document AS TEXT), '$.key_id') = 'text';
    -- `commons` stays for hosts of the previous version still running; nothing reads it.
    """,
    """
    CREATE INDEX IF NOT EXISTS objects_by_label  -- pages of manage.list (store/listing.py)
        ON objects(COALESCE(name, ''), COALESCE(version, ''), sha256);
    CREATE INDEX IF NOT EXISTS jobs_by_creation ON jobs(created_at, id);  -- manage.jobs pages
    """,
    """
    CREATE TABLE manifests (          -- models made of several files (store/manifests.py)
        sha256      TEXT PRIMARY KEY, -- SHA-256 of the canonical JSON (manifests/values.py)
        document    TEXT NOT NULL,    -- that canonical JSON
        name        TEXT,
        version     TEXT,
        created_at  REAL NOT NULL
    );
    CREATE TABLE manifest_entries (   -- keeps its files' blobs alive in gc
        manifest    TEXT NOT NULL REFERENCES manifests(sha256) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        role        TEXT NOT NULL,
        PRIMARY KEY (manifest, path)
    );
    CREATE INDEX manifest_entries_sha256 ON manifest_entries(sha256);
    """,
    # representations: forms the host derived of a model (store/representations.py)
    """
    CREATE TABLE representations (
        source      TEXT NOT NULL,    -- SHA-256 of the model it was derived from
        recipe      TEXT NOT NULL,    -- canonical JSON (representations/recipes.py)
        scope       TEXT NOT NULL,    -- '' shared (a common model, the CLI); else a partition
        sha256      TEXT NOT NULL,    -- the form's bytes, an ordinary blob
        tools       TEXT NOT NULL,    -- JSON: the versions of the tools that made it
        max_error   REAL NOT NULL,    -- the numerical check's largest relative error
        tolerance   REAL NOT NULL,    -- what it had to stay under
        created_at  REAL NOT NULL,
        PRIMARY KEY (source, recipe, scope)
    );
    CREATE INDEX representations_sha256 ON representations(sha256);
    CREATE TRIGGER representations_form_gone AFTER DELETE ON blobs
    BEGIN
        DELETE FROM representations WHERE sha256 = OLD.sha256;
    END;
    """,
    # preinstalled_labels: releases before this one copied a pre-installed folder's
    # name and version onto the stored object, where they outlived the folder: `ls`
    # showed a name that `resolve` did not know. The folder's label lives in the
    # `preinstalled` table only (store/preinstalled_index.py); what is removed here is
    # kept in `label_cleanups` for `webmodels doctor`.
    """
    CREATE TABLE label_cleanups (     -- labels a migration removed (webmodels doctor)
        sha256      TEXT NOT NULL,
        name        TEXT,
        version     TEXT,
        reason      TEXT NOT NULL,    -- preinstalled: copied from a models.json entry
        cleaned_at  REAL NOT NULL
    );
    INSERT INTO label_cleanups (sha256, name, version, reason, cleaned_at)
        SELECT o.sha256, o.name, o.version, 'preinstalled',
               (julianday('now') - 2440587.5) * 86400.0
        FROM objects o
        WHERE o.name IS NOT NULL AND EXISTS (
            SELECT 1 FROM preinstalled p
            WHERE p.sha256 = o.sha256 AND p.name = o.name AND p.version IS o.version);
    UPDATE objects SET name = NULL, version = NULL
        WHERE sha256 IN (SELECT sha256 FROM label_cleanups WHERE reason = 'preinstalled');
    """,
    # seg15: files kept as segments (store/segmented.py, docs/segments.md). A blob row
    # with a recipe reads from its segments; one without reads its whole file.
    """
    CREATE TABLE IF NOT EXISTS recipes ( -- a stored file as segments: recipe-v1 bytes
        sha256      TEXT PRIMARY KEY REFERENCES blobs(sha256),
        recipe      BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS segment_refs ( -- how many recipes name each segment
        segment     TEXT PRIMARY KEY,  -- 64 hex
        size        INTEGER NOT NULL,
        refs        INTEGER NOT NULL CHECK (refs >= 0)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


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
