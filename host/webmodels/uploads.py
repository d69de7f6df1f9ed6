"""Uploads from pages (Cross-Origin Storage writes): bytes arrive in chunks, are
hashed as they are written to a private temp file, and are published only at commit,
and only if their SHA-256 and size are the ones announced at `begin`."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store.blobs import BlobFiles, BlobWriter, PendingBlob
from webmodels.store.quotas import InFlight

# Uploads open at once: per partition, and in one host. The host-wide ceiling is set
# well above one site's share, so one site's frames cannot shut the others out, and it
# answers exactly like the partition's limit (issue 11, hole 15: a different answer
# would tell a page that other sites are uploading).
MAX_OPEN = 64
MAX_PER_PARTITION = 4
TOO_MANY = "too many uploads at once; finish or abort one"
IDLE_S = 600.0  # an upload untouched this long is dropped
# Chunks in flight (native messaging, page/cos.js): the request pool may start a chunk
# before the one ahead of it has been written; it waits its turn, if it is at most this
# far ahead and for at most this long (its predecessor was submitted first, FIFO, so it
# is already being decoded and written: tens of milliseconds for a 16 MiB chunk here).
MAX_AHEAD = 64 << 20
AHEAD_WAIT_S = 10.0
# Test knob (the test suite only; pages cannot reach a host's environment): a shorter
# wait, in seconds, so a test of the wait-then-refuse path need not wait 10 s. It can
# only shorten the wait, never lengthen it.
AHEAD_WAIT_ENV = "WEBMODELS_TEST_AHEAD_WAIT_S"
MAX_SIZE = 64 << 30


@dataclass(slots=True)
class Upload:
    id: str
    digest: Digest
    size: int
    partition: str | None
    writer: BlobWriter
    touched: float
    lock: threading.Condition = field(default_factory=threading.Condition)


class Uploads:
    def __init__(self, files: BlobFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._open: dict[str, Upload] = {}
        self.ahead_wait_s = _ahead_wait(os.environ.get(AHEAD_WAIT_ENV))
        # Publishing describes the model (store/onnx_wire.py: a second or two of CPU for
        # a graph near its caps), so `cos.write.commit` runs on these threads, never on
        # the request pool, which a site's four commits could otherwise half fill.
        self.committing = ThreadPoolExecutor(max_workers=MAX_OPEN, thread_name_prefix="commit")

    def begin(self, digest: Digest, size: int, partition: str | None) -> Upload:
        if size > MAX_SIZE:
            raise HostError("too_large", f"uploads are limited to {MAX_SIZE} bytes")
        self.expire()
        with self._lock:
            mine = sum(1 for u in self._open.values() if u.partition == partition)
            if len(self._open) >= MAX_OPEN or mine >= MAX_PER_PARTITION:
                raise HostError("busy", TOO_MANY)
            upload = Upload(
                id=uuid.uuid4().hex,
                digest=digest,
                size=size,
                partition=partition,
                writer=self._files.open_writer(expected_size=size),
                touched=time.monotonic(),
            )
            self._open[upload.id] = upload
        return upload

    def in_flight(self, partition: str | None = None) -> InFlight:
        """Announced and received bytes of the open uploads of `partition` (None: all):
        they count toward the quotas until they are committed or dropped."""
        self.expire()
        with self._lock:
            mine = [u for u in self._open.values() if partition is None or u.partition == partition]
            return InFlight(
                size=sum(u.size for u in mine), written=sum(u.writer.size for u in mine)
            )

    def write(self, upload_id: str, partition: str | None, offset: int, data: bytes) -> int:
        upload = self._get(upload_id, partition)
        with upload.lock:
            if upload.writer.size < offset <= upload.writer.size + MAX_AHEAD:
                upload.lock.wait_for(lambda: self._turn(upload, offset), timeout=self.ahead_wait_s)
            if not self._is_open(upload):  # dropped (or committed) meanwhile
                raise HostError("not_found", "no such upload (finished, aborted or expired)")
            if offset != upload.writer.size:
                raise HostError(
                    "bad_request",
                    f"chunk at offset {offset}, but {upload.writer.size} bytes were received",
                    received=upload.writer.size,
                )
            if upload.writer.size + len(data) > upload.size:
                self.abort(upload_id, partition)
                raise HostError(
                    "integrity_mismatch", f"more bytes than the {upload.size} announced"
                )
            try:
                upload.writer.write(data)
            except HostError:
                self._drop(upload_id)
                raise
            upload.touched = time.monotonic()
            upload.lock.notify_all()
            return upload.writer.size

    def _turn(self, upload: Upload, offset: int) -> bool:
        return upload.writer.size >= offset or not self._is_open(upload)

    def _is_open(self, upload: Upload) -> bool:
        with self._lock:
            return self._open.get(upload.id) is upload

    def stream(self, upload_id: str, partition: str | None, pieces: Iterable[bytes]) -> None:
        """Writes `pieces` in order (a write URL's body, loopback.py); any failure,
        theirs or the disk's, drops the upload and its temp file."""
        received = 0
        try:
            for piece in pieces:
                received = self.write(upload_id, partition, received, piece)
        except BaseException:
            self.abort(upload_id, partition)
            raise

    def commit(self, upload_id: str, partition: str | None) -> PendingBlob:
        """Verified bytes, ready to publish; `integrity_mismatch` (and nothing kept) if not."""
        upload = self._get(upload_id, partition)
        with upload.lock:
            self._drop(upload_id, abort=False)
            pending = upload.writer.finish()
            if pending.size != upload.size or pending.digest != upload.digest:
                self._files.discard(pending)
                raise HostError(
                    "integrity_mismatch",
                    f"received {pending.size} bytes hashing to {pending.digest.hex}; "
                    f"expected {upload.size} bytes hashing to {upload.digest.hex}",
                    expected=upload.digest.hex,
                    actual=pending.digest.hex,
                )
            return pending

    def abort(self, upload_id: str, partition: str | None) -> bool:
        try:
            self._get(upload_id, partition)
        except HostError:
            return False
        self._drop(upload_id)
        return True

    def expire(self) -> None:
        cutoff = time.monotonic() - IDLE_S
        with self._lock:
            stale = [u.id for u in self._open.values() if u.touched < cutoff]
        for upload_id in stale:
            self._drop(upload_id)

    def forget_site(self, top_site: str) -> int:
        """Aborts every open upload of the site's partitions (forgetting a site): its
        temp files go now, and a later chunk or commit finds no such upload."""
        prefix = f"{top_site} "
        with self._lock:
            ids = [u.id for u in self._open.values() if (u.partition or "").startswith(prefix)]
        for upload_id in ids:
            self._drop(upload_id)
        return len(ids)

    def close(self) -> None:
        self.committing.shutdown(wait=True)  # commits under way publish, and reply, first
        with self._lock:
            ids = list(self._open)
        for upload_id in ids:
            self._drop(upload_id)

    def _get(self, upload_id: str, partition: str | None) -> Upload:
        with self._lock:
            upload = self._open.get(upload_id)
        # Another partition's upload is indistinguishable from none.
        if upload is None or (partition is not None and upload.partition != partition):
            raise HostError("not_found", "no such upload (finished, aborted or expired)")
        return upload

    def _drop(self, upload_id: str, *, abort: bool = True) -> None:
        with self._lock:
            upload = self._open.pop(upload_id, None)
        if upload is None:
            return
        if abort:
            upload.writer.abort()
        with upload.lock:
            upload.lock.notify_all()  # chunks waiting their turn: there is none now


def _ahead_wait(value: str | None) -> float:
    """`AHEAD_WAIT_S`, or the shorter wait the test knob asks for."""
    try:
        return min(AHEAD_WAIT_S, max(0.0, float(value))) if value else AHEAD_WAIT_S
    except ValueError:
        return AHEAD_WAIT_S
