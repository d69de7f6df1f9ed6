"""The HTTP side of a transfer: the `requests` session it fetches with, and the
reader that takes a response body into one reused buffer.

`fetch/transfer.py` owns what is asked for and what the bytes mean; this module owns
how a connection is made (a small receive window, no content decoding). A page's
limits on top of this session are `fetch/guard.py`.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from typing import Any

import requests
import requests.adapters
from urllib3.connection import HTTPConnection

from webmodels import __version__
from webmodels.fetch import guard

RECEIVE_BUFFER = 256 << 10


class _SmallWindowAdapter(requests.adapters.HTTPAdapter):
    """Caps the socket receive buffer. Bytes in kernel buffers are lost when the host
    is killed and must be sent again; loopback autotuning lets them reach megabytes.
    A 256 KiB window still fills any real link (and loopback) at full speed."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["socket_options"] = socket_options()
        super().init_poolmanager(*args, **kwargs)


def socket_options() -> guard.SocketOptions:
    return [
        *HTTPConnection.default_socket_options,
        (socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER),
    ]


def new_session() -> requests.Session:
    session = requests.Session()
    adapter = _SmallWindowAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"webmodels/{__version__}"
    session.headers["Accept-Encoding"] = "identity"  # bytes on the wire are the file
    return session


def body_reader(response: requests.Response) -> Callable[[memoryview], int]:
    """`read(buffer) -> n`: the body into one reused buffer. Straight from the socket
    through http.client's `readinto` where urllib3 exposes it (no per-chunk bytes
    objects and copies: at loopback speed those cost a third of the throughput);
    urllib3's own `read` otherwise. Short bodies are caught by the caller (offset
    against Content-Length), as urllib3 would."""
    raw = response.raw
    inner = getattr(raw, "_fp", None)
    if isinstance(inner, http.client.HTTPResponse):
        return inner.readinto

    def read(buffer: memoryview) -> int:
        chunk = raw.read(len(buffer), decode_content=False)
        buffer[: len(chunk)] = chunk
        return len(chunk)

    return read
