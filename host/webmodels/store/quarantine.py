"""The quarantine folder (``store-v2/quarantine/``): blobs that failed verification,
kept for the user to inspect, never served. Owns the file names there
(``<64 hex>.<UTC time, ISO 8601 basic>``, e.g. ``…ab12.20261206T061500Z``), what the
folder holds (for `du`) and which files are old enough for `gc` to remove.

A moved file keeps its modification time (that of the blob's publication), so the time
of quarantine is read from the name; names of older versions end in a Unix time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STAMP = "%Y%m%dT%H%M%SZ"


def quarantine_name(hex_digest: str, now: float) -> str:
    return f"{hex_digest}.{datetime.fromtimestamp(now, UTC).strftime(STAMP)}"


@dataclass(frozen=True, slots=True)
class QuarantinedFile:
    path: Path
    size: int
    quarantined_at: float  # Unix time


def quarantined_at(path: Path) -> float:
    """The time in the name (either form), else the file's modification time."""
    suffix = path.name.rpartition(".")[2]
    try:
        return datetime.strptime(suffix, STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        pass
    if suffix.isdigit():
        return float(suffix)
    return path.stat().st_mtime


def quarantined_files(folder: Path) -> Iterator[QuarantinedFile]:
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        try:
            if path.is_file():
                yield QuarantinedFile(path, path.stat().st_size, quarantined_at(path))
        except FileNotFoundError:  # removed meanwhile (another gc)
            continue


def older_than(folder: Path, age_s: float, *, now: float | None = None) -> list[QuarantinedFile]:
    """What has been in quarantine for at least ``age_s`` seconds (0: everything)."""
    cutoff = (time.time() if now is None else now) - age_s
    return [f for f in quarantined_files(folder) if f.quarantined_at <= cutoff]
