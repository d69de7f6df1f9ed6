"""The fast byte path (docs/design.md#fast-byte-paths): one-time capability URLs on 127.0.0.1.

Native messaging carries model bytes to a page at ~25-30 MB/s (1 MiB frames of
base64). For a page that reads a whole model, the host instead hands the extension a
URL on a loopback HTTP server — a 128-bit random token, valid once and for a few
seconds, for one model — and the extension's own bridge frame fetches it and transfers
the ArrayBuffer to the page. The page never sees the URL (a page fetching loopback
itself would meet the browser's Local Network Access prompt; and it must not be able
to hand the URL around).

Each request is checked before a byte is sent:

* the ``Host`` header must name this server exactly (``127.0.0.1:<port>``), so a DNS
  rebinding page that reaches the port under another name is refused;
* the request must come from the calling extension (`caller_allowed`): a web page's
  fetch carries its own ``Origin`` (or ``Sec-Fetch-Site: cross-site``) and is refused
  even with a valid token. In Firefox the extension's origin holds a per-profile UUID
  that the browser's argv does not name (only the add-on id): nothing is served until
  the extension's service worker has told the host its exact origin in a trusted
  ``hello`` (`LoopbackServer.pin`), which only this extension can send;
* the token must be live: unknown, used or expired tokens all get the same 404.

GET of ``/m/<token>`` reads (a whole model, or its tail from an offset bound to the
token when a read that broke resumes); PUT of ``/u/<token>`` writes (`issue_upload`: a Cross-Origin
Storage write at loopback speed, with its CORS preflight). A write URL is bound to one
upload — its partition, announced SHA-256 and size — and the request must carry exactly
that many bytes; the reply comes only once they are verified and published
(`loopback_writes.py` takes the body in; `loopback_http.py` has the bare replies).

The server binds 127.0.0.1 only, starts on the first capability asked for, and stops
with the host. Its threads and the time a connection may take are bounded
(`listener.py`): idle and half-sent connections from a local process cost no thread
and are closed after a few seconds; a write's body has its own threads.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from webmodels.config import CHROMIUM_EXTENSION_ID
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.listener import Listener, RequestHead, response_head
from webmodels.loopback_http import common_headers, preflight, refuse
from webmodels.loopback_writes import Receive, take_upload
from webmodels.runtime.outputs import MAX_HELD_BYTES

log = logging.getLogger(__name__)

TOKEN_TTL_S = 30.0  # from issuing to the start of the request
# Live tokens are bounded per partition (a partition's new token drops its own oldest,
# never another site's: PRIVACY.md, hole 15) and host-wide; at the host-wide ceiling a
# partition with tokens of its own still drops its own oldest, and one with none gets
# the same `busy` as a partition over its byte bound.
MAX_LIVE_TOKENS = 64  # per partition
MAX_TOTAL_TOKENS = 4096  # host-wide: 64 partitions each at their bound within the TTL
# A Firefox extension origin: moz-extension://<the add-on's per-profile UUID>.
FIREFOX_ORIGIN = re.compile(r"moz-extension://[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
# Bytes in memory behind live grants (session outputs). A grant keeps its output alive
# after the output store dropped it, so without a bound a page re-opening outputs
# held up to MAX_LIVE_TOKENS of them beyond MAX_HELD_BYTES (PRIVACY.md, hole 15). Each
# partition has its own bound; the host-wide ceiling answers exactly like it.
MAX_GRANT_BYTES = MAX_HELD_BYTES
MAX_TOTAL_GRANT_BYTES = 2 * MAX_HELD_BYTES
GRANTS_FULL = "too many output reads are open at once; read them in chunks, or try again"


@dataclass(frozen=True, slots=True)
class Capability:
    url: str
    size: int
    expires_in: float


@dataclass(frozen=True, slots=True)
class _Grant:
    label: str  # for the log
    path: Path | None  # a stored model's file, or
    data: bytes | None  # bytes in memory (a large session output)
    size: int
    expires: float
    owner: str | None = None  # the partition a grant of bytes was issued to
    receive: Receive | None = None  # a write URL's upload
    on_drop: Callable[[], object] | None = None  # a write URL spent unused, or expired
    stream: Callable[[socket.socket], object] | None = None  # a file kept as segments
    start: int = 0  # where in the file at `path` the bytes begin (a resumed read)


def allowed_origins(caller: str | None) -> tuple[str, ...]:
    """Origins whose fetches the server answers: the extension that launched the host
    (its argv), or — for a host not started by a browser — the project's extension.
    None for Firefox, which passes the manifest path and the add-on id: its origin
    (a per-profile UUID) is pinned later by the extension itself (`pin`)."""
    if caller is None:
        return (f"chrome-extension://{CHROMIUM_EXTENSION_ID}",)
    for word in caller.split():
        if word.startswith("chrome-extension://"):
            return (word.rstrip("/"),)
    return ()


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    if not origin:
        return False
    return any(hmac.compare_digest(origin.encode(), entry.encode()) for entry in allowed)


def pinned(allowed: tuple[str, ...], announced: str) -> tuple[str, ...]:
    """The allowed origins once the extension announced `announced` as its own: a
    Firefox extension origin is taken when none is known yet, and only then (the
    first announcement wins; an origin from the argv is never replaced)."""
    if allowed or not FIREFOX_ORIGIN.fullmatch(announced):
        return allowed
    return (announced,)


# What browsers send for an extension frame's fetch, which carries no Origin:
# Chromium 156 says "none", Firefox 153 "same-origin" (measured). A web page cannot
# produce either for this server: its fetches are cross-site (or same-site from another
# 127.0.0.1 port), and "same-origin" would need a page served by this server itself.
_EXTENSION_FETCH_SITES = ("none", "same-origin")


def caller_allowed(origin: str | None, fetch_site: str | None, allowed: tuple[str, ...]) -> bool:
    """The extension asking: an allowed Origin, or no Origin and a `Sec-Fetch-Site` only
    an extension frame sends here. Pages cannot set either header (both are forbidden
    request headers): their cross-origin fetches carry their own Origin, and their
    no-cors loads ``Sec-Fetch-Site: cross-site`` (or ``same-site``)."""
    if not allowed:
        return False  # Firefox, before the extension told its origin: nothing is served
    if origin is not None:
        return origin_allowed(origin, allowed)
    return fetch_site in _EXTENSION_FETCH_SITES


class LoopbackServer:
    def __init__(
        self,
        allowed: tuple[str, ...],
        *,
        ttl_s: float = TOKEN_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_grant_bytes: int = MAX_GRANT_BYTES,
        max_total_grant_bytes: int = MAX_TOTAL_GRANT_BYTES,
    ) -> None:
        self.allowed = allowed
        self.ttl_s = ttl_s
        self.max_grant_bytes = max_grant_bytes
        self.max_total_grant_bytes = max_total_grant_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}
        self._listener: Listener | None = None
        self.served = 0  # requests answered with bytes (for `hello`-free diagnostics)

    @property
    def port(self) -> int:
        return self._start().port

    def pin(self, origin: str) -> bool:
        """Takes `origin` as the extension's own (see `pinned`); True when it is."""
        with self._lock:
            before, self.allowed = self.allowed, pinned(self.allowed, origin)
        if self.allowed != before:
            log.info("loopback: serving %s only", origin)
        return origin in self.allowed

    def issue(
        self, digest: Digest, path: Path, size: int, *, owner: str = "", start: int = 0
    ) -> Capability:
        """A one-time URL for the file at `path` (already located and size-checked), for
        partition `owner` ("" for trusted callers): its bytes from `start` on (a read
        that broke resumes there), `size - start` of them."""
        grant = _Grant(digest.short, path, None, size - start, 0.0, owner, start=start)
        return self._grant(grant)

    def issue_stream(
        self, digest: Digest, size: int, stream: Callable[[socket.socket], object], *, owner: str
    ) -> Capability:
        """A one-time URL for a stored file that `stream` sends into the connection
        (a file kept as segments, store/segmented.py), like `issue` otherwise."""
        return self._grant(_Grant(digest.short, None, None, size, 0.0, owner, stream=stream))

    def issue_bytes(self, data: bytes, *, owner: str) -> Capability:
        """A one-time URL for bytes held in memory, for partition `owner`; `busy` when
        the bytes behind its live grants (or all of them) would pass the bound."""
        return self._grant(_Grant("output", None, data, len(data), 0.0, owner))

    def issue_upload(
        self, size: int, receive: Receive, *, owner: str, on_drop: Callable[[], object]
    ) -> Capability:
        """A one-time URL to PUT exactly `size` bytes to, which `receive` takes in;
        `on_drop` runs when the URL is dropped unused (expired, or pushed out)."""
        grant = _Grant("upload", None, None, size, 0.0, owner, receive, on_drop)
        return self._grant(grant, "u")

    def _grant(self, grant: _Grant, kind: str = "m") -> Capability:
        port = self.port
        token = secrets.token_urlsafe(16)  # 128 bits
        with self._lock:
            now = self._clock()
            dropped = self._drop_expired(now)
            try:
                self._check_room(grant)
                dropped += self._make_room(grant.owner)
                self._grants[token] = dataclasses.replace(grant, expires=now + self.ttl_s)
            finally:
                _dropped(dropped)
        return Capability(f"http://127.0.0.1:{port}/{kind}/{token}", grant.size, self.ttl_s)

    def redeem(self, token: str, *, upload: bool = False) -> _Grant | None:
        """The grant of a live token of the kind asked for, which is then spent; None
        otherwise."""
        with self._lock:
            grant = self._grants.get(token)
            if grant is None or (grant.receive is not None) != upload:
                return None
            del self._grants[token]
        if grant.expires < self._clock():
            _dropped([grant])
            return None
        return grant

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            dropped = list(self._grants.values())
            self._grants.clear()
        _dropped(dropped)
        if listener is not None:
            listener.close()

    def _check_room(self, grant: _Grant) -> None:
        if grant.data is None:
            return  # a stored file: nothing held in memory
        live = self._grants.values()
        own = _held_bytes((g for g in live if g.owner == grant.owner), grant.data)
        if own > self.max_grant_bytes or _held_bytes(live, grant.data) > self.max_total_grant_bytes:
            raise HostError("busy", GRANTS_FULL)  # one answer for both: no other site shows

    def _make_room(self, owner: str | None) -> list[_Grant]:
        """Drops the partition's own oldest tokens past its bound (or at the host-wide
        ceiling); never another partition's."""
        own = [t for t, g in self._grants.items() if g.owner == owner]  # oldest first
        dropped = []
        while own and (len(own) >= MAX_LIVE_TOKENS or len(self._grants) >= MAX_TOTAL_TOKENS):
            dropped.append(self._grants.pop(own.pop(0)))
        if len(self._grants) >= MAX_TOTAL_TOKENS:
            _dropped(dropped)
            raise HostError("busy", GRANTS_FULL)  # as the byte bound: no other site shows
        return dropped

    def _drop_expired(self, now: float) -> list[_Grant]:
        return [self._grants.pop(t) for t, g in list(self._grants.items()) if g.expires < now]

    def _start(self) -> Listener:
        with self._lock:
            if self._listener is None:
                self._listener = Listener(self._answer, host="127.0.0.1")
                log.info("loopback byte path on 127.0.0.1:%d", self._listener.port)
            return self._listener

    # -- answering (on the listener's handler threads) ---------------------------

    def _answer(self, conn: socket.socket, head: RequestHead | None) -> Callable[[], None] | None:
        if head is None:
            refuse(conn, 400, "bad request")
            return None
        if head.method not in ("GET", "PUT", "OPTIONS"):
            refuse(conn, 405, "GET or PUT only")
            return None
        origin = head.header("Origin")
        if head.header("Host") != f"127.0.0.1:{self.port}":
            refuse(conn, 421, "wrong Host")  # DNS rebinding: not our name
            return None
        if not caller_allowed(origin, head.header("Sec-Fetch-Site"), self.allowed):
            log.warning("loopback: refused a request (Origin %r)", origin)
            refuse(conn, 403, "origin not allowed")
            return None
        if head.method == "OPTIONS":  # the extension's CORS preflight of a PUT
            preflight(conn, origin)
            return None
        upload = head.method == "PUT"
        prefix = "/u/" if upload else "/m/"
        token = head.target.removeprefix(prefix) if head.target.startswith(prefix) else ""
        grant = self.redeem(token, upload=upload) if token else None
        if grant is None:
            refuse(conn, 404, "no such capability", origin=origin)
            return None
        if upload:
            receive, size, on_drop = grant.receive, grant.size, grant.on_drop
            assert receive is not None
            return lambda: take_upload(
                conn, head, receive, size=size, on_drop=on_drop, origin=origin
            )
        if _send(conn, grant, origin):
            self.served += 1
        return None


def _dropped(grants: Iterable[_Grant]) -> None:
    for grant in grants:
        if grant.on_drop is not None:
            grant.on_drop()


def _held_bytes(grants: Iterable[_Grant], new: bytes) -> int:
    """Memory behind `grants` plus `new`: grants of one output share its bytes."""
    held = {id(g.data): len(g.data) for g in grants if g.data is not None}
    held[id(new)] = len(new)
    return sum(held.values())


def _send(conn: socket.socket, grant: _Grant, origin: str | None) -> bool:
    headers = [*common_headers(origin), ("Content-Type", "application/octet-stream")]
    headers.append(("Content-Length", str(grant.size)))
    try:
        if grant.path is not None:
            with grant.path.open("rb") as fh:
                conn.sendall(response_head(200, headers))
                conn.sendfile(fh, grant.start, grant.size)
        elif grant.stream is not None:
            conn.sendall(response_head(200, headers))
            grant.stream(conn)
        else:
            conn.sendall(response_head(200, headers))
            conn.sendall(grant.data or b"")
        return True
    except OSError as exc:  # the page went away mid-transfer (or stalled), or the file did
        log.info("loopback transfer of %s ended: %s", grant.label, exc)
        return False
