"""Waking a transfer's blocked read from another thread: the response a transfer reads
now, and shutting its socket down when the transfer is cancelled or stopped.

A transfer reads its body in 256 KiB pieces and looks at its stop flag between them
(fetch/transfer.py); without this a cancelled transfer would go on until its current
read fills, or until the stall timeout on a server that went silent, holding the
socket, the partial file and its thread.

Why shutting the socket down rather than reading with a short timeout in a loop:
a timeout inside http.client's buffered ``readinto`` loses the bytes already read and
leaves the socket's file object unusable, and a loop would wake every few
milliseconds for nothing; a shutdown costs nothing until it is needed, wakes the read
at once, and the server sees the connection closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


class BodyReads:
    """The response one transfer reads now (at most one at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: requests.Response | None = None

    @contextlib.contextmanager
    def reading(self, response: requests.Response) -> Iterator[None]:
        """While the body of `response` is read, `interrupt` may shut it."""
        with self._lock:
            self._response = response
        try:
            yield
        finally:
            with self._lock:
                self._response = None

    def interrupt(self) -> None:
        """Wake the read in flight, if any (any thread)."""
        with self._lock:
            response = self._response
        if response is not None:
            shut(response)


def shut(response: requests.Response) -> None:
    """Shut the socket under `response` down for both directions: a thread blocked in
    ``recv`` on it returns at once (the body ends early) and the server sees the
    connection closed. Not ``close``: on Linux closing a descriptor that another thread
    is blocked reading does not wake that thread, and the body's file object holds the
    socket open anyway. ``socket.socket.shutdown`` also under TLS: ``SSLSocket``'s own
    would drop the TLS state under the reading thread."""
    connection = getattr(response.raw, "connection", None)  # urllib3's HTTPConnection
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
