"""Starting a large download needs a user gesture on the page (docs/design.md#privacy): without one
a page may start only downloads up to a configured size; a gesture in any requester of
the download lifts the limit; the CLI and the popup act for the user."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from support.host import HostProcess
from support.httpserver import Fault, ModelServer

LIMIT = 1_000_000


def context(*, gesture: bool) -> dict[str, Any]:
    return {
        "partition": {"top_site": "http://a.localhost:8000", "origin": "http://a.localhost:8000"},
        "user_activation": gesture,
        "trusted": False,
    }


def query(url: str, data: bytes, **extra: Any) -> dict[str, Any]:
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"query": {"url": url, "integrity": integrity, **extra}}


def host_with_limit(home: Path) -> HostProcess:
    config = home / "config.toml"
    config.write_text(f"download_without_activation_bytes = {LIMIT}\n")
    return HostProcess(home, WEBMODELS_CONFIG=str(config))


def test_large_download_without_a_gesture_is_refused(home: Path, model_server: ModelServer) -> None:
    big, small = os.urandom(6 * LIMIT), os.urandom(LIMIT // 2)
    url_big, url_small = model_server.add("/big", big), model_server.add("/small", small)
    model_server.fault("/big", Fault(kind="slow", rate=4 << 20))  # bytes trickle in
    host = host_with_limit(home)
    try:
        refused = host.call("models.load", query(url_big, big), context=context(gesture=False))
        assert refused["error"]["code"] == "user_activation_required"
        assert refused["error"]["details"]["limit"] == LIMIT
        assert model_server.bytes_sent("/big") < len(big) // 2  # stopped at the headers
        assert host.call("models.load", query(url_small, small), context=context(gesture=False))[
            "ok"
        ]
        granted = host.call("models.load", query(url_big, big), context=context(gesture=True))
        assert granted["ok"], granted
        assert list((home / "store-v2" / "tmp").iterdir()) == []
    finally:
        host.kill()


def test_declared_size_is_refused_before_any_request(home: Path, model_server: ModelServer) -> None:
    big = os.urandom(LIMIT + 1)
    url = model_server.add("/big", big)
    host = host_with_limit(home)
    try:
        reply = host.call(
            "models.load", query(url, big, size=len(big)), context=context(gesture=False)
        )
        assert reply["error"]["code"] == "user_activation_required"
        assert model_server.requests == []
    finally:
        host.kill()


def test_trusted_callers_need_no_gesture(home: Path, model_server: ModelServer) -> None:
    big = os.urandom(LIMIT + 1)
    url = model_server.add("/big", big)
    host = host_with_limit(home)
    try:
        assert host.call("models.load", query(url, big))["ok"]  # the CLI acts for the user
    finally:
        host.kill()
