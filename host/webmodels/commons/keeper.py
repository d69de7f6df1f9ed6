"""The commons state kept in the store index: the last good list of each trusted key
and the probe budget.

Both live in the index so every host process and the CLI share them and
a restart keeps them: a page cannot reset its budget by getting the host restarted.
"""

from __future__ import annotations

import time

from webmodels.commons.lists import CommonsList, check_succession, read_list
from webmodels.digest import Digest
from webmodels.store.index import Index


def installed_documents(index: Index) -> dict[str, bytes]:
    """The last good list of each key, by key id, as installed."""
    rows = index.query("SELECT key_id, document FROM commons_lists ORDER BY key_id")
    return {str(r["key_id"]): bytes(r["document"]) for r in rows}


def installed(index: Index) -> list[CommonsList]:
    return [read_list(d) for d in installed_documents(index).values()]


def install(index: Index, new: CommonsList) -> bool:
    """Make `new` the last good list of its key; False when it is installed already.

    Each key has its own list and its own rollback protection: a list is compared only
    with the last one of the same key, so one key's list never replaces another's.
    The check and the write happen in one transaction, so two processes installing
    lists at once cannot step back a version between them.
    """
    with index.write() as db:
        row = db.execute(
            "SELECT document FROM commons_lists WHERE key_id = ?", (new.key_id,)
        ).fetchone()
        last = read_list(bytes(row["document"])) if row is not None else None
        check_succession(new, last)
        if last is not None and last.payload == new.payload:
            return False
        db.execute(
            "INSERT OR REPLACE INTO commons_lists (key_id, version, document, installed_at) "
            "VALUES (?, ?, ?, ?)",
            (new.key_id, new.version, new.document, time.time()),
        )
        return True


def remove(index: Index, key_id: str) -> bool:
    """Forget the list of `key_id` (its trust is the config's)."""
    with index.write() as db:
        return db.execute("DELETE FROM commons_lists WHERE key_id = ?", (key_id,)).rowcount > 0


def charge(
    index: Index, *, top_site: str, digest: Digest, limit: int, window_s: float, now: float
) -> bool:
    """Charge one probe of a common model to `top_site`; False when over budget.

    The budget counts DISTINCT models within the sliding window (docs/design.md#privacy): asking
    again about a model already charged costs nothing, the (limit+1)-th new one is
    refused. A refused probe is not recorded, so it never extends the window.
    """
    with index.write() as db:
        db.execute(
            "DELETE FROM probe_charges WHERE top_site = ? AND charged_at <= ?",
            (top_site, now - window_s),
        )
        seen = db.execute(
            "SELECT 1 FROM probe_charges WHERE top_site = ? AND sha256 = ?",
            (top_site, digest.hex),
        ).fetchone()
        if seen is not None:
            return True
        (used,) = db.execute(
            "SELECT COUNT(*) FROM probe_charges WHERE top_site = ?", (top_site,)
        ).fetchone()
        if used >= limit:
            return False
        db.execute(
            "INSERT INTO probe_charges (top_site, sha256, charged_at) VALUES (?, ?, ?)",
            (top_site, digest.hex, now),
        )
        return True


def charged(index: Index, *, top_site: str, window_s: float, now: float) -> int:
    rows = index.query(
        "SELECT COUNT(*) FROM probe_charges WHERE top_site = ? AND charged_at > ?",
        (top_site, now - window_s),
    )
    return int(rows[0][0])
