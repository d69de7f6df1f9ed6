"""The fast byte path in real Chromium (DESIGN §6): `model.arrayBuffer()` of a stored
model comes through the extension's bridge frame from the host's one-time loopback URL,
byte-identical; the page never sees the URL; and a page cannot use it itself."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from e2e.test_page_api import Browser, browser, call, install_env, pages_server
from support.httpserver import ModelServer

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.e2e
__all__ = ["browser", "install_env", "pages_server"]  # fixtures shared with test_page_api

EXTENSION_ORIGIN = "chrome-extension://njlggidnjaijbhcfhmipfndcjjmocgpp"


def test_a_whole_model_comes_through_the_bridge_and_the_page_never_sees_the_url(
    browser: Browser, model_server: ModelServer, tmp_path: Path
) -> None:
    data = os.urandom(24 << 20)
    sha = hashlib.sha256(data).hexdigest()
    import base64

    query = {
        "url": model_server.add("/big.bin", data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    page = browser.open("a")
    loaded = call(page, "load", query)
    assert "error" not in loaded, loaded
    assert loaded["sha256"] == sha  # arrayBuffer() (and stream(), chunked) agree

    seen = call(page, "bridgeMessages")
    assert seen == [{"origin": EXTENSION_ORIGIN, "bytes": len(data), "error": None}]

    # What a page gets for models.open: a ticket, never the loopback URL.
    opened = call(page, "raw", {"id": "open-1", "method": "models.open", "params": {"sha256": sha}})
    assert opened["ok"] is True, opened
    assert sorted(opened["result"]) == ["bridge", "size", "ticket"]
    assert "127.0.0.1" not in str(opened)

    # Timing, for the record (not asserted): the same bytes both ways in this page.
    started = time.perf_counter()
    fast = page.evaluate(
        """async (sha) => { const m = await webmodels.load({sha256: sha});
             const b = await m.arrayBuffer(); return b.byteLength; }""",
        sha,
    )
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = page.evaluate(
        """async (sha) => { const m = await webmodels.load({sha256: sha});
             const r = new Response(m.stream()); return (await r.arrayBuffer()).byteLength; }""",
        sha,
    )
    slow_s = time.perf_counter() - started
    assert fast == slow == len(data)
    print(f"\n24 MiB: bridge {fast_s * 1000:.0f} ms, native messaging {slow_s * 1000:.0f} ms")
