"""What the quotas count (DESIGN §4: over quota the requester gets quota_exceeded and
nothing of another site is evicted): a partition's own holdings, and the whole store."""

from __future__ import annotations

from webmodels.errors import HostError
from webmodels.store.index import Index

_STORED_BYTES = (
    "SELECT COALESCE(SUM(o.size), 0) FROM objects o JOIN blobs b USING (sha256) "
    "WHERE b.state = 'ok'"
)


def partition_usage(index: Index, partition_key: str) -> int:
    """Bytes of stored models a partition holds (its quota counts these)."""
    rows = index.query(
        _STORED_BYTES
        + " AND o.sha256 IN (SELECT sha256 FROM refs WHERE kind = 'site' AND key = ?)",
        (partition_key,),
    )
    return int(rows[0][0])


def total_usage(index: Index) -> int:
    """Bytes of all stored blobs (models and derived files; not pre-installed ones)."""
    return int(index.query(_STORED_BYTES)[0][0])


def check_total_quota(index: Index, limit: int | None, size: int) -> None:
    """`quota_exceeded` when `size` more bytes would pass the store's total quota.
    Counted as new bytes even when they duplicate a blob (else the answer would tell a
    page that another site holds the model), and with no figures in the error."""
    if limit is not None and total_usage(index) + size > limit:
        raise HostError(
            "quota_exceeded",
            "the model store is full: it has reached the total size its user set "
            "(quota_total_bytes); nothing was removed to make room",
        )
