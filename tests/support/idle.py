"""Idle and half-sent connections to a host's loopback server, and timed reads
through it (tests/test_loopback_bounds.py, scripts/bench/loopback_idle.py)."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from pathlib import Path

import requests

from support.host import HostProcess
from webmodels.config import CHROMIUM_EXTENSION_ID

EXTENSION = f"chrome-extension://{CHROMIUM_EXTENSION_ID}"
PAGE = {
    "partition": {"top_site": "http://a.localhost:8000", "origin": "http://a.localhost:8000"},
    "user_activation": True,
}


def store_for_page(host: HostProcess, data: bytes) -> str:
    """Stores `data` for site a (a Cross-Origin Storage write); its hash."""
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=PAGE)
    for offset in range(0, len(data), 512 << 10):
        piece = base64.b64encode(data[offset : offset + (512 << 10)]).decode()
        chunk = {"upload_id": begun["upload_id"], "offset": offset, "data": piece}
        host.result("cos.write.chunk", chunk, context=PAGE)
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=PAGE)
    return digest


def open_and_read(host: HostProcess, digest: str, size: int) -> float:
    """What a page's `arrayBuffer()` costs the host: `models.open`, then the
    extension's GET of the one-time URL. Seconds."""
    started = time.perf_counter()
    url = host.result("models.open", {"sha256": digest}, context=PAGE)["url"]
    reply = requests.get(url, headers={"Origin": EXTENSION}, timeout=60)
    assert reply.status_code == 200 and len(reply.content) == size
    return time.perf_counter() - started


def loopback_port(host: HostProcess, digest: str) -> int:
    url = host.result("models.open", {"sha256": digest}, context=PAGE)["url"]
    return int(url.split(":")[2].split("/")[0])


def open_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections: every other one sends nothing, the rest half a request."""
    conns = []
    for n in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        if n % 2:
            conn.sendall(f"GET /m/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        conns.append(conn)
    return conns


def closed_by_server(conn: socket.socket) -> bool:
    """True once the server closed `conn` (EOF or reset); never blocks."""
    conn.setblocking(False)
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))
