"""Listing the store's models a page at a time: keyset scans in a stable order.

Two orders, each walking an index: by label (name, version, then SHA-256: a model's
files side by side, for the user's views) and by SHA-256 alone (for pages: a page's
cursor then holds nothing but a digest it was shown, never a label the user or another
site put on the stored copy). The rows a scan yields are those `Store.list_models`
holds, built in batches, so 10,000 files never become one reply or one big read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from webmodels.paging import Key
from webmodels.store.index import Index
from webmodels.store.pack_compaction import reclaimable_bytes
from webmodels.store.quarantine import quarantined_files
from webmodels.store.records import ModelRecord, StoreStats, derived_only, record_from_rows
from webmodels.store.segmented import physical_adjustment

if TYPE_CHECKING:
    from webmodels.store.store import Store

BATCH = 200


class Order(Enum):
    LABEL = ("COALESCE(o.name, '')", "COALESCE(o.version, '')", "o.sha256")
    SHA256 = ("o.sha256",)


@dataclass(frozen=True, slots=True)
class Scan:
    """Which models a scan yields. `query`: lower-case text a SHA-256 starts with or a
    name contains. `servable`: leave out quarantined copies. `seen_by`: (partition
    key, top-level site) to narrow to its own, shared and pre-installed models; the
    caller still decides each one with `policy.can_see`."""

    order: Order
    query: str = ""
    servable: bool = False
    seen_by: tuple[str, str] | None = None


# Held (a copy, even quarantined, or an intact pre-installed file) and not only a
# compiled form of another model: the rows `Store.list_models` turns into records.
_LISTED = (
    "(EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = o.sha256 {blob_state}) OR {pre_ok})"
    " AND NOT (EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = o.sha256"
    " AND b.origin = 'derived') AND NOT {pre_ok} AND NOT EXISTS (SELECT 1 FROM refs r"
    " WHERE r.sha256 = o.sha256 AND r.kind != 'derived'))"
)
_PRE_OK = "EXISTS (SELECT 1 FROM preinstalled p WHERE p.sha256 = o.sha256 AND p.state = 'ok')"
_SEEN = (
    f"({_PRE_OK} OR EXISTS (SELECT 1 FROM refs r WHERE r.sha256 = o.sha256 AND"
    " ((r.kind = 'site' AND r.key = ?) OR (r.kind = 'share' AND r.key = ?))))"
)


def scan(index: Index, what: Scan, after: Key | None) -> Iterator[tuple[Key, ModelRecord]]:
    """(sort key, record) in order, starting after the key `after`."""
    while True:
        with index.snapshot() as db:
            rows = db.execute(*_select(what, after)).fetchall()
            found = _records(db, rows)
        width = len(what.order.value)
        for row in rows:
            key: Key = tuple(row[f"k{i}"] for i in range(width))
            record = found.get(row["sha256"])
            if record is not None:
                yield key, record
        if len(rows) < BATCH:
            return
        after = tuple(rows[-1][f"k{i}"] for i in range(width))


def _select(what: Scan, after: Key | None) -> tuple[str, tuple[object, ...]]:
    columns = what.order.value
    blob_state = "AND b.state = 'ok'" if what.servable else ""
    where = [_LISTED.format(blob_state=blob_state, pre_ok=_PRE_OK)]
    args: list[object] = []
    if after is not None:
        where.append(f"({', '.join(columns)}) > ({', '.join('?' * len(columns))})")
        args.extend(after)
    if what.query:
        where.append("(substr(o.sha256, 1, ?) = ? OR instr(lower(COALESCE(o.name, '')), ?) > 0)")
        args.extend((len(what.query), what.query, what.query))
    if what.seen_by is not None:
        where.append(_SEEN)
        args.extend(what.seen_by)
    keys = ", ".join(f"{c} AS k{i}" for i, c in enumerate(columns))
    sql = (
        f"SELECT o.*, {keys} FROM objects o WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(columns)} LIMIT ?"
    )
    return sql, (*args, BATCH)


def _records(db: sqlite3.Connection, rows: list[sqlite3.Row]) -> dict[str, ModelRecord]:
    """The records of `rows` (objects), built as `Store.list_models` builds them."""
    hexes = [r["sha256"] for r in rows]
    if not hexes:
        return {}
    marks = ", ".join("?" * len(hexes))
    blobs = {
        r["sha256"]: r for r in db.execute(f"SELECT * FROM blobs WHERE sha256 IN ({marks})", hexes)
    }
    pres: dict[str, sqlite3.Row] = {}
    pre_sql = f"SELECT * FROM preinstalled WHERE sha256 IN ({marks}) AND state = 'ok' ORDER BY path"
    for r in db.execute(pre_sql, hexes):
        pres.setdefault(r["sha256"], r)
    refs: dict[str, list[sqlite3.Row]] = {}
    ref_sql = f"SELECT * FROM refs WHERE sha256 IN ({marks}) ORDER BY created_at"
    for r in db.execute(ref_sql, hexes):
        refs.setdefault(r["sha256"], []).append(r)
    found = {}
    for row in rows:
        sha = row["sha256"]
        blob, pre_row, row_refs = blobs.get(sha), pres.get(sha), refs.get(sha, [])
        if not derived_only(blob, pre_row, row_refs):
            found[sha] = record_from_rows(row, blob, pre_row, row_refs)
    return found


_TOTALS = f"""
SELECT COUNT(*) FILTER (WHERE servable), COUNT(*) FILTER (WHERE stored),
       TOTAL(size) FILTER (WHERE stored), COUNT(*) FILTER (WHERE pre),
       TOTAL(size) FILTER (WHERE pre), TOTAL(size * MAX(1, holders)) FILTER (WHERE servable),
       COUNT(*) FILTER (WHERE quarantined), COUNT(*) FILTER (WHERE pinned)
