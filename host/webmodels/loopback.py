"""The fast byte path (DESIGN §6): one-time capability URLs on 127.0.0.1.

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

Only GET of ``/m/<token>`` exists. The server binds 127.0.0.1 only, starts on the
first capability asked for, and stops with the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from webmodels.config import CHROMIUM_EXTENSION_ID
from webmodels.digest import Digest

log = logging.getLogger(__name__)

TOKEN_TTL_S = 30.0  # from issuing to the start of the request
MAX_LIVE_TOKENS = 256  # bounded: older ones are dropped first
# A Firefox extension origin: moz-extension://<the add-on's per-profile UUID>.
FIREFOX_ORIGIN = re.compile(r"moz-extension://[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")


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
    ) -> None:
        self.allowed = allowed
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}
        self._server: ThreadingHTTPServer | None = None
        self.served = 0  # requests answered with bytes (for `hello`-free diagnostics)

    @property
    def port(self) -> int:
        return self._start().server_address[1]

    def pin(self, origin: str) -> bool:
        """Takes `origin` as the extension's own (see `pinned`); True when it is."""
        with self._lock:
            before, self.allowed = self.allowed, pinned(self.allowed, origin)
        if self.allowed != before:
            log.info("loopback: serving %s only", origin)
        return origin in self.allowed

    def issue(self, digest: Digest, path: Path, size: int) -> Capability:
        """A one-time URL for the file at `path` (already located and size-checked)."""
        return self._grant(_Grant(digest.short, path, None, size, 0.0))

    def issue_bytes(self, data: bytes) -> Capability:
        """A one-time URL for bytes held in memory."""
        return self._grant(_Grant("output", None, data, len(data), 0.0))

    def _grant(self, grant: _Grant) -> Capability:
        server = self._start()
        token = secrets.token_urlsafe(16)  # 128 bits
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            while len(self._grants) >= MAX_LIVE_TOKENS:
                self._grants.pop(next(iter(self._grants)))
            self._grants[token] = dataclasses.replace(grant, expires=now + self.ttl_s)
        url = f"http://127.0.0.1:{server.server_address[1]}/m/{token}"
        return Capability(url, grant.size, self.ttl_s)

    def redeem(self, token: str) -> _Grant | None:
        """The grant of a live token, which is then spent; None otherwise."""
        with self._lock:
            grant = self._grants.pop(token, None)
        if grant is None or grant.expires < self._clock():
            return None
        return grant

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._grants.clear()
        if server is not None:
            server.shutdown()
            server.server_close()

    def _drop_expired(self, now: float) -> None:
        for token in [t for t, g in self._grants.items() if g.expires < now]:
            del self._grants[token]

    def _start(self) -> ThreadingHTTPServer:
        with self._lock:
            if self._server is None:
                server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, name="loopback", daemon=True).start()
                self._server = server
                log.info("loopback byte path on 127.0.0.1:%d", server.server_address[1])
            return self._server


def _handler(owner: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "webmodels"
        sys_version = ""

        def do_GET(self) -> None:
            origin = self.headers.get("Origin")
            if self.headers.get("Host") != f"127.0.0.1:{owner.port}":
                self._refuse(421, "wrong Host")  # DNS rebinding: not our name
                return
            if not caller_allowed(origin, self.headers.get("Sec-Fetch-Site"), owner.allowed):
                log.warning("loopback: refused a request (Origin %r)", origin)
                self._refuse(403, "origin not allowed")
                return
            token = self.path.removeprefix("/m/") if self.path.startswith("/m/") else ""
            grant = owner.redeem(token) if token else None
            if grant is None:
                self._refuse(404, "no such capability", origin=origin)
                return
            self._send(grant, origin)

        def _send(self, grant: _Grant, origin: str | None) -> None:
            try:
                with contextlib.ExitStack() as stack:
                    fh = stack.enter_context(grant.path.open("rb")) if grant.path else None
                    self.send_response(200)
                    self._common(origin)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(grant.size))
                    self.end_headers()
                    if fh is not None:
                        self.connection.sendfile(fh, 0, grant.size)
                    else:
                        self.wfile.write(grant.data or b"")
                owner.served += 1
            except OSError as exc:  # the page went away mid-transfer, or the file did
                log.info("loopback transfer of %s ended: %s", grant.label, exc)

        def _refuse(self, status: int, why: str, *, origin: str | None = None) -> None:
            body = why.encode()
            self.send_response(status)
            if origin is not None:
                self._common(origin)  # let the extension read the status
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _common(self, origin: str | None) -> None:
            if origin is not None:
                self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Vary", "Origin")

        def do_POST(self) -> None:
            self._refuse(405, "GET only")

        do_PUT = do_DELETE = do_PATCH = do_POST

        def log_message(self, format: str, *args: object) -> None:
            log.debug("loopback: " + format, *args)

    return Handler
