"""The store index's schema: the migrations that build it, one per version.

`Index.migrate` (store/index.py) applies those a database has not seen yet, each in
its own transaction, and records the count in ``PRAGMA user_version``.
"""

from __future__ import annotations

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
    # packs15: small segments written into one pack file per import, 4 KiB-aligned
    # (store/segments/packs.py). A row says where its segment's bytes are.
    """
    ALTER TABLE segment_refs ADD COLUMN pack TEXT;  -- pack file name; NULL: its own file
    ALTER TABLE segment_refs ADD COLUMN pack_offset INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX segment_refs_pack ON segment_refs(pack) WHERE pack IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
