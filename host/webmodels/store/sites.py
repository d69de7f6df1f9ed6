"""Forgetting a top-level site: every row and file keyed by it.

What the index keys by a site: `refs` (its partitions' ``site`` references, and the
user's ``share`` with it), `derived` rows of its partitions' compile-cache scope (and
the graph blobs nothing else uses), `representations` rows of its partitions' forms
(their ``site`` references kept the forms), `probe_charges`, `name_requests`, `job_waiters`
and the finished `jobs` only it asked for. After `forget_site` none of them names the
site (tests/privacy/test_clear_site.py greps the whole index and the store for it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.store.derived import DERIVED
from webmodels.store.representations import forget_scope

if TYPE_CHECKING:
    from webmodels.store.store import Store


@dataclass(frozen=True, slots=True)
class Forgotten:
    references_dropped: int
    models: tuple[Digest, ...]  # what its site references kept alive
    compiled: tuple[Digest, ...]  # graph and weights blobs only its scope used


def forget_site(store: Store, top_site: str) -> Forgotten:
    """Drop every row keyed by `top_site` or one of its partitions, in one write
    transaction; the caller then removes what nothing holds any more (gc)."""
    prefix = f"{top_site} "
    mine = "substr({column}, 1, ?) = ?"
    args = (len(prefix), prefix)
    with store.index.write() as db:
        models = _digests(
            db,
            f"SELECT DISTINCT sha256 FROM refs WHERE kind = 'site' AND {mine.format(column='key')}",
            args,
        )
        dropped = db.execute(
            f"DELETE FROM refs WHERE kind = 'site' AND {mine.format(column='key')}", args
        ).rowcount
        dropped += db.execute(
            "DELETE FROM refs WHERE kind = 'share' AND key = ?", (top_site,)
        ).rowcount
        compiled = _forget_compiled(db, mine.format(column="scope"), args)
        forget_scope(db, mine.format(column="scope"), args)  # its derived forms' rows
        db.execute(f"DELETE FROM name_requests WHERE {mine.format(column='partition')}", args)
        db.execute("DELETE FROM probe_charges WHERE top_site = ?", (top_site,))
        _forget_waits(db, mine.format(column="partition"), args)
    return Forgotten(dropped, tuple(models), tuple(compiled))


def _digests(db: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[Digest]:
    return [Digest(r[0]) for r in db.execute(sql, args) if r[0]]


def _forget_compiled(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> list[Digest]:
    """The site's compile-cache rows; their blobs lose the ``derived`` reference that
    kept them once no other row (another scope, the shared one) uses them."""
    blobs = _digests(db, f"SELECT graph FROM derived WHERE {where}", args)
    blobs += _digests(db, f"SELECT weights FROM derived WHERE {where}", args)
    db.execute(f"DELETE FROM derived WHERE {where}", args)
    unused = [d for d in dict.fromkeys(blobs) if not _still_used(db, d)]
    for digest in unused:
        db.execute("DELETE FROM refs WHERE sha256 = ? AND kind = ?", (digest.hex, DERIVED))
    return unused


def _still_used(db: sqlite3.Connection, digest: Digest) -> bool:
    row = db.execute(
        "SELECT 1 FROM derived WHERE graph = ? OR weights = ? LIMIT 1", (digest.hex, digest.hex)
    ).fetchone()
    return row is not None


def _forget_waits(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> None:
    """Its requests of downloads, and the finished jobs only it had asked for (their
    rows hold the URLs it chose). An active job goes on for its other requesters."""
    jobs = [
        r[0] for r in db.execute(f"SELECT DISTINCT job_id FROM job_waiters WHERE {where}", args)
    ]
    db.execute(f"DELETE FROM job_waiters WHERE {where}", args)
    for job_id in jobs:
        db.execute(
            "DELETE FROM jobs WHERE id = ? AND state != 'active' "
            "AND NOT EXISTS (SELECT 1 FROM job_waiters WHERE job_id = ?)",
            (job_id, job_id),
        )
