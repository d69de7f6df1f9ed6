"""How much a caller's partition may still store: the quota check every page write,
download and derived form passes before any byte moves (``quota_exceeded`` at once when
it cannot fit). Its own module so that `cos`, `models` and `forms` share it without
importing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.dispatch import Call
from webmodels.store.quotas import PageLimits, RoomQuestion, disk_figures, page_room

if TYPE_CHECKING:
    from webmodels.app import Host


def quota_left(
    host: Host, call: Call, size: int | None, *, digest: Digest | None = None
) -> int | None:
    """What the caller's partition may still store (None: no quota, trusted callers);
    `quota_exceeded` at once when the store is full for pages or a known size does not
    fit. Its own holdings count, and its downloads and uploads in flight (issue 11,
    hole 13: else N at once take N quotas); other sites' holdings only through the
    store-wide state, whatever the size (hole 4). Nothing is ever evicted for room."""
    if call.context.partition is None:
        return None
    key = call.context.partition.key
    config = host.config
    limits = PageLimits(
        per_partition=config.quota_per_partition_bytes,
        total=config.quota_total_bytes,
        keep_free_fraction=config.quota_keep_free_fraction,
    )
    question = RoomQuestion(
        partition_key=key,
        size=size,
        uploads_mine=host.uploads.in_flight(key),
        uploads_all=host.uploads.in_flight(),
        # A request for a hash its partition is already downloading joins that job.
        except_sha256=digest.hex if digest is not None else None,
    )
    return page_room(host.store.index, limits, question, disk_figures(host.store.root))
