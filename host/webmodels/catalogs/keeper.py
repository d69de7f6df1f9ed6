"""Catalogs kept in the store index (migration 8), so every host process and the CLI
see the same ones and a restart keeps them; and the ranges pages asked for."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from webmodels.catalogs.documents import Catalog, check_succession, read_catalog, verify_catalog
from webmodels.errors import HostError
from webmodels.signing import parse_public_key, public_key_text
from webmodels.store.index import Index

MAX_CATALOGS = 64


@dataclass(frozen=True, slots=True)
class Installed:
    catalog: Catalog
    key: str  # base64 public key
    source: str | None
    installed_at: float


@dataclass(frozen=True, slots=True)
class NameRequest:
    partition: str
    name: str
    range: str
    used_at: float


def add(
    index: Index, document: bytes, *, key: str, source: str | None, now: datetime | None = None
) -> tuple[Catalog, bool]:
    """Verify `document` with `key` and install it; (catalog, changed).

    A catalog already configured keeps its key: another key for the same name is
    refused (remove it first), so a second publisher cannot take over its names. The
    rollback check and the write share one transaction.
    """
    public = parse_public_key(key, what="a catalog key")
    catalog = verify_catalog(document, public, now=now or datetime.now(UTC))
    key_text = public_key_text(public)
    with index.write() as db:
        row = db.execute("SELECT * FROM catalogs WHERE name = ?", (catalog.name,)).fetchone()
        if row is not None and row["key"] != key_text:
            raise HostError(
                "bad_request",
                f"catalog {catalog.name} is configured with another key; "
                f"run `webmodels catalog rm {catalog.name}` first to trust a new one",
            )
        last = read_catalog(bytes(row["document"])) if row is not None else None
        if row is None:
            (count,) = db.execute("SELECT COUNT(*) FROM catalogs").fetchone()
            if count >= MAX_CATALOGS:
                raise HostError("bad_request", f"at most {MAX_CATALOGS} catalogs")
        check_succession(catalog, last)
        changed = last is None or last.payload != catalog.payload
        db.execute(
            "INSERT OR REPLACE INTO catalogs (name, key, source, version, document, "
            "installed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                catalog.name,
                key_text,
                source if source is not None else (row["source"] if row else None),
                catalog.version,
                catalog.document,
                time.time() if changed or row is None else row["installed_at"],
            ),
        )
    return catalog, changed


def remove(index: Index, name: str) -> bool:
    with index.write() as db:
        return db.execute("DELETE FROM catalogs WHERE name = ?", (name,)).rowcount == 1


def installed(index: Index) -> list[Installed]:
    rows = index.query("SELECT * FROM catalogs ORDER BY name")
    return [
        Installed(read_catalog(bytes(r["document"])), r["key"], r["source"], r["installed_at"])
        for r in rows
    ]


def in_force(index: Index, now: datetime) -> list[Catalog]:
    """The catalogs whose entries resolve names now (expired ones do not)."""
    return [i.catalog for i in installed(index) if not i.catalog.expired(now)]


# Name ranges kept per partition for `webmodels update` (PRIVACY.md, hole 14).
MAX_NAME_REQUESTS = 32


def record_request(index: Index, *, partition: str, name: str, range_text: str) -> None:
    """Remember that a partition asked for `name` within `range_text` (for updates):
    the latest `MAX_NAME_REQUESTS` per partition, the oldest dropped (a page sending a
    new range string each time must not grow the index without end)."""
    with index.write() as db:
        db.execute(
            "INSERT INTO name_requests (partition, name, range, used_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(partition, name, range) DO UPDATE SET used_at = excluded.used_at",
            (partition, name, range_text, time.time()),
        )
        db.execute(
            "DELETE FROM name_requests WHERE partition = ? AND rowid NOT IN (SELECT rowid "
            "FROM name_requests WHERE partition = ? ORDER BY used_at DESC, rowid DESC LIMIT ?)",
            (partition, partition, MAX_NAME_REQUESTS),
        )


def requests(index: Index) -> list[NameRequest]:
    rows = index.query("SELECT * FROM name_requests ORDER BY name, partition, range")
    return [NameRequest(r["partition"], r["name"], r["range"], r["used_at"]) for r in rows]
