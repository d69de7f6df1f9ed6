"""The fast write path (loopback.py, ``cos.write.open``): a Cross-Origin Storage write
as one PUT to a one-time URL on 127.0.0.1, through a real host process and real HTTP
requests."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import requests

from support.host import HostProcess
from webmodels.config import CHROMIUM_EXTENSION_ID

EXTENSION = f"chrome-extension://{CHROMIUM_EXTENSION_ID}"
SITE_A = {
    "partition": {"top_site": "http://a.localhost:8000", "origin": "http://a.localhost:8000"},
    "user_activation": True,
}
SITE_B = {
    "partition": {"top_site": "http://b.localhost:8000", "origin": "http://b.localhost:8000"},
    "user_activation": True,
}


def open_write(host: HostProcess, data: bytes, context: dict[str, Any] = SITE_A) -> str:
    params = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    opened: dict[str, Any] = host.result("cos.write.open", params, context=context)
    assert opened["size"] == len(data) and opened["expires_in"] > 0
    url: str = opened["url"]
    assert url.startswith("http://127.0.0.1:") and "/u/" in url
    return url


def put(url: str, data: bytes, origin: str = EXTENSION) -> requests.Response:
    return requests.put(url, data=data, headers={"Origin": origin}, timeout=120)


def found(host: HostProcess, data: bytes, context: dict[str, Any] = SITE_A) -> bool:
    sha256 = hashlib.sha256(data).hexdigest()
    return bool(host.result("cos.lookup", {"sha256": sha256}, context=context)["found"])


def partials(home: Path) -> list[Path]:
    return list(home.rglob("*.partial"))


def test_a_write_url_stores_the_bytes_once_for_the_extension_only(home: Path) -> None:
    data = os.urandom(64 << 20)
    host = HostProcess(home)
    try:
        url = open_write(host, data)
        # Refused before the token is spent: a page's Origin, another extension's, a
        # page's no-cors shape, another Host; and the read path's GET of a write URL.
        assert put(url, data, "http://a.localhost:8000").status_code == 403
        assert put(url, data, "chrome-extension://" + "b" * 32).status_code == 403
        assert requests.get(url, headers={"Origin": EXTENSION}, timeout=10).status_code == 404
        preflight = requests.options(url, headers={"Origin": EXTENSION}, timeout=10)
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == EXTENSION
        assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
        started = time.perf_counter()
        reply = put(url, data)
        seconds = time.perf_counter() - started
        print(
            f"\n64 MiB write through the loopback URL: {64 / seconds:.0f} MiB/s ({seconds:.2f} s)"
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["Access-Control-Allow-Origin"] == EXTENSION
        model = reply.json()["result"]["model"]
        assert model["sha256"] == hashlib.sha256(data).hexdigest() and model["size"] == len(data)
        assert found(host, data) and not found(host, data, SITE_B)
        assert put(url, data).status_code == 404  # replay: spent
        # Bit-exact: read back through the read path.
        sha256 = hashlib.sha256(data).hexdigest()
        read = host.result("models.open", {"sha256": sha256}, context=SITE_A)["url"]
        assert requests.get(read, headers={"Origin": EXTENSION}, timeout=60).content == data
    finally:
        host.close()


def test_wrong_bytes_are_refused_and_nothing_is_published(home: Path) -> None:
    data = os.urandom(1 << 20)
    host = HostProcess(home)
    try:
        wrong = put(open_write(host, data), os.urandom(len(data)))
        assert wrong.status_code == 422
        assert wrong.json()["error"]["code"] == "integrity_mismatch"
        assert not found(host, data)
        short = requests.put(
            open_write(host, data), data=data[:-1], headers={"Origin": EXTENSION}, timeout=10
        )
        assert short.status_code == 411  # Content-Length other than announced
        assert not found(host, data)
        assert put(open_write(host, data), data).status_code == 200  # the slots came back
        assert found(host, data)
    finally:
        host.close()
    assert partials(home) == []


def test_a_write_dropped_halfway_publishes_nothing_and_leaves_no_temp_file(home: Path) -> None:
    data = os.urandom(8 << 20)
    host = HostProcess(home)
    try:
        url = open_write(host, data)
        port = int(url.split(":")[2].split("/")[0])
        head = (
            f"PUT /{url.split('/', 3)[3]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Origin: {EXTENSION}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(head.encode() + data[: len(data) // 2])
        assert not found(host, data)
        # A second write, killed with its host halfway.
        second = open_write(host, data)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(head.replace(url.split("/")[-1], second.split("/")[-1]).encode())
            conn.sendall(data[: len(data) // 2])
            host.kill()
    finally:
        host.kill()
    host = HostProcess(home)
    try:
        assert not found(host, data)
        assert partials(home) == []
    finally:
        host.close()
