"""What a download job is: its options, a request to join it, and its row in the index."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from webmodels.digest import Digest
from webmodels.fetch.transfer import TransferOptions


@dataclass(frozen=True, slots=True)
class JobOptions:
    # Longer than the index's busy timeout (15 s): a heartbeat that waits out a busy
    # index and then fails stops its transfer before the lease can pass to another.
    lease_s: float = 30.0
    heartbeat_s: float = 0.25  # progress and lease renewal in the index
    poll_s: float = 0.1  # followers read the row this often
    max_transfers: int = 4  # concurrent transfers run by one process
    keep_finished_s: float = 24 * 3600
    # From publishing verified bytes to answering the requesters takes at least this
    # long, so that whether another site already held the model (an index row updated
    # rather than inserted, one more holder in the record) cannot be timed by a page.
    # The work padded is small (publish, one index transaction, the record): ~1-2 ms.
    settle_floor_s: float = 0.010
    total_quota: int | None = None  # Config.quota_total_bytes, checked before publishing
    # Config.local_network_origins: pages whose chosen URLs may reach local addresses.
    local_network_origins: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()  # Config.mirrors: tried first by digest (fetch/mirrors.py)
    transfer: TransferOptions = field(default_factory=TransferOptions)


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    digest: Digest
    urls: tuple[str, ...]
    waiter: str  # unique among this process's requesters ("" for nobody: a prefetch)
    partition: str | None = None  # the requester's partition key; None for the CLI
    size: int | None = None
    background: bool = False  # a prefetch: goes on when nobody waits
    # The most bytes this requester may start downloading: set for a page without user
    # activation; None (no limit) once any requester of the job had a gesture.
    size_limit: int | None = None
    quota_left: int | None = None  # the requester's remaining quota; None: no quota
    # The page's origin when the page chose `urls`: the transfer then fetches only what
    # that page could read itself (fetch/access.py). None: catalog URLs, the CLI.
    origin: str | None = None
    # Who may share the transfer: "" for trusted callers and common models; else the
    # requester's partition key, so no site ever joins (or learns of) another's job.
    scope: str = ""


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    digest: Digest
    urls: tuple[str, ...]
    size: int | None
    state: str  # active | done | failed | cancelled
    background: bool
    loaded: int
    total: int | None
    lease_owner: str | None
    lease_expires: float
    error: dict[str, Any] | None
    created_at: float
    updated_at: float
    size_limit: int | None = None
    quota_left: int | None = None
    origin: str | None = None  # as DownloadRequest.origin
    scope: str = ""

    @classmethod
    def from_row(cls, row: Any) -> JobRow:
        return cls(
            id=row["id"],
            digest=Digest(row["sha256"]),
            urls=tuple(json.loads(row["urls"])),
            size=row["size"],
            state=row["state"],
            background=bool(row["background"]),
            loaded=row["loaded"],
            total=row["total"],
            lease_owner=row["lease_owner"],
            lease_expires=row["lease_expires"],
            error=json.loads(row["error"]) if row["error"] else None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            size_limit=row["size_limit"],
            quota_left=row["quota_left"],
            origin=row["origin"],
            scope=row["scope"],
        )

    def to_json(self, *, waiters: int = 0) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.digest.hex,
            "urls": list(self.urls),
            "state": self.state,
            "background": self.background,
            "loaded": self.loaded,
            "total": self.total,
            "waiters": waiters,
            "running": self.state == "active" and self.lease_expires > time.time(),
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
