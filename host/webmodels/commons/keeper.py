"""The commons state kept in the store index: the last good list and the probe budget.

Both live in the index (migration 4) so every host process and the CLI share them and
a restart keeps them: a page cannot reset its budget by getting the host restarted.
"""

from __future__ import annotations

import time

from webmodels.commons.lists import CommonsList, check_succession, read_list
from webmodels.digest import Digest
from webmodels.store.index import Index


def installed_document(index: Index) -> bytes | None:
    rows = index.query("SELECT document FROM commons WHERE id = 1")
    return bytes(rows[0]["document"]) if rows else None


def installed(index: Index) -> CommonsList | None:
    document = installed_document(index)
    return read_list(document) if document is not None else None


def install(index: Index, new: CommonsList) -> bool:
    """Make `new` the last good list; False when it is the one installed already.

    The rollback check and the write happen in one transaction, so two processes
    installing lists at once cannot step back a version between them.
    """
    with index.write() as db:
        row = db.execute("SELECT document FROM commons WHERE id = 1").fetchone()
        last = read_list(bytes(row["document"])) if row is not None else None
        check_succession(new, last)
        if last is not None and last.payload == new.payload:
            return False
        db.execute(
            "INSERT OR REPLACE INTO commons (id, version, document, installed_at) "
            "VALUES (1, ?, ?, ?)",
            (new.version, new.document, time.time()),
        )
        return True


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
