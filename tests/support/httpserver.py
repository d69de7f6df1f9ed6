"""A real HTTP/1.1 model server on 127.0.0.1 that misbehaves on request.

    with ModelServer() as server:
        url = server.add("model.onnx", data)
        server.fault("model.onnx", Fault("drop", after_bytes=1000))
        ...  # download url; the first GET is cut after 1000 body bytes
        assert server.bytes_sent("model.onnx") < 1.2 * len(data)

Every response carries ``Access-Control-Allow-Origin: *`` (as model hosts and CDNs
send it) unless ``cors`` says otherwise; ``None`` leaves the header out.

Faults queue per path: each request takes the first queued fault that applies to it
and uses one of its ``times``; a fault with ``times=None`` applies forever (and so
shadows the ones queued after it). Only one fault acts on a request.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.utils import formatdate, parsedate_to_datetime
from enum import Enum
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

CHUNK = 64 * 1024
FIXED_LAST_MODIFIED = 1_700_000_000.0  # 2023-11-14T22:13:20Z: stable across runs
STOP_GRACE_S = 2.0
FLIP = bytes(b ^ 0xFF for b in range(256))

FaultKind = Literal[
    "drop",
    "stall",
    "change_etag",
    "ignore_range",
    "wrong_bytes",
    "short_body",
    "bad_content_range",
    "status",
    "slow",
]
BODY_CUTTING: frozenset[str] = frozenset({"drop", "stall", "short_body"})


@dataclass(frozen=True, slots=True)
class Fault:
    """One way to misbehave, for the next ``times`` requests (``None``: forever).

    * ``drop``: headers and ``after_bytes`` body bytes, then a TCP reset.
    * ``stall``: ``after_bytes`` body bytes, then silence for ``seconds`` (or until
      the server stops, or the client closes its end: then the request's record says
      ``client_closed``), then the connection closes.
    * ``short_body``: the full Content-Length is declared, ``after_bytes`` are sent,
      then an orderly close.
    * ``change_etag``: from this request on the file is a new version: new ETag
      (``etag``, or one derived unless the file had none), Last-Modified one hour
      later, and ``data`` as its content when given.
    * ``ignore_range``: 200 with the whole body, whatever Range asked for.
    * ``wrong_bytes``: same headers and length; every body byte from ``after_bytes``
      on is inverted.
    * ``bad_content_range``: 206 whose Content-Range (and body) starts one byte off
      the range asked for (a whole-file request gets ``bytes 1-.../TOTAL``).
    * ``status``: ``status`` with an empty body, on any path.
    * ``slow``: the body at ``rate`` bytes per second.

    ``drop``, ``stall`` and ``short_body`` always cut the body: they send at most
    length - 1 bytes. ``headers`` are added to the faulted reply (e.g. Retry-After).
    Faults act on the ``methods`` listed; HEAD requests pass unharmed by default.
    """

    kind: FaultKind
    after_bytes: int = 0
    times: int | None = 1
    seconds: float = 30.0
    status: int = 503
    rate: int = 256 * 1024
    data: bytes | None = None
    etag: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    methods: tuple[str, ...] = ("GET",)

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (or None for every request)")
        if self.after_bytes < 0 or self.rate < 1 or self.seconds < 0:
            raise ValueError("after_bytes, seconds must be >= 0 and rate >= 1")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status code")


@dataclass(slots=True)
class RequestRecord:
    """One request as the server saw and answered it (status 0: not answered yet)."""

    method: str
    path: str
    range: str | None
    if_range: str | None
    status: int = 0
    bytes_sent: int = 0
    fault: str | None = None
    origin: str | None = None  # the request's Origin header
    authorization: str | None = None
    cookie: str | None = None
    client_closed: bool = False  # the client closed the connection (in a stall, or mid-body)


# --- ranges and validators (RFC 9110 §13.1.5, §14): pure functions -----------------


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Enum):
    RANGE = "unsatisfiable"


def parse_range(value: str, total: int) -> ByteRange | Unsatisfiable | None:
    """The single byte range ``value`` asks of a ``total``-byte body; ``None`` means
    ignore the header and send it all (RFC 9110 §14.2 lets a server ignore invalid
    or multi-range specifiers)."""
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last) or not (first + last).isdigit():
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or total == 0:
            return Unsatisfiable.RANGE if suffix == 0 else None
        return ByteRange(max(total - suffix, 0), total - 1)
    start = int(first)
    end = int(last) if last else total - 1
    if last and end < start:
        return None
    if start >= total:
        return Unsatisfiable.RANGE
    return ByteRange(start, min(end, total - 1))


def strong_match(a: str, b: str | None) -> bool:
    """Strong comparison (RFC 9110 §8.8.3.2): weak tags never match."""
    return b is not None and not a.startswith("W/") and not b.startswith("W/") and a == b


def if_range_holds(value: str, *, etag: str | None, last_modified: float | None) -> bool:
    """RFC 9110 §13.1.5: an entity-tag must match strongly, a date exactly."""
    value = value.strip()
    if value.startswith(('"', "W/")):
        return strong_match(value, etag)
    if last_modified is None:
        return False
    try:
        stamp = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return False
    return int(stamp) == int(last_modified)


def content_etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


# --- what is served -----------------------------------------------------------------


class _Derived(Enum):
    TOKEN = "derived"


DERIVED = _Derived.TOKEN


@dataclass(frozen=True, slots=True)
class _Entry:
    source: bytes | Path
    size: int
    etag: str | None
    last_modified: float | None
    content_type: str

    def chunks(self, start: int, length: int) -> Iterator[bytes | memoryview]:
        if isinstance(self.source, bytes):
            view = memoryview(self.source)
            for pos in range(start, start + length, CHUNK):
                yield view[pos : min(pos + CHUNK, start + length)]
            return
        with self.source.open("rb") as file:
            file.seek(start)
            left = length
            while left > 0 and (block := file.read(min(CHUNK, left))):
                left -= len(block)
                yield block


@dataclass(frozen=True, slots=True)
class _Redirect:
    target: str
    status: int


@dataclass(slots=True)
class _Queued:
    fault: Fault
    left: int | None


@dataclass(frozen=True, slots=True)
class _Body:
    """What to write after the headers: ``send`` of the ``length`` declared bytes
    from file offset ``start``; bytes from body offset ``flip_from`` on inverted."""

    start: int
    length: int
    send: int
    flip_from: int | None = None
    rate: int | None = None


@dataclass
class _State:
    files: dict[str, _Entry | _Redirect] = field(default_factory=dict)
    faults: dict[str, list[_Queued]] = field(default_factory=dict)
    records: list[RequestRecord] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)


def _norm(path: str) -> str:
    return "/" + urlsplit(path).path.lstrip("/")


class ModelServer:
    """Serves files over HTTP/1.1 on 127.0.0.1 from a daemon thread.

    ``stop()`` closes the listening socket and cuts every open connection, so
    clients see the network go away; ``start()`` afterwards listens on the same
    port again with the same files, faults and statistics.
    """

    def __init__(self, *, host: str = "127.0.0.1", cors: str | None = "*") -> None:
        self.host = host  # 127.0.0.1 or ::1: never any other address
        self.cors = cors  # the Access-Control-Allow-Origin sent (None: none)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._state = _State()
        self._connections: set[socket.socket] = set()
        self.accepted = 0  # TCP connections accepted, with or without a request
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # lifecycle

    def start(self) -> ModelServer:
        if self._httpd is not None:
            raise RuntimeError("server already running")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._port), _Handler, self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes stalls and throttles
        httpd.shutdown()
        httpd.server_close()  # new connections are now refused
        with self._lock:
            for conn in self._connections:
                _shutdown(conn)
            self._idle.wait_for(lambda: not self._connections, timeout=STOP_GRACE_S)
        if self._thread is not None:
            self._thread.join(STOP_GRACE_S)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/{path.lstrip('/')}"

    # content

    def add(
        self,
        path: str,
        data: bytes,
        *,
        etag: str | _Derived | None = DERIVED,
        last_modified: float | None = FIXED_LAST_MODIFIED,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Serve ``data`` at ``path`` (ETag derived from the content unless given;
        ``None`` leaves the header out) and return its URL."""
        tag = content_etag(data) if etag is DERIVED else etag
        entry = _Entry(bytes(data), len(data), tag, last_modified, content_type)
        return self._put(path, entry)

    def add_file(
        self,
        path: str,
        file_path: Path,
        *,
        etag: str | _Derived | None = DERIVED,
        last_modified: float | _Derived | None = DERIVED,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Serve a file from disk, read per request (never held in memory). The ETag
        and Last-Modified default to the file's size and mtime now; call again if
        the file changes."""
        stat = file_path.stat()
        tag = f'"{int(stat.st_mtime):x}-{stat.st_size:x}"' if etag is DERIVED else etag
        modified = float(int(stat.st_mtime)) if last_modified is DERIVED else last_modified
        entry = _Entry(file_path, stat.st_size, tag, modified, content_type)
        return self._put(path, entry)

    def redirect(self, path: str, target: str, status: int = 302) -> str:
        """Answer ``path`` with ``status`` and Location ``target`` (a URL, or a path
        on this server)."""
        return self._put(path, _Redirect(target, status))

    def fault(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._state.faults.setdefault(_norm(path), []).append(_Queued(fault, fault.times))

    def clear_faults(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._state.faults.clear()
            else:
                self._state.faults.pop(_norm(path), None)

    # accounting

    def bytes_sent(self, path: str | None = None) -> int:
        """Body bytes written to sockets (headers not counted)."""
        with self._lock:
            if path is None:
                return sum(self._state.sent.values())
            return self._state.sent.get(_norm(path), 0)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request answered (or being answered), oldest first."""
        with self._lock:
            return [replace(record) for record in self._state.records]

    def transfers(self, path: str) -> int:
        """GET requests for ``path`` answered 200 or 206."""
        key = _norm(path)
        return sum(
            1
            for r in self.requests
            if r.path == key and r.method == "GET" and r.status in (200, 206)
        )

    def reset_stats(self) -> None:
        with self._lock:
            self._state.records.clear()
            self._state.sent.clear()

    # used by the handler threads

    def _put(self, path: str, item: _Entry | _Redirect) -> str:
        key = _norm(path)
        with self._lock:
            self._state.files[key] = item
        return self.url(key)

    def _lookup(self, path: str) -> _Entry | _Redirect | None:
        with self._lock:
            return self._state.files.get(path)

    def _take_fault(self, path: str, method: str, *, is_file: bool) -> Fault | None:
        with self._lock:
            queue = self._state.faults.get(path, [])
            for queued in queue:
                fault = queued.fault
                if method in fault.methods and (is_file or fault.kind == "status"):
                    if queued.left is not None:
                        queued.left -= 1
                        if queued.left == 0:
                            queue.remove(queued)
                    return fault
            return None

    def _new_version(self, path: str, fault: Fault) -> _Entry:
        with self._lock:
            old = self._state.files[path]
            assert isinstance(old, _Entry)
            source = old.source if fault.data is None else fault.data
            size = old.size if fault.data is None else len(fault.data)
            if fault.etag is not None or old.etag is None:
                tag = fault.etag  # a file served without an ETag keeps having none
            elif fault.data is not None:
                tag = content_etag(fault.data)
            else:
                tag = content_etag(f"{old.etag}+1".encode())
            modified = None if old.last_modified is None else old.last_modified + 3600
            new = _Entry(source, size, tag, modified, old.content_type)
            self._state.files[path] = new
            return new

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._state.records.append(record)

    def _count(self, record: RequestRecord, n: int) -> None:
        with self._lock:
            record.bytes_sent += n
            self._state.sent[record.path] = self._state.sent.get(record.path, 0) + n

    def _register(self, conn: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self.accepted += 1
            self._connections.add(conn)
            return True

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
            self._idle.notify_all()


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the client
        conn.shutdown(socket.SHUT_RDWR)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], owner: ModelServer
    ) -> None:
        self.owner = owner
        self.aborted: set[socket.socket] = set()  # connections to close with RST
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        """As HTTPServer's, without its reverse look-up of the address (for ::1 that
        can become a DNS query: no packet may leave this machine)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up mid-body are expected here; stay quiet."""

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket) and request in self.aborted:
            self.aborted.discard(request)
            self.close_request(request)  # no FIN first: the client sees the reset
        else:
            super().shutdown_request(request)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ModelServer/1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    wbufsize = 0  # unbuffered: headers leave at end_headers(), the body via _write()
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        if not self.server.owner._register(self.connection):
            _shutdown(self.connection)
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._unregister(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``ModelServer.requests`` instead."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        owner = self.server.owner
        path = _norm(self.path)
        record = RequestRecord(method, path, self.headers["Range"], self.headers["If-Range"])
        record.origin = self.headers["Origin"]
        record.authorization = self.headers["Authorization"]
        record.cookie = self.headers["Cookie"]
        item = owner._lookup(path)
        fault = owner._take_fault(path, method, is_file=isinstance(item, _Entry))
        record.fault = fault.kind if fault else None
        if fault is not None and fault.kind == "status":
            self._empty(record, fault.status, fault.headers)
        elif item is None:
            self._empty(record, 404)
        elif isinstance(item, _Redirect):
            target = item.target if "://" in item.target else owner.url(item.target)
            self._empty(record, item.status, (("Location", target),))
        else:
            if fault is not None and fault.kind == "change_etag":
                item = owner._new_version(path, fault)
            self._serve_entry(record, item, fault)

    def _empty(
        self, record: RequestRecord, status: int, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        record.status = status
        self.server.owner._record(record)
        self.send_response(status)
        self._send_cors()
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve_entry(self, record: RequestRecord, entry: _Entry, fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        wanted = None if kind == "ignore_range" else _wanted_range(record, entry)
        if wanted is Unsatisfiable.RANGE:
            self._empty(record, 416, (("Content-Range", f"bytes */{entry.size}"),))
            return
        if kind == "bad_content_range":
            wanted = _off_by_one(wanted, entry.size)
        self._send_headers(record, entry, wanted, fault)
        if record.method == "GET":
            self._send_body(record, entry, wanted, fault)

    def _send_headers(
        self, record: RequestRecord, entry: _Entry, wanted: ByteRange | None, fault: Fault | None
    ) -> None:
        record.status = 200 if wanted is None else 206
        self.server.owner._record(record)
        self.send_response(record.status)
        self._send_cors()
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(entry.size if wanted is None else wanted.length))
        if wanted is not None:
            self.send_header("Content-Range", f"bytes {wanted.start}-{wanted.end}/{entry.size}")
        if entry.etag is not None:
            self.send_header("ETag", entry.etag)
        if entry.last_modified is not None:
            self.send_header("Last-Modified", formatdate(entry.last_modified, usegmt=True))
        for name, value in fault.headers if fault else ():
            self.send_header(name, value)
        self.end_headers()

    def _send_cors(self) -> None:
        if self.server.owner.cors is not None:
            self.send_header("Access-Control-Allow-Origin", self.server.owner.cors)

    def _send_body(
        self, record: RequestRecord, entry: _Entry, wanted: ByteRange | None, fault: Fault | None
    ) -> None:
        body = _plan_body(entry, wanted, fault)
        try:
            self._write_body(record, entry, body)
        except OSError:  # the client hung up, or stop() cut the connection
            self.close_connection = True
            if not self.server.owner._stopping.is_set():
                with self.server.owner._lock:
                    record.client_closed = True
            return
        if fault is not None and body.send < body.length:
            self._cut(fault, record)

    def _write_body(self, record: RequestRecord, entry: _Entry, body: _Body) -> None:
        owner = self.server.owner
        began = time.monotonic()
        done = 0
        for chunk in entry.chunks(body.start, body.send):
            out = chunk
            if body.flip_from is not None and done + len(chunk) > body.flip_from:
                cut = max(body.flip_from - done, 0)
                out = bytes(chunk[:cut]) + bytes(chunk[cut:]).translate(FLIP)
            if body.rate is not None:
                self._throttle(record, out, began + done / body.rate, body.rate)
            else:
                self._write(record, out)
            done += len(out)
            if owner._stopping.is_set():
                raise ConnectionAbortedError("server stopping")

    def _throttle(
        self, record: RequestRecord, data: bytes | memoryview, began: float, rate: int
    ) -> None:
        """Write ``data`` at ``rate`` bytes/s, the first byte due at ``began``."""
        owner = self.server.owner
        step = max(rate // 20, 1)  # ~20 writes a second keeps the pace smooth
        for pos in range(0, len(data), step):
            due = began + pos / rate - time.monotonic()
            if due > 0 and owner._stopping.wait(due):
                raise ConnectionAbortedError("server stopping")
            self._write(record, data[pos : pos + step])

    def _write(self, record: RequestRecord, data: bytes | memoryview) -> None:
        """Send ``data``, counting it first: a client that has the bytes must find
        them counted. Whatever the kernel did not take is taken off again."""
        owner = self.server.owner
        owner._count(record, len(data))
        view = memoryview(data)
        sent = 0
        try:
            while sent < len(view):
                sent += self.connection.send(view[sent:])
        except OSError:
            owner._count(record, sent - len(view))
            raise

    def _cut(self, fault: Fault, record: RequestRecord) -> None:
        """End a deliberately short body the way ``fault`` says."""
        self.close_connection = True
        if fault.kind == "stall":
            self._stall(record, fault.seconds)
        elif fault.kind == "drop":
            # SO_LINGER 0 makes close() send RST instead of FIN; bytes already
            # queued still reach the client before the reset.
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.server.aborted.add(self.connection)

    def _stall(self, record: RequestRecord, seconds: float) -> None:
        """Send nothing for ``seconds``, until the server stops, or until the client
        closes its end of the connection (recorded in ``record``)."""
        owner = self.server.owner
        deadline = time.monotonic() + seconds
        while not owner._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if not readable:
                continue
            try:
                data = self.connection.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                with owner._lock:
                    record.client_closed = True
                return


def _wanted_range(record: RequestRecord, entry: _Entry) -> ByteRange | Unsatisfiable | None:
    """The range to answer, or ``None`` for the whole body: Range is defined for GET
    only, and a failed If-Range means "send it all" (RFC 9110 §13.1.5, §14.2)."""
    if record.method != "GET" or record.range is None:
        return None
    if record.if_range is not None and not if_range_holds(
        record.if_range, etag=entry.etag, last_modified=entry.last_modified
    ):
        return None
    return parse_range(record.range, entry.size)


def _off_by_one(wanted: ByteRange | None, total: int) -> ByteRange:
    """The range asked for (or the whole body) with its start moved by one byte:
    later when that leaves a byte to send, else earlier (one-byte bodies excepted)."""
    asked = wanted or ByteRange(0, total - 1)
    if asked.start < asked.end:
        return ByteRange(asked.start + 1, asked.end)
    return ByteRange(max(asked.start - 1, 0), asked.end)


def _plan_body(entry: _Entry, wanted: ByteRange | None, fault: Fault | None) -> _Body:
    start, length = (0, entry.size) if wanted is None else (wanted.start, wanted.length)
    if fault is None:
        return _Body(start, length, length)
    if fault.kind in BODY_CUTTING:
        return _Body(start, length, min(fault.after_bytes, max(length - 1, 0)))
    if fault.kind == "wrong_bytes":
        return _Body(start, length, length, flip_from=fault.after_bytes)
    if fault.kind == "slow":
        return _Body(start, length, length, rate=fault.rate)
    return _Body(start, length, length)
