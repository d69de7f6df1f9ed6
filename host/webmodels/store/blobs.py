"""Blob files: written to a private temp file while hashing, published by rename.

Layout (the whole files of ``store-v2``; all of ``store-v1``)::

    blobs/sha256/ab/<64 hex>   immutable, read-only, published only after the hash matched
    tmp/<pid>-<uuid>.partial   one per writer (a ``.json`` sidecar marks resumable state)
    tmp/<64 hex>.aside         a blob gc is removing, until its index write commits
    tmp/<64 hex>.publishing    a blob renamed into place whose index write has not
                               committed yet (the next start removes the blob if it
                               never did: store.Store.settle_publishing)
    quarantine/<64 hex>.<UTC>  blobs that failed verification; never served

Correctness never depends on a lock: every writer has its own temp file, and only
bytes whose SHA-256 matched are renamed into place (Ollama renames before verifying;
we do not).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.permissions import make_private_dir
from webmodels.store.quarantine import quarantine_name

CHUNK = 1 << 20
_PARTIAL = ".partial"
ASIDE = ".aside"
PUBLISHING = ".publishing"
FREE_SPACE_RESERVE = 16 * CHUNK  # left free after an import (the index, logs, others)
STALE_TEMP_AGE_S = 24 * 3600  # fallback where a writer's pid cannot be checked

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class PendingBlob:
    """Bytes hashed and fsynced in a temp file, not yet published."""

    temp_path: Path
    digest: Digest
    size: int


class BlobFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.tmp_dir = root / "tmp"
        self.quarantine_dir = root / "quarantine"

    def ensure(self) -> None:
        for folder in (self.blob_dir, self.tmp_dir, self.quarantine_dir):
            make_private_dir(folder, own=self.root.parent)  # the data folder and below

    def path_of(self, digest: Digest) -> Path:
        return self.blob_dir / digest.hex[:2] / digest.hex

    def exists(self, digest: Digest) -> bool:
        return self.path_of(digest).is_file()

    # -- writing -------------------------------------------------------------

    def write_stream(
        self,
        source: BinaryIO,
        *,
        expected_size: int | None = None,
        progress: Progress | None = None,
        durable: bool = True,
    ) -> PendingBlob:
        """Copy `source` into a new temp file, hashing as it goes; fsync before return
        unless not ``durable`` (bytes that are stored as segments, which are flushed
        themselves: the temp file is never published)."""
        writer = self.open_writer(expected_size=expected_size)
        try:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
                if progress:
                    progress(writer.size)
            return writer.finish(durable=durable)
        except BaseException:
            writer.abort()
            raise

    def open_writer(self, *, expected_size: int | None = None) -> BlobWriter:
        """A private temp file that hashes what is written to it (pieces of any size)."""
        self.check_free_space(expected_size or 0)
        temp = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}{_PARTIAL}"
        try:
            return BlobWriter(temp, root=self.root)
        except OSError as exc:
            raise disk_error(exc, self.root) from exc

    def publish(self, pending: PendingBlob) -> bool:
        """Move verified bytes into place; False when an identical blob was already there."""
        final = self.path_of(pending.digest)
        existed = final.is_file()
        if existed and sys.platform == "win32":  # pragma: no cover - cannot replace a
            pending.temp_path.unlink(missing_ok=True)  # read-only or open file there
            return False
        # A duplicate takes the same steps as new bytes: the verified copy replaces the
        # identical blob (readers keep the inode they opened). Discarding it instead was
        # measurably quicker, which told a page that another site held the model
        # (PRIVACY.md, timing; tests/privacy/test_timing.py).
        make_private_dir(final.parent, own=self.root)
        os.chmod(pending.temp_path, 0o400)  # read-only, and the user's alone
        # Called inside the index's write transaction: a process killed between this
        # rename and the COMMIT leaves the marker, and the next start takes the blob
        # back unless a row names it (a kill loop found such blobs left until a gc).
        self.publishing_marker(pending.digest).touch()
        os.replace(pending.temp_path, final)
        fsync_dir(final.parent)
        return not existed

    def publishing_marker(self, digest: Digest) -> Path:
        return self.tmp_dir / f"{digest.hex}{PUBLISHING}"

    def settled(self, digests: Iterable[Digest]) -> None:
        """The index write that published `digests` committed: drop their markers."""
        for digest in digests:
            with contextlib.suppress(OSError):  # a failing disk: the next start does it
                self.publishing_marker(digest).unlink(missing_ok=True)

    def discard(self, pending: PendingBlob) -> None:
        with contextlib.suppress(OSError):  # a failing disk: the next start removes it
            pending.temp_path.unlink(missing_ok=True)

    def check_free_space(self, needed: int) -> None:
        """Refuse (`disk_full`) when `needed` bytes plus a reserve do not fit."""
        free = shutil.disk_usage(self.tmp_dir).free
        reserve = reserve_for(needed)
        if needed and free < needed + reserve:
            raise HostError(
                "disk_full",
                f"{needed} bytes needed, plus {reserve} kept in reserve, "
                f"but only {free} free under {self.root}; free some space",
                needed=needed,
                free=free,
            )

    # -- reading, verifying, removing ------------------------------------------

    def read_range(self, path: Path, offset: int, length: int) -> bytes:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def quarantine(self, digest: Digest) -> Path | None:
        """Move a bad blob out of ``blobs/`` so it can never be served."""
        return move_to_quarantine(self.path_of(digest), self.quarantine_dir, digest)

    def remove(self, digest: Digest) -> int:
        path = self.path_of(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def set_aside(self, digest: Digest) -> Path | None:
        """Move a blob being removed to ``tmp/<hex>.aside`` (None: it was not there).
        Undone by `put_back` if the index write fails; else deleted. One left by a
        crash or a failing disk is settled by the next start (gc.settle_set_aside)."""
        aside = self.tmp_dir / f"{digest.hex}{ASIDE}"
        try:
            os.replace(self.path_of(digest), aside)
        except FileNotFoundError:
            return None
        return aside

    def put_back(self, digest: Digest, aside: Path) -> None:
        os.replace(aside, self.path_of(digest))

    def iter_blobs(self) -> Iterator[tuple[Digest, Path]]:
        if not self.blob_dir.is_dir():
            return
        for shard in sorted(self.blob_dir.iterdir()):
            for path in sorted(shard.iterdir()) if shard.is_dir() else ():
                try:
                    digest = Digest(path.name)
                except ValueError:
                    continue  # not ours; never touched
                if shard.name == digest.hex[:2]:
                    yield digest, path

    def stale_temp_files(self) -> list[Path]:
        """Temp files whose writer is gone (and that hold no resumable state)."""
        stale: list[Path] = []
        if not self.tmp_dir.is_dir():
            return stale
        for path in self.tmp_dir.glob(f"*{_PARTIAL}"):
            if path.with_suffix(".json").exists():
                continue  # a resumable download's state; its job owns it
            if not _writer_alive(path):
                stale.append(path)
        return stale


class BlobWriter:
    """Bytes written in pieces to a temp file while hashing; `finish` fsyncs and hands
    back a `PendingBlob`; `abort` removes the file. A full disk becomes `disk_full`."""

    def __init__(self, temp: Path, *, root: Path) -> None:
        self.temp = temp
        self._root = root
        self._out = _create_exclusive(temp)
        self._hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        try:
            self._out.write(data)
        except OSError as exc:
            self.abort()
            raise disk_error(exc, self._root) from exc
        self._hasher.update(data)
        self.size += len(data)

    def finish(self, *, durable: bool = True) -> PendingBlob:
        try:
            self._out.flush()
            if durable:
                os.fsync(self._out.fileno())
            self._out.close()
        except OSError as exc:
            self.abort()
            raise disk_error(exc, self._root) from exc
        return PendingBlob(self.temp, Digest(self._hasher.hexdigest()), self.size)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._out.close()
        self.temp.unlink(missing_ok=True)


def disk_error(exc: OSError, root: Path) -> HostError:
    """A failed write, fsync, rename or removal under `root`, as the error a user
    reads: `disk_full` for a full disk, else what failed (never a bare traceback)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HostError("disk_full", f"the disk holding {root} is full; free some space")
    return HostError(
        "internal", f"the disk holding {root} failed ({exc.strerror or exc}); check it"
    )


