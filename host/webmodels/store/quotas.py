"""What the quotas count (docs/design.md#privacy: over quota the requester gets quota_exceeded and
nothing of another site is evicted): a partition's own holdings and its transfers in
flight, and a store-wide state that is the same for every page whatever it asks.

Why the store-wide limits ignore the requested size (issue 11, holes 4 and 13): a rule
"refuse when usage + size > ceiling" lets a page bisect sizes with free `cos.write.begin`
calls and learn the free room, then another site's model size to the byte. So what a
page is told depends on its request size only through its own partition's cap (fixed
numbers), and the store-wide state ("full for pages") is one bit, decided without the
size, answered with the very reply a partition over its own quota gets.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from webmodels.errors import HostError
from webmodels.store.index import Index

# One reply for every quota a page can hit (its own, the store's ceiling, the disk's
# keep-free rule), with no figures: figures would tell it what other sites hold.
FULL_MESSAGE = (
    "no room left in the model store for this (a site's quota, or the store's); "
    "nothing was removed to make room: remove models you no longer need"
)

_STORED_BYTES = (
    "SELECT COALESCE(SUM(o.size), 0) FROM objects o JOIN blobs b USING (sha256) "
    "WHERE b.state = 'ok'"
)
# Active downloads: each counts its declared size, else the size the server announced,
# else what it has loaded so far. `?1` excludes one hash (the one a request is about to
# join); `?2` keeps the jobs with a requester in one partition (NULL: every job).
_JOBS_IN_FLIGHT = (
    "SELECT COALESCE(SUM(COALESCE(j.size, j.total, j.loaded)), 0), "
    "COALESCE(SUM(j.loaded), 0) FROM jobs j WHERE j.state = 'active' AND j.sha256 IS NOT ?1 "
    "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM job_waiters w "
    "WHERE w.job_id = j.id AND w.partition = ?2))"
)


def quota_exceeded() -> HostError:
    return HostError("quota_exceeded", FULL_MESSAGE)


@dataclass(frozen=True, slots=True)
class InFlight:
    """Bytes of transfers not yet stored: what they will take, and what they wrote."""

    size: int = 0
    written: int = 0

    def __add__(self, other: InFlight) -> InFlight:
        return InFlight(self.size + other.size, self.written + other.written)

    @property
    def unwritten(self) -> int:
        return max(0, self.size - self.written)


@dataclass(frozen=True, slots=True)
class DiskFigures:
    size: int
    free: int


def disk_figures(path: Path) -> DiskFigures:
    usage = shutil.disk_usage(path)
    return DiskFigures(size=usage.total, free=usage.free)


@dataclass(frozen=True, slots=True)
class PageLimits:
    """The quotas pages are held to (Config: quota_per_partition_bytes,
    quota_total_bytes, quota_keep_free_fraction)."""

    per_partition: int
    total: int | None = None
    keep_free_fraction: float = 0.1

    def partition_cap(self, disk: DiskFigures) -> int:
        """What one partition may hold: its quota, at most the store's ceiling, or
        without one the share of the disk the keep-free rule guards (rounded down to a
        power of two, so that it tells a page no more than the disk's size class). So
        a page admitted while the store is not full cannot fill the disk by itself."""
        if self.total is not None:
            return min(self.per_partition, self.total)
        if self.keep_free_fraction == 0:  # the rule is off
            return self.per_partition
        guarded = int(disk.size * self.keep_free_fraction)
        return min(self.per_partition, 1 << max(0, guarded.bit_length() - 1))

    def store_full(self, *, stored: int, in_flight: InFlight, disk: DiskFigures) -> bool:
        """The store-wide state, the same for every page and every size: with a
        ceiling, whether the store and the transfers in flight reach it; without one,
        whether less than `keep_free_fraction` of the disk's size would stay free once
        the transfers in flight are written."""
        if self.total is not None:
            return stored + in_flight.size >= self.total
        return disk.free - in_flight.unwritten < disk.size * self.keep_free_fraction


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


def jobs_in_flight(
    index: Index, partition_key: str | None = None, *, except_sha256: str | None = None
) -> InFlight:
    """Active downloads with a requester in `partition_key` (None: all of them)."""
    row = index.query(_JOBS_IN_FLIGHT, (except_sha256, partition_key))[0]
    return InFlight(size=int(row[0]), written=int(row[1]))


@dataclass(frozen=True, slots=True)
class RoomQuestion:
    """What a page's download or upload asks for, and what is in flight beside it."""

    partition_key: str
    size: int | None
    uploads_mine: InFlight
    uploads_all: InFlight
    except_sha256: str | None = None


def page_room(
    index: Index,
    limits: PageLimits,
    question: RoomQuestion,
    disk: DiskFigures,
) -> int:
    """What the partition may still store (its cap, less what it holds and what it has
    in flight); `quota_exceeded` when the store is full for pages or a known size does
    not fit. Both answers are the same reply, with no figures."""
    # Every active download counts here, also one of the hash asked for: leaving those
    # out would make the answer depend on whether another site is fetching it.
    everything = jobs_in_flight(index)
    if limits.store_full(
        stored=total_usage(index), in_flight=everything + question.uploads_all, disk=disk
    ):
        raise quota_exceeded()
    mine = jobs_in_flight(index, question.partition_key, except_sha256=question.except_sha256)
    used = partition_usage(index, question.partition_key) + (mine + question.uploads_mine).size
    left = max(0, limits.partition_cap(disk) - used)
    if question.size is not None and question.size > left:
        raise quota_exceeded()
    return left


def check_total_quota(index: Index, limit: int | None) -> None:
    """Before publishing: `quota_exceeded` when the store already holds `limit` bytes.
    Decided without the size of what is published (a size-dependent answer would let a
    page bisect the free room) and counted the same whether the bytes duplicate another
    site's blob or not; the requests admitted while the store was under its ceiling
    may carry it past by at most their own sizes."""
    if limit is not None and total_usage(index) >= limit:
        raise quota_exceeded()
