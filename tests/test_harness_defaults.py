"""The tests run the host as a user's host runs: no test host lets pages reach the
local network unless that test says so. So a test page that loads from the tests'
127.0.0.1 servers needs a loopback origin (``http://a.localhost:8000``), as a real
page would; a public-looking one is refused (fetch/access.py)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from support.host import HostProcess
from support.httpserver import ModelServer
from support.models import tiny_model


def load(host: HostProcess, url: str, data: bytes, origin: str) -> dict[str, object]:
    digest = hashlib.sha256(data).digest()
    query = {"url": url, "integrity": "sha256-" + base64.b64encode(digest).decode()}
    context = {"partition": {"top_site": origin, "origin": origin}, "user_activation": True}
    reply: dict[str, object] = host.call("models.load", {"query": query}, context=context)
    return reply


def test_a_test_host_keeps_public_pages_off_loopback(
    host: HostProcess, model_server: ModelServer, tmp_path: Path
) -> None:
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    url = model_server.add("m.onnx", data)

    public = load(host, url, data, "https://a.example")
    accepted = model_server.accepted
    loopback = load(host, url, data, "http://a.localhost:8000")

    assert public["ok"] is False, public
    assert accepted == 0  # not even a connection
    assert loopback["ok"] is True, loopback