def reserve_for(needed: int) -> int:
    """Space left free after writing `needed` bytes (for the index, logs, other
    programs): an eighth of the file, at least 1 MiB, at most 16 MiB."""
    return min(FREE_SPACE_RESERVE, max(CHUNK, needed // 8))


def hash_file(path: Path, *, progress: Progress | None = None) -> tuple[Digest, int]:
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            if progress:
                progress(size)
    return Digest(hasher.hexdigest()), size


def move_to_quarantine(source: Path, folder: Path, digest: Digest) -> Path | None:
    """Move `source` (the file of `digest`) into the quarantine `folder`, durably; None
    when it is already gone."""
    target = folder / quarantine_name(digest.hex, time.time())
    try:
        os.replace(source, target)
    except FileNotFoundError:
        return None
    fsync_dir(source.parent)
    return target


def fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory handles to sync."""
    if sys.platform == "win32":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_exclusive(path: Path) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o600), "wb")


def _writer_alive(path: Path) -> bool:
    pid_text = path.name.split("-", 1)[0]
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True  # already gone
    if not pid_text.isdigit() or sys.platform == "win32":
        return age < STALE_TEMP_AGE_S
    if not process_alive(int(pid_text)):
        return False
    # Alive by pid; a recycled pid could keep an abandoned file, so age still counts.
    return age < STALE_TEMP_AGE_S


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with `pid` exists (True when unsure)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover - no cheap check without a handle
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
