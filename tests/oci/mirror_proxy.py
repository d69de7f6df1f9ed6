"""A loopback HTTP proxy in front of the test registry: it forwards each request
(Range and Authorization included) and streams the registry's reply back, optionally
with every body byte inverted (a mirror serving wrong bytes) or at a slow rate (a pull
that can be killed half-way). It records the path and Range of each GET."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

_PASSED = (
    "Content-Length",
    "Content-Range",
    "Content-Type",
    "ETag",
    "Accept-Ranges",
    "Docker-Content-Digest",
    "WWW-Authenticate",
)


@dataclass
class ProxyState:
    upstream: str  # "127.0.0.1:PORT"
    corrupt: bool = False
    rate: int | None = None  # bytes per second; None: as fast as it comes
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        state.seen.append((self.path, self.headers.get("Range")))
        headers = {
            k: v for k, v in self.headers.items() if k in ("Range", "Authorization", "Accept")
        }
        with requests.get(
            f"http://{state.upstream}{self.path}", headers=headers, stream=True, timeout=30
        ) as reply:
            self.send_response(reply.status_code)
            for name in _PASSED:
                if name in reply.headers:
                    self.send_header(name, reply.headers[name])
            if "Content-Length" not in reply.headers:
                self.send_header("Content-Length", "0")
            self.end_headers()
            try:
                for chunk in reply.raw.stream(16 * 1024, decode_content=False):
                    if state.corrupt:
                        chunk = bytes(b ^ 0xFF for b in chunk)
                    self.wfile.write(chunk)
                    if state.rate:
                        time.sleep(len(chunk) / state.rate)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ProxyState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def registry_proxy(upstream: str, **options: object) -> Iterator[tuple[str, ProxyState]]:
    """``(host:port of the proxy, its state)``; the state may be changed while it runs."""
    state = ProxyState(upstream, **options)  # type: ignore[arg-type]
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
