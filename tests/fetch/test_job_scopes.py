"""A download job belongs to one partition (PRIVACY.md, hole 1), through a real host
process and real local HTTP servers: a site that asks for bytes another site is
downloading right now gets its own transfer from its own URLs, as if nobody else were
downloading them. One site's requests, and common models, still share one transfer."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privacy.signing import Signer, entry, trusting_config
from support.contexts import PAGE_A, PAGE_B
from support.held import held_in
from support.host import HostProcess, run_cli
from support.httpserver import Fault, ModelServer

# Loopback page origins (as a browser's *.localhost): pages that may reach loopback
# servers. Servers allow any origin, as real model hosts do.
A = "http://a.localhost:8000"
B = "http://b.localhost:8000"
SIZE = 6 << 20
RATE = 2 << 20  # 3 s for the whole file: B asks while A is mid-way


def slow(rate: int = RATE) -> Fault:
    return Fault(kind="slow", rate=rate, times=None)


def integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def load(request_id: int, url: str, data: bytes, context: dict[str, Any]) -> dict[str, Any]:
    query = {"url": url, "integrity": integrity(data)}
    return {
        "id": request_id,
        "method": "models.load",
        "params": {"query": query},
        "context": context,
    }


class Messages:
    """A host's messages, sorted by request id as they arrive."""

    def __init__(self, host: HostProcess) -> None:
        self.host = host
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.replies: dict[int, dict[str, Any]] = {}

    def pump(self) -> None:
        message = self.host.recv(timeout=60)
        if "event" in message:
            self.events.setdefault(message["id"], []).append(message)
        else:
            self.replies[message["id"]] = message

    def until(self, done: Any) -> None:
        deadline = time.monotonic() + 60
        while not done():
            assert time.monotonic() < deadline
            self.pump()

    def loaded(self, request_id: int) -> int:
        events = self.events.get(request_id, [])
        return int(events[-1]["loaded"]) if events else 0


def assert_one_transfer(
    host: HostProcess, server: ModelServer, url: str, data: bytes, *, second: dict[str, Any]
) -> None:
    """A loads `url`; once its transfer is under way `second` asks for the same bytes;
    both succeed and the server saw one transfer. Kills `host` at the end."""
    seen = Messages(host)
    try:
        host.send(load(1, url, data, PAGE_A))
        seen.until(lambda: seen.loaded(1) > 0)
        host.send(load(2, url, data, second))
        seen.until(lambda: 1 in seen.replies and 2 in seen.replies)

        assert seen.replies[1]["ok"] and seen.replies[2]["ok"]
        assert server.transfers("/m.bin") == 1
    finally:
        host.kill()


@pytest.fixture
def b_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


def test_a_site_never_joins_another_sites_download(
    home: Path, model_server: ModelServer, b_server: ModelServer
) -> None:
    data = os.urandom(SIZE)
    garbage = os.urandom(SIZE)  # B's own server serves other bytes under the same name
    a_url = model_server.add("/m.bin", data)
    b_url = b_server.add("/m.bin", garbage)
    model_server.fault("/m.bin", slow())
    b_server.fault("/m.bin", slow())
    host = HostProcess(home)
    seen = Messages(host)
    try:
        host.send(load(1, a_url, data, PAGE_A))
        seen.until(lambda: seen.loaded(1) >= 1 << 20)  # A's transfer is well under way
        a_loaded = seen.loaded(1)

        host.send(load(2, b_url, data, PAGE_B))
        seen.until(lambda: 1 in seen.replies and 2 in seen.replies)

        b_first = seen.events[2][0]["loaded"]
        print(f"A at {a_loaded} bytes when B asked; B's first progress event: {b_first}")
        assert b_first < a_loaded  # B's own transfer, from 0: nothing of A's shows
        assert b_server.transfers("/m.bin") >= 1  # B's server saw B's request
        assert seen.replies[1]["ok"], seen.replies[1]
        assert seen.replies[2]["error"]["code"] == "integrity_mismatch"  # B's own bytes
        assert model_server.transfers("/m.bin") == 1  # A's server: only A's request
        [model] = host.result("manage.list")["models"]
        assert model["sites"] == [{"top_site": A, "origin": A}]
    finally:
        host.kill()


def test_two_sites_with_good_urls_each_transfer_and_one_blob_is_kept(
    home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(SIZE)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", slow(4 << 20))
    host = HostProcess(home)
    seen = Messages(host)
    try:
        host.send(load(1, url, data, PAGE_A))
        seen.until(lambda: seen.loaded(1) > 0)
        host.send(load(2, url, data, PAGE_B))
        seen.until(lambda: 1 in seen.replies and 2 in seen.replies)

        assert seen.replies[1]["ok"] and seen.replies[2]["ok"]
        assert model_server.transfers("/m.bin") == 2  # the price of privacy
        assert sorted(held_in(home)) == [hashlib.sha256(data).hexdigest()]
        [model] = host.result("manage.list")["models"]
        assert sorted(s["top_site"] for s in model["sites"]) == [A, B]
    finally:
        host.kill()


def test_one_sites_requests_share_one_transfer(home: Path, model_server: ModelServer) -> None:
    data = os.urandom(SIZE)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", slow(4 << 20))
    host = HostProcess(home)
    assert_one_transfer(host, model_server, url, data, second=PAGE_A)


def test_a_common_model_is_one_transfer_for_every_site(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    data = os.urandom(SIZE)
    signer = Signer()
    env = trusting_config(home, signer)
    listed = tmp_path / "commons.json"
    listed.write_bytes(signer.sign(1, [entry(data)]))
    run_cli(home, "commons", "update", str(listed), **env)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", slow(4 << 20))
    host = HostProcess(home, **env)
    assert_one_transfer(host, model_server, url, data, second=PAGE_B)


def test_a_prefetch_whose_requester_cancelled_is_credited_to_its_site(
    home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(3 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", slow(3 << 20))
    host = HostProcess(home)
    seen = Messages(host)
    try:
        message = load(3, url, data, PAGE_A)
        message["params"]["prefetch"] = True
        host.send(message)
        seen.until(lambda: seen.loaded(3) > 0)
        host.result("models.cancel", {"request_id": 3}, context=PAGE_A)
        deadline = time.monotonic() + 30
        while host.result("manage.jobs")["jobs"][0]["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)

        [model] = host.result("manage.list")["models"]
        assert model["sites"] == [{"top_site": A, "origin": A}]  # counted for A, not nobody
    finally:
        host.kill()
