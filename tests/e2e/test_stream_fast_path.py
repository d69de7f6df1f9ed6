"""`model.stream()` over the fast byte path in real Chromium: the bytes come through
the extension's bridge frame from the host's one-time loopback URL as a stream (the
page reads chunk after chunk as they arrive, nothing is buffered whole), byte-identical;
native messaging carries none of them; and a cancel after the first chunk stops the
host's transfer."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.test_page_api import Browser, browser, call, pages_server, shared_browser
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["browser", "pages_server", "shared_browser"]  # fixtures shared with test_page_api

SIZE = 64 << 20

# In the page: load the model, then read model.stream() (all of it, or only the first
# chunk before cancel()); the methods the page sent to the extension meanwhile, the
# chunk count and sizes, and the SHA-256 of what was read.
STREAM = """async ([query, cancelAfterFirst]) => {
  const sent = [];
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (event.source === window && data?.__webmodels === 1 && data.dir === "to-extension") {
      sent.push(data.method);
    }
  });
  const model = await webmodels.load(query);
  sent.length = 0;
  const reader = model.stream().getReader();
  const parts = [];
  let read = 0;
  const started = performance.now();
  let firstMs = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    firstMs ??= performance.now() - started;
    parts.push(value);
    read += value.length;
    if (cancelAfterFirst) {
      await reader.cancel();
      break;
    }
  }
  const ms = performance.now() - started;
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  return { sent, chunks: parts.length, read, firstMs, ms,
           sha256: await window.webmodelsTest.sha256Hex(bytes) };
}"""


def stored_model(page: Any, model_server: ModelServer, name: str) -> tuple[dict[str, str], str]:
    data = os.urandom(SIZE)
    sha = hashlib.sha256(data).hexdigest()
    query = {
        "url": model_server.add(name, data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    loaded = page.evaluate("async (q) => (await webmodels.load(q)).info.sha256", query)
    assert loaded == sha
    return query, sha


def host_log(store: Path) -> str:
    return "".join(log.read_text(errors="replace") for log in store.rglob("host.log*"))


def test_a_64_mib_model_streams_through_the_bridge_chunk_by_chunk(
    shared_browser: Browser, model_server: ModelServer
) -> None:
    started = time.perf_counter()
    page = shared_browser.open("a")
    page.set_default_timeout(300_000)
    query, sha = stored_model(page, model_server, "/stream.bin")
    result = page.evaluate(STREAM, [query, False])
    assert result["sha256"] == sha and result["read"] == SIZE
    assert "models.read" not in result["sent"], call(page, "bridgeMessages")  # no native messaging
    assert "models.open" in result["sent"], result["sent"]  # the bridge's ticket
    assert call(page, "bridgeStreams") == [{"origin": shared_browser.origin("a"), "port": True}]
    assert result["chunks"] > 8  # delivered as it arrives, not as one buffer
    print(
        f"\n64 MiB model.stream(): {result['chunks']} chunks, first after "
        f"{result['firstMs']:.0f} ms, all after {result['ms']:.0f} ms "
        f"({64 / (result['ms'] / 1000):.0f} MiB/s); test {time.perf_counter() - started:.1f} s"
    )


def test_cancel_after_the_first_chunk_stops_the_hosts_transfer(
    browser: Browser, model_server: ModelServer
) -> None:
    page = browser.open("a")
    page.set_default_timeout(300_000)
    query, _ = stored_model(page, model_server, "/cancel.bin")
    result = page.evaluate(STREAM, [query, True])
    assert result["chunks"] == 1 and 0 < result["read"] < SIZE
    assert "models.read" not in result["sent"], result["sent"]
    # The cancel reaches the bridge's fetch, which closes the loopback connection: the
    # host's send stops with an error instead of running to the last byte.
    deadline = time.monotonic() + 60
    while not re.search(r"loopback transfer of \S+ ended", host_log(browser.store)):
        assert time.monotonic() < deadline, "the host's transfer went on after cancel()"
        time.sleep(0.2)
    print(f"\ncancelled after {result['read']} of {SIZE} bytes")


def test_a_bridge_that_fails_before_the_first_byte_falls_back_to_native_messaging(
    browser: Browser, model_server: ModelServer
) -> None:
    page = browser.open("a")
    page.set_default_timeout(300_000)
    query, sha = stored_model(page, model_server, "/fallback.bin")
    # The bridge's fetch of the host's loopback URL fails (as when a policy blocks it).
    browser.context.route(re.compile(r"^http://127\.0\.0\.1:\d+/m/"), lambda route: route.abort())
    result = page.evaluate(STREAM, [query, False])
    assert result["sha256"] == sha and result["read"] == SIZE
    assert "models.open" in result["sent"] and "models.read" in result["sent"]
