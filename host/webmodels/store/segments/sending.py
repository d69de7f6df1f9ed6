"""Sending a recipe's bytes into a connection: what the loopback fast path does.

A file kept as segments has hundreds of parts where a whole file has one, and what a
part costs is mostly the calls around it: opening the segment, a ``sendfile`` with its
readiness poll, a wake-up of the reader per send. So small parts are gathered: inline
bytes and segments of at most `GATHER_MAX` bytes (read with one ``pread`` each) are
joined in memory and sent together, up to `BATCH` bytes a send; larger segments go
kernel-side (``os.sendfile``, honouring the connection's timeout) after what was
gathered before them. Bytes leave in recipe order whatever the batching.

A segment that is gone or shorter than its recipe says ends the transfer with an
``OSError`` (the reader sees a short body, as when a whole file vanishes).
"""

from __future__ import annotations

import errno
import os
import select
import socket
from collections.abc import Sequence

from webmodels.store.segments.recipe import Inline, Segment
from webmodels.store.segments.segment_store import SegmentStore

# A segment this small is read and joined, not sendfile'd. Reading a part into the
# process and sending it copies its bytes twice where `sendfile` copies once in the
# kernel: past a few pages the second copy costs more than the calls saved. On the
# segments bench's corpus (233 MB, 1,284 segments, quiet machine, 9 alternating rounds)
# reads ran at 0.77x the whole-file store's MB/s with 1 MiB here, 0.86x with 64 KiB,
# 0.97-0.98x with 16 KiB and 8 KiB, 0.97x with 4 KiB (docs/segments.md).
GATHER_MAX = 16 << 10
BATCH = 1 << 20  # bytes gathered before a send


def send_parts(store: SegmentStore, parts: Sequence[Segment | Inline], conn: socket.socket) -> int:
    """Send ``parts`` in order into ``conn``; bytes sent."""
    out = _Out(conn)
    files = _Files(store)
    buffer = bytearray(BATCH)
    view = memoryview(buffer)
    held = sent = 0
    try:
        for part in parts:
            if part.size > GATHER_MAX and isinstance(part, Segment):
                sent += _flush(conn, view, held) + _sendfile_segment(files, part, out)
                held = 0
                continue
            if held + part.size > BATCH:
                sent += _flush(conn, view, held)
                held = 0
            if isinstance(part, Inline):
                view[held : held + part.size] = part.data
            else:
                _read_segment(files, part, view[held : held + part.size])
            held += part.size
        return sent + _flush(conn, view, held)
    finally:
        view.release()
        files.close()


class _Files:
    """The files segments are read from, each opened once per transfer (the parts of
    one file mostly lie in one pack)."""

    def __init__(self, store: SegmentStore) -> None:
        self.store = store
        self._open: dict[str, int] = {}  # a pack's name, or a segment's own file

    def locate(self, segment: Segment) -> tuple[int, int]:
        """A descriptor of the file holding ``segment`` and where its bytes start."""
        key = segment.pack or segment.digest.hex
        fd = self._open.get(key)
        if fd is None:
            path, _ = self.store.locate(segment)
            fd = self._open[key] = os.open(path, os.O_RDONLY)
        return fd, segment.offset if segment.pack else 0

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()


def _flush(conn: socket.socket, view: memoryview, held: int) -> int:
    if held:
        with view[:held] as data:
            conn.sendall(data)
    return held


def _read_segment(files: _Files, segment: Segment, into: memoryview) -> None:
    """The segment's bytes into ``into`` (exactly its size)."""
    fd, start = files.locate(segment)
    try:
        got = os.preadv(fd, [into], start)
    finally:
        into.release()
    if got != segment.size:
        raise OSError(errno.EIO, f"segment {segment.digest.hex} is short")


def _sendfile_segment(files: _Files, segment: Segment, out: _Out) -> int:
    fd, start = files.locate(segment)
    out.sendfile(fd, segment, start)
    return segment.size


class _Out:
    """``os.sendfile`` into a connection, honouring its timeout as ``socket.sendfile``
    does (a socket with a timeout is non-blocking underneath: wait until it takes
    more, at most the timeout, then `TimeoutError`), with one poll object for the
    whole transfer rather than one per call."""

    def __init__(self, conn: socket.socket) -> None:
        self.fd = conn.fileno()
        timeout = conn.gettimeout()
        self.timeout_ms = None if timeout is None else int(timeout * 1000)
        self._poll: select.poll | None = None

    def sendfile(self, fd: int, segment: Segment, start: int) -> None:
        offset = 0
        while offset < segment.size:
            try:
                sent = os.sendfile(self.fd, fd, start + offset, segment.size - offset)
            except BlockingIOError:
                self._wait()
                continue
            if sent == 0:
                raise OSError(errno.EIO, f"segment {segment.digest.hex} is short")
            offset += sent

    def _wait(self) -> None:
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.fd, select.POLLOUT)
        if not self._poll.poll(self.timeout_ms):
            raise TimeoutError("timed out")
