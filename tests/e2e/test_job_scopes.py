"""A site never joins another site's download in progress (PRIVACY.md, hole 1), in real
Chromium with the real extension and host: site A loads a model from a slow server;
while A's transfer runs, site B asks for the same integrity from its own server
(which serves other bytes). B's server must see B's request, B's progress must start
from B's own bytes, and B must get `integrity_mismatch` while A succeeds.

The sites are loopback origins (http://a.localhost:PORT, http://b.localhost:PORT):
pages that may make the host reach the loopback model servers. The servers allow any
origin, as real model hosts do."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e.conftest import install_host
from e2e.test_page_api import EXTENSION, call, pages_server
from support.httpserver import Fault, ModelServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    Launch = Callable[..., BrowserContext]

pytestmark = pytest.mark.e2e
__all__ = ["pages_server"]  # fixtures, shared with test_page_api.py

SIZE = 4 << 20
RATE = 1 << 20  # 4 s for the whole file
A_AHEAD = 3 << 19  # A's server has sent 1.5 MiB when B asks

LOAD_WITH_PROGRESS = """async (query) => {
  const progress = [];
  try {
    await window.webmodels.load(query, { monitor(m) {
      m.addEventListener("downloadprogress", (e) => progress.push([e.loaded, e.total]));
    } });
    return { progress, ok: true };
  } catch (error) {
    return { progress, error: { name: error?.name, code: error?.webmodelsCode ?? null } };
  }
}"""


def query(url: str, data: bytes) -> dict[str, str]:
    digest = hashlib.sha256(data).digest()
    return {"url": url, "integrity": "sha256-" + base64.b64encode(digest).decode()}


@pytest.fixture
def b_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture
def context(
    chromium: Launch, tmp_path: Path, install_env: dict[str, str], pages_server: ModelServer
) -> BrowserContext:
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, install_env)
    rules = ["--host-resolver-rules=MAP *.localhost 127.0.0.1"]  # never ::1 or elsewhere
    return chromium(profile, extension_dir=EXTENSION, extra_args=rules)


def open_site(context: BrowserContext, site: str, port: int) -> Page:
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"http://{site}.localhost:{port}/index.html")
    page.wait_for_function("() => window.webmodelsTest && window.webmodels")
    return page


def test_site_b_never_joins_site_as_download_in_progress(
    context: BrowserContext,
    pages_server: ModelServer,
    model_server: ModelServer,
    b_server: ModelServer,
) -> None:
    data, garbage = os.urandom(SIZE), os.urandom(SIZE)
    a_url = model_server.add("/m.bin", data)
    b_url = b_server.add("/m.bin", garbage)
    for server in (model_server, b_server):
        server.fault("/m.bin", Fault(kind="slow", rate=RATE, times=None))
    a_page = open_site(context, "a", pages_server.port)
    b_page = open_site(context, "b", pages_server.port)

    call(a_page, "startLoad", query(a_url, data))
    deadline = time.monotonic() + 60
    while model_server.bytes_sent("/m.bin") < A_AHEAD:
        assert time.monotonic() < deadline, "A's download never started"
        time.sleep(0.05)
    a_sent = model_server.bytes_sent("/m.bin")
    b_result: dict[str, Any] = b_page.evaluate(LOAD_WITH_PROGRESS, query(b_url, data))
    a_result = call(a_page, "startedLoad")

    print(f"A's server had sent {a_sent} bytes when B asked; B's progress: {b_result['progress']}")
    assert b_server.transfers("/m.bin") >= 1  # B's own server saw B's request
    assert b_result.get("error", {}).get("code") == "integrity_mismatch", b_result
    assert b_result["progress"], "B got no progress events"
    assert b_result["progress"][0][0] < 1 << 20  # B's transfer from 0, not A's
    assert a_result.get("info", {}).get("sha256") == hashlib.sha256(data).hexdigest(), a_result
    assert model_server.transfers("/m.bin") == 1  # A's server saw only A
