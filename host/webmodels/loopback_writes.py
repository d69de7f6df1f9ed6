"""Writes over the loopback byte path: the body of a PUT to a write URL, taken in
pieces by the upload it was issued for, and the JSON reply once the bytes are
verified and published (loopback.py checks the caller and the token first)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from webmodels.errors import HostError
from webmodels.listener import RequestHead, response_head
from webmodels.loopback_http import common_headers, refuse
from webmodels.protocol.envelope import dumps

log = logging.getLogger("webmodels.loopback")

# A write's body: pieces of this size, each within the listener's send timeout, and all
# of it at no less than MIN_BODY_RATE (a stalled writer cannot hold a thread forever).
BODY_PIECE = 1 << 20
MIN_BODY_RATE = 1 << 20  # bytes per second, after a grace of the listener's send timeout

# Takes a write's body (pieces, in order) in; returns the reply's result, or raises
# HostError (which the page sees cleaned, as from any page method).
Receive = Callable[[Iterator[bytes]], Mapping[str, Any]]


def take_upload(
    conn: socket.socket,
    head: RequestHead,
    receive: Receive,
    *,
    size: int,
    on_drop: Callable[[], object] | None,
    origin: str | None,
) -> None:
    """Receives a write's body into its upload, and answers once it is published."""
    length = head.header("Content-Length")
    if head.header("Transfer-Encoding") is not None or length != str(size):
        if on_drop is not None:
            on_drop()  # the token is spent: the upload goes with it
        refuse(conn, 411, f"Content-Length must be {size}", origin=origin)
        return
    started = time.monotonic()
    try:
        result = receive(body_pieces(conn, head.body, size))
        status, reply = 200, {"ok": True, "result": dict(result)}
        log.info("loopback write: %d bytes in %.2f s", size, time.monotonic() - started)
    except HostError as exc:
        log.info("loopback write for a page: %s: %s", exc.code, exc.message)
        status, reply = 422, {"ok": False, "error": exc.for_page().to_wire()}
    body = dumps(reply)
    headers = [*common_headers(origin), ("Content-Type", "application/json")]
    headers.append(("Content-Length", str(len(body))))
    try:
        conn.sendall(response_head(status, headers) + body)
    except OSError as exc:
        log.info("loopback: write reply not sent: %s", exc)


def body_pieces(conn: socket.socket, start: bytes, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of a request body (`start` already read), in pieces; a
    connection that closes, stalls or crawls ends it early with `bad_request`."""
    timeout = conn.gettimeout() or 30.0
    deadline = time.monotonic() + timeout + size / MIN_BODY_RATE
    left = size
    if start:
        yield start[:left]
        left -= min(left, len(start))
    while left > 0:
        if time.monotonic() > deadline:
            raise HostError("bad_request", "the upload was too slow")
        try:
            piece = conn.recv(min(left, BODY_PIECE))
        except OSError as exc:
            raise HostError("bad_request", f"the upload ended early: {exc}") from exc
        if not piece:
            raise HostError("bad_request", f"the upload ended {left} bytes early")
        left -= len(piece)
        yield piece
