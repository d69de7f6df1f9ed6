"""A small HTTP/1.1 listener for the loopback byte path, bounded in threads and time.

One selector thread accepts connections and reads each request head — at most
`Limits.max_head_bytes`, within `Limits.head_timeout_s` of the accept — and a fixed
pool of handler threads answers the complete ones, one request per connection. A local
process that opens hundreds of idle or half-sent connections costs a file descriptor
each and no thread, and each is closed at its deadline (or sooner, oldest first, past
`Limits.max_pending`). `http.server.ThreadingHTTPServer`, used before, gave every
connection a thread that waited forever: 500 half-sent requests made 506 host threads
and slowed every accept (PRIVACY.md, hole 6).

Parsing is pure (`head_end`, `parse_head`, `response_head`); sockets stay in `Listener`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    421: "Misdirected Request",
    422: "Unprocessable Content",
}


@dataclass(frozen=True, slots=True)
class Limits:
    handlers: int = 4  # threads answering requests (the host's only ones here)
    head_timeout_s: float = 5.0  # from accept to a complete request head
    max_head_bytes: int = 8192
    max_pending: int = 128  # connections still sending their head; the oldest go first
    max_queued: int = 16  # complete heads waiting for a handler; more are closed
    send_timeout_s: float = 30.0  # a reply (or a body) making no progress this long ends
    streams: int = 8  # threads receiving request bodies (uploads), apart from the handlers


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names, first wins
    body: bytes = b""  # the start of the body, read with the head

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# An answer either replies at once (None), or hands back the rest of its work — taking
# a request body in, which can take a while — to run on a stream thread, so that
# uploads never hold the handlers that serve reads.
Rest = Callable[[], None]
Answer = Callable[[socket.socket, "RequestHead | None"], "Rest | None"]


def head_end(buffer: bytes) -> int:
    """Where the request head ends (after its blank line); -1 while incomplete."""
    at = buffer.find(b"\r\n\r\n")
    return -1 if at < 0 else at + 4


def parse_head(data: bytes) -> RequestHead | None:
    """The request line and headers of a complete head; None when malformed."""
    try:
        lines = data.decode("latin-1").split("\r\n")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return None  # no folded or space-padded names (request smuggling shapes)
        headers.setdefault(name.lower(), value.strip())
    return RequestHead(parts[0], parts[1], headers)


def response_head(status: int, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", *map(": ".join, headers)]
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


@dataclass(slots=True)
class _Pending:
    deadline: float
    buffer: bytes = b""


class Listener:
    """Listens on `host`, port chosen by the OS; `answer` runs on a pool thread with
    the connection (blocking, with the send timeout) and its parsed head."""

    def __init__(self, answer: Answer, limits: Limits | None = None, *, host: str) -> None:
        self.limits = limits or Limits()
        self._answer = answer
        self._sock = socket.create_server((host, 0), backlog=128)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._pending: dict[socket.socket, _Pending] = {}  # oldest first
        self._pool = ThreadPoolExecutor(self.limits.handlers, thread_name_prefix="loopback")
        self._streams = ThreadPoolExecutor(self.limits.streams, thread_name_prefix="loopback-in")
        self._busy = 0  # queued or being answered
        self._busy_lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="loopback-accept", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        for conn in list(self._pending):
            self._drop(conn)
        self._pool.shutdown(wait=False)  # replies under way finish on their own
        self._streams.shutdown(wait=False)
        for sock in (self._sock, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    # -- the selector thread ---------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(self._wait()):
                if key.fileobj is self._sock:
                    self._accept()
                elif key.fileobj is not self._wake_r:
                    self._read(key.fileobj)  # type: ignore[arg-type]
            self._expire(time.monotonic())

    def _wait(self) -> float:
        if not self._pending:
            return 1.0
        first = next(iter(self._pending.values()))
        return min(1.0, max(0.0, first.deadline - time.monotonic()))

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of descriptors: make room, accept later
                if exc.errno in (errno.EMFILE, errno.ENFILE) and self._pending:
                    self._drop(next(iter(self._pending)))
                    continue
                log.warning("loopback: accept failed: %s", exc)
                time.sleep(0.1)  # the listening socket stays readable: do not spin
                return
            if len(self._pending) >= self.limits.max_pending:
                self._drop(next(iter(self._pending)))
            conn.setblocking(False)
            self._pending[conn] = _Pending(time.monotonic() + self.limits.head_timeout_s)
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        pending = self._pending.get(conn)
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if pending is None or not data:
            self._drop(conn)
            return
        pending.buffer += data
        end = head_end(pending.buffer)
        if end < 0:
            if len(pending.buffer) > self.limits.max_head_bytes:
                self._drop(conn)
            return
        self._selector.unregister(conn)
        del self._pending[conn]
        self._dispatch(conn, pending.buffer[:end], pending.buffer[end:])

    def _expire(self, now: float) -> None:
        while self._pending:
            conn, first = next(iter(self._pending.items()))
            if first.deadline > now:
                return
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        if self._pending.pop(conn, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn)
        conn.close()

    # -- the handler pool --------------------------------------------------------

    def _dispatch(self, conn: socket.socket, head: bytes, body: bytes) -> None:
        with self._busy_lock:
            if self._busy >= self.limits.handlers + self.limits.max_queued:
                conn.close()
                return
            self._busy += 1
        conn.setblocking(True)
        conn.settimeout(self.limits.send_timeout_s)
        try:
            parsed = parse_head(head)
            if parsed is not None and body:
                parsed = dataclasses.replace(parsed, body=body)
            self._pool.submit(self._serve, conn, parsed)
        except RuntimeError:  # shut down meanwhile
            self._done(conn)

    def _serve(self, conn: socket.socket, head: RequestHead | None) -> None:
        rest: Rest | None = None
        try:
            rest = self._answer(conn, head)
            if rest is not None:
                self._streams.submit(self._finish, conn, rest)
        except Exception:  # one bad request never ends the listener
            log.exception("loopback: answering a request failed")
            rest = None
        finally:
            if rest is None:
                self._done(conn)

    def _finish(self, conn: socket.socket, rest: Rest) -> None:
        try:
            rest()
        except Exception:
            log.exception("loopback: receiving a request failed")
        finally:
            self._done(conn)

    def _done(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        conn.close()
        with self._busy_lock:
            self._busy -= 1
