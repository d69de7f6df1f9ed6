"""The fast byte path (host/webmodels/loopback.py): one-time capability URLs on
127.0.0.1, through a real host process and real HTTP requests."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import requests

from support.host import HostProcess
from webmodels.config import CHROMIUM_EXTENSION_ID
from webmodels.digest import Digest
from webmodels.loopback import (
    MAX_LIVE_TOKENS,
    LoopbackServer,
    allowed_origins,
    origin_allowed,
)

EXTENSION = f"chrome-extension://{CHROMIUM_EXTENSION_ID}"
PAGE = {
    "partition": {"top_site": "https://a.example", "origin": "https://a.example"},
    "user_activation": True,
}


def stored(host: HostProcess, data: bytes) -> str:
    """Stores `data` for site a (a Cross-Origin Storage write) and returns its hash."""
    digest = hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=PAGE)
    chunk = {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()}
    host.result("cos.write.chunk", chunk, context=PAGE)
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=PAGE)
    return digest


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def test_a_capability_serves_the_model_once_to_the_extension_only(home: Path) -> None:
    data = os.urandom(3 << 20)
    host = HostProcess(home)
    try:
        digest = stored(host, data)
        opened: dict[str, Any] = host.result("models.open", {"sha256": digest}, context=PAGE)
        assert opened["size"] == len(data) and opened["expires_in"] > 0
        url = opened["url"]
        assert url.startswith("http://127.0.0.1:") and len(url.rsplit("/", 1)[1]) >= 22
        port = url.split(":")[2].split("/")[0]
        # Refused before the token is spent: another Host (DNS rebinding), no Origin, a
        # web page's Origin.
        rebound = get(url, Host=f"evil.example:{port}", Origin=EXTENSION)
        assert rebound.status_code == 421 and rebound.content == b"wrong Host"
        assert get(url).status_code == 403
        assert get(url, Origin="https://a.example").status_code == 403
        assert get(url, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403  # a page's <img>
        assert get(url, **{"Sec-Fetch-Site": "same-site"}).status_code == 403  # 127.0.0.1:other
        assert get(url, Origin=EXTENSION + ".evil").status_code == 403
        reply = get(url, Origin=EXTENSION)
        assert reply.status_code == 200 and reply.content == data
        assert reply.headers["Access-Control-Allow-Origin"] == EXTENSION
        assert reply.headers["Cache-Control"] == "no-store"
        assert get(url, Origin=EXTENSION).status_code == 404  # spent
        # Chromium's extension frames send no Origin, but Sec-Fetch-Site: none.
        again = host.result("models.open", {"sha256": digest}, context=PAGE)["url"]
        chromium = get(again, **{"Sec-Fetch-Site": "none"})
        assert chromium.status_code == 200 and chromium.content == data
        assert requests.post(url, headers={"Origin": EXTENSION}, timeout=10).status_code in (
            404,
            405,
        )
        # Another site cannot open it: the same not_found as for an absent model.
        other = {"partition": {"top_site": "https://b.example", "origin": "https://b.example"}}
        held = host.call("models.open", {"sha256": digest}, context=other)
        absent = host.call("models.open", {"sha256": "ab" * 32}, context=other)
        assert held["error"] == absent["error"] and held["error"]["code"] == "not_found"
    finally:
        host.kill()


def test_tokens_expire_and_are_bounded(tmp_path: Path) -> None:
    now = [0.0]
    server = LoopbackServer(allowed_origins(None), ttl_s=5.0, clock=lambda: now[0])
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    digest = Digest(hashlib.sha256(b"x" * 10).hexdigest())
    try:
        late = server.issue(digest, path, 10).url
        now[0] = 6.0
        assert get(late, Origin=EXTENSION).status_code == 404
        fresh = server.issue(digest, path, 10).url
        assert get(fresh, Origin=EXTENSION).content == b"x" * 10
        # Bounded: past MAX_LIVE_TOKENS live ones of one partition, its oldest goes first.
        urls = [server.issue(digest, path, 10).url for _ in range(MAX_LIVE_TOKENS + 1)]
        assert get(urls[0], Origin=EXTENSION).status_code == 404
        assert get(urls[-1], Origin=EXTENSION).content == b"x" * 10
    finally:
        server.close()


def test_allowed_origins_follow_the_launching_extension() -> None:
    chromium = allowed_origins("chrome-extension://abcdefghijklmnopabcdefghijklmnop/")
    assert chromium == ("chrome-extension://abcdefghijklmnopabcdefghijklmnop",)
    assert not origin_allowed(EXTENSION, chromium)
    # Firefox names only the add-on id: no origin until the extension announces its
    # own (tests/test_loopback_origin.py).
    firefox = allowed_origins("/path/to/org.webmodels.host.json webmodels@webmodels.org")
    assert not origin_allowed("moz-extension://0b6b3c5e-1111-2222-3333-444455556666", firefox)
    assert allowed_origins(None) == (EXTENSION,)
