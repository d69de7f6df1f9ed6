"""The user's own labels of stored models (``publisher/model`` and version, as
`webmodels ls` shows them), changed only when the user asks (`import --rename`).
Resolution by name reads the catalogs, never these labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store.records import ModelRecord

if TYPE_CHECKING:
    from webmodels.store.store import Store


def relabel(store: Store, digest: Digest, name: str | None, version: str | None) -> ModelRecord:
    """Give a stored model this label; None keeps that part as it is."""
    with store.index.write() as db:
        changed = db.execute(
            "UPDATE objects SET name = COALESCE(?, name), version = COALESCE(?, version) "
            "WHERE sha256 = ?",
            (name, version, digest.hex),
        ).rowcount
    record = store.get(digest)
    if not changed or record is None:
        raise HostError("not_found", f"no model with SHA-256 {digest.hex}")
    return record