FROM (SELECT o.size,
    EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = o.sha256 AND b.state = 'ok') AS stored,
    {_PRE_OK} AS pre,
    EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = o.sha256 AND b.state = 'ok') OR {_PRE_OK}
        AS servable,
    EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = o.sha256 AND b.state = 'quarantined')
        AND NOT {_PRE_OK} AS quarantined,
    EXISTS (SELECT 1 FROM refs r WHERE r.sha256 = o.sha256 AND r.kind = 'pin') AS pinned,
    (SELECT COUNT(*) FROM refs r WHERE r.sha256 = o.sha256 AND r.kind IN ('import', 'site'))
        + (SELECT COUNT(*) FROM preinstalled p WHERE p.sha256 = o.sha256 AND p.state = 'ok')
        AS holders
  FROM objects o WHERE {_LISTED.format(blob_state="", pre_ok=_PRE_OK)})
"""


@dataclass(frozen=True, slots=True)
class Totals:
    """`Store.stats` figures of the models `scan` lists, counted in one query (a
    record per file would take most of a second at 10,000 files)."""

    models: int
    stored_blobs: int
    physical_bytes: int
    preinstalled_models: int
    preinstalled_bytes: int
    logical_bytes: int  # size times holders (import and site references, pre-installed copies)
    quarantined: int
    pinned: int


def totals(index: Index) -> Totals:
    row = index.query(_TOTALS)[0]
    return Totals(*(int(value or 0) for value in row))


def store_stats(store: Store) -> StoreStats:
    """`Store.stats`: the totals, with files kept as segments counted by their
    segments (each once, however many files name it) rather than their sizes."""
    found = totals(store.index)
    files = store.files
    temp_bytes = sum(p.stat().st_size for p in files.tmp_dir.glob("*") if p.is_file())
    held = list(quarantined_files(files.quarantine_dir))
    return StoreStats(
        models=found.models,
        stored_blobs=found.stored_blobs,
        physical_bytes=max(0, found.physical_bytes + physical_adjustment(store)),
        preinstalled_models=found.preinstalled_models,
        preinstalled_bytes=found.preinstalled_bytes,
        logical_bytes=found.logical_bytes,
        quarantined=found.quarantined,
        pinned=found.pinned,
        temp_bytes=temp_bytes,
        quarantine_files=len(held),
        quarantine_bytes=sum(f.size for f in held),
        stored_bytes=found.physical_bytes,
        reclaimable_bytes=reclaimable_bytes(store.index, store.segmented.store),
    )
