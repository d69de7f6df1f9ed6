"""The loopback server's bounds (host/webmodels/listener.py; PRIVACY.md, hole 6): a
local process holding hundreds of idle or half-sent connections gets no thread per
connection, its connections are closed after the head timeout, and the extension's
reads still complete — through a real host process and real sockets."""

from __future__ import annotations

import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest

from support.host import HostProcess
from support.idle import (
    closed_by_server,
    loopback_port,
    open_and_read,
    open_idle,
    store_for_page,
    thread_count,
)
from webmodels.listener import Limits, Listener, RequestHead, head_end, parse_head, response_head

IDLE = 500
SIZE = 4 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/task")
def test_idle_connections_cost_no_threads_and_are_closed(home: Path) -> None:
    host = HostProcess(home)
    conns = []
    try:
        digest = store_for_page(host, os.urandom(SIZE))
        unloaded = statistics.median(open_and_read(host, digest, SIZE) for _ in range(5))
        before = thread_count(host.proc.pid)
        conns = open_idle(loopback_port(host, digest), IDLE)
        time.sleep(1.0)  # let the server accept them all
        during = thread_count(host.proc.pid)
        loaded = statistics.median(open_and_read(host, digest, SIZE) for _ in range(5))
        print(
            f"\nhost threads: {before} before, {during} with {IDLE} idle connections; "
            f"models.open + read of {SIZE >> 20} MiB: {unloaded * 1000:.1f} ms unloaded, "
            f"{loaded * 1000:.1f} ms with them open ({loaded / unloaded:.2f}x)"
        )
        # Bounded: the listener's handler pool, not one thread per connection (the old
        # server had 500 more here). A little slack for the host's own request pool.
        assert during <= before + Limits().handlers + 4
        # The bound is 2x; the absolute slack keeps a busy 2-core machine from
        # failing a millisecond-scale measurement.
        assert loaded < 2 * unloaded + 0.25
        deadline = time.monotonic() + Limits().head_timeout_s + 10
        while time.monotonic() < deadline and not all(closed_by_server(c) for c in conns):
            time.sleep(0.25)
        still_open = sum(not closed_by_server(c) for c in conns)
        print(f"connections still open after the head timeout: {still_open} of {IDLE}")
        assert still_open == 0
        assert open_and_read(host, digest, SIZE) > 0  # and the server still serves
    finally:
        for conn in conns:
            conn.close()
        host.kill()


def test_request_heads_are_parsed_without_sockets() -> None:
    head = b"GET /m/abc HTTP/1.1\r\nHost: 127.0.0.1:5\r\nOrigin: x\r\norigin: y\r\n\r\n"
    assert head_end(head[:-2]) == -1 and head_end(head + b"body") == len(head)
    parsed = parse_head(head)
    assert parsed is not None and (parsed.method, parsed.target) == ("GET", "/m/abc")
    assert parsed.header("host") == "127.0.0.1:5" and parsed.header("ORIGIN") == "x"
    assert parse_head(b"GET /m/abc\r\n\r\n") is None  # no version
    assert parse_head(b"GET / HTTP/1.1\r\n folded: x\r\n\r\n") is None
    assert parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n") is None
    reply = response_head(404, [("Content-Length", "0")])
    assert reply == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_over_the_bounds_connections_are_closed_oldest_first() -> None:
    """In process, with small limits: past `max_pending` the oldest half-sent
    connection goes; an oversized head is closed; a complete request is answered."""
    answered = []

    def answer(conn: socket.socket, head: RequestHead | None) -> None:
        answered.append(head)
        conn.sendall(response_head(200, [("Content-Length", "0")]))

    listener = Listener(answer, Limits(max_pending=2, max_head_bytes=64), host="127.0.0.1")
    threads = threading.active_count()
    try:
        first, second, third = (open_idle(listener.port, 1)[0] for _ in range(3))
        huge = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
        huge.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 100)
        assert wait_closed(first) and wait_closed(huge)
        assert not closed_by_server(third)
        third.setblocking(True)
        third.sendall(b"GET /m/t HTTP/1.1\r\nHost: x\r\n\r\n")
        assert third.recv(100).startswith(b"HTTP/1.1 200 OK\r\n")
        assert [h.target for h in answered if h] == ["/m/t"]
        assert threading.active_count() <= threads + Limits().handlers
        for conn in (first, second, third, huge):
            conn.close()
    finally:
        listener.close()


def wait_closed(conn: socket.socket) -> bool:
    deadline = time.monotonic() + 10
    while not closed_by_server(conn):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
