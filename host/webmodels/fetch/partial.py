"""A download's partial file: one writer at a time, and proof of what is published.

Each job writes ``tmp/dl-<job id>.partial`` (and its ``.json`` resume sidecar), so two
jobs never share a file, and the runner holds an exclusive ``flock`` on it for the
whole transfer. A runner that took over a job whose previous runner still writes
(its heartbeat failed, its lease expired, its PID looked dead from another PID
namespace) cannot lock the file and leaves it alone. Before publishing, the file on
disk is hashed again (`verify`): the streamed hash says what was received, this says
what is about to be renamed into ``blobs/``. Where ``fcntl`` is missing (Windows) the
lock is skipped and the re-hash alone stands between a torn file and the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.resume import ResumeState
from webmodels.store.blobs import PendingBlob

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
HASH_CHUNK = 1 << 20


class PartialBusy(Exception):
    """Another runner holds the partial file's lock: it is still writing."""


def partial_path(tmp_dir: Path, job_id: str) -> Path:
    return tmp_dir / f"dl-{job_id}.partial"


class PartialLock:
    """The exclusive lock on one partial file, held from before the first byte is
    written until the file is published or given up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> PartialLock:
        """Lock (creating the file when absent); `PartialBusy` when another holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                os.close(fd)
                raise PartialBusy(str(self.path)) from exc
        self._fd = fd
        return self

    def adopt(self, older: Path) -> bool:
        """Take over `older` (a partial an ended job of the same bytes and scope left)
        as this file, so a new request resumes it; only if nobody writes it."""
        try:
            fd = os.open(older, os.O_RDWR)
        except OSError:
            return False
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if self.path.exists():
                raise FileExistsError(self.path)
            os.replace(older.with_suffix(".json"), self.path.with_suffix(".json"))
            os.replace(older, self.path)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd  # the lock moved with the inode
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def verify(self, pending: PendingBlob, expected: Digest) -> None:
        """The file about to be published is the one this lock guards, and its bytes
        on disk hash to `expected` (not only the bytes that were streamed into it)."""
        assert self._fd is not None
        with pending.temp_path.open("rb") as fh:
            mine, found = os.fstat(self._fd), os.fstat(fh.fileno())
            same = (mine.st_dev, mine.st_ino) == (found.st_dev, found.st_ino)
            hasher = hashlib.sha256()
            size = 0
            while chunk := fh.read(HASH_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        digest = Digest(hasher.hexdigest())
        if not same or size != pending.size or digest != expected:
            log.error(
                "partial %s changed under its writer (same file: %s, %d of %d bytes, %s)",
                pending.temp_path.name,
                same,
                size,
                pending.size,
                digest.hex,
            )
            raise HostError(
                "integrity_mismatch", "the downloaded file changed on disk before publishing"
            )


def read_sidecar(sidecar: Path) -> ResumeState:
    """The resume state a previous attempt saved beside its partial file (none: start
    over)."""
    try:
        return ResumeState.from_json(json.loads(sidecar.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        return ResumeState()


def write_sidecar(sidecar: Path, state: ResumeState) -> None:
    """Save ``state`` beside the partial file, replacing the old one whole."""
    temp = sidecar.with_suffix(".json.new")
    temp.write_text(json.dumps(state.to_json()), encoding="utf-8")
    os.replace(temp, sidecar)
