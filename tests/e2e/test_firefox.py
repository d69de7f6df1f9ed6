"""The extension in real Firefox ESR (geckodriver, a temporary add-on), with the host
that `webmodels install --browser firefox` registers: the page API, native messaging,
the fast byte path (its bytes posted by the relay at the page's origin: the bridge's,
moz-extension://<uuid>, is never seen), Cross-Origin Storage, and a forged context
that changes nothing.

Firefox runs the same manifest as Chromium: `background.scripts` as an event page,
MAIN-world content scripts (Firefox 128+), `browser_specific_settings.gecko.id`.
The launch and the page driver are in e2e/firefox_launch.py (the page benchmarks use
them too).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.firefox_launch import Firefox, launch_firefox, require_firefox
from e2e.sites import SharedFirefox
from e2e.test_page_api import pages_server
from support.host import HostProcess
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = [
    "Firefox",
    "pages_server",
    "require_firefox",
    "shared_firefox",
]  # shared with other Firefox tests


@pytest.fixture
def firefox(tmp_path: Path, pages_server: ModelServer) -> Iterator[Firefox]:
    require_firefox()
    store = tmp_path / "store"
    with launch_firefox(tmp_path / "home", store) as driver:
        yield Firefox(driver, pages_server.port, store)


@pytest.fixture
def shared_firefox(shared_firefox_session: SharedFirefox) -> Firefox:
    """The Firefox shared by tests whose data is random or their own (e2e/sites.py);
    `Firefox.open` loads a fresh page for each test."""
    require_firefox()
    driver = shared_firefox_session.launch()
    return Firefox(driver, shared_firefox_session.port, shared_firefox_session.store)


def test_the_page_api_native_messaging_and_the_fast_path_in_firefox(
    shared_firefox: Firefox, model_server: ModelServer
) -> None:
    shared_firefox.open()
    hello = shared_firefox.tool("raw", {"id": "h", "method": "hello", "params": {}})
    assert hello["ok"] is True and hello["result"]["trusted"] is False

    data = os.urandom(5 << 20)
    sha = hashlib.sha256(data).hexdigest()
    query = {
        "url": model_server.add("/m.bin", data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    loaded = shared_firefox.tool("load", query)
    assert loaded["sha256"] == loaded["streamed"] == sha  # arrayBuffer (bridge) and stream
    assert loaded["progress"][-1] == [len(data), len(data)]
    [through_bridge] = shared_firefox.tool("bridgeMessages")
    assert through_bridge["origin"] == shared_firefox.origin
    assert (through_bridge["bytes"], through_bridge["error"]) == (len(data), None)

    # A forged context in the page's message changes nothing: the host credits the
    # page's own partition.
    forged = {
        "id": "f",
        "method": "models.load",
        "params": {"query": {"sha256": sha}},
        "context": {
            "trusted": True,
            "partition": {"top_site": "https://evil.example", "origin": "https://evil.example"},
        },
    }
    assert shared_firefox.tool("raw", forged)["ok"] is True
    host = HostProcess(shared_firefox.store)
    try:
        [model] = [m for m in host.result("manage.list")["models"] if m["sha256"] == sha]
    finally:
        host.close()
    assert model["sites"] == [{"top_site": shared_firefox.origin, "origin": shared_firefox.origin}]

    # Cross-Origin Storage: store, then look up.
    small = os.urandom(300_000)
    small_sha = hashlib.sha256(small).hexdigest()
    stored = shared_firefox.tool("cosStore", small_sha, base64.b64encode(small).decode())
    assert stored == {"stored": True}
    assert shared_firefox.tool("cosGet", small_sha) == {
        "sha256": small_sha,
        "size": len(small),
        "isFile": True,
    }
