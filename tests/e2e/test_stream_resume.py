"""`model.stream()` when the loopback connection under it breaks half-way, in real
Chromium: the host process is killed once the page has half of a 64 MiB model (its
loopback transfer dies with it, as when the host restarts or the connection is reset).
The stream carries on from the byte it reached — a new ticket for the rest through the
bridge, or native messaging from there when the bridge cannot — and what the page read
is byte-identical to the file: nothing from zero again, nothing twice, nothing missing."""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any

import pytest

from e2e.test_page_api import Browser, browser, host_pids, pages_server
from e2e.test_stream_fast_path import SIZE, stored_model
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["browser", "pages_server"]  # fixtures shared with test_page_api

# In the page, in steps: open model.stream() and read until half of it arrived (the
# reader then waits: no more is pulled), recording what the page sends meanwhile.
HALF = """async ([query, half]) => {
  window.sentSince ??= (() => {
    const sent = [];
    window.addEventListener("message", (event) => {
      const data = event.data;
      if (event.source === window && data?.__webmodels === 1 && data.dir === "to-extension") {
        sent.push({ method: data.method, offset: data.params?.offset ?? null });
      }
    });
    return sent;
  })();
  const model = await webmodels.load(query);
  window.sentSince.length = 0;
  window.streamReader = model.stream().getReader();
  window.streamParts = [];
  window.streamRead = 0;
  while (window.streamRead < half) {
    const { value } = await window.streamReader.read();
    window.streamParts.push(value);
    window.streamRead += value.length;
  }
  return window.streamRead;
}"""
# Later: the rest, and the SHA-256 of all that was read (or the error that ended it).
REST = """async () => {
  const before = window.streamRead;
  try {
    for (;;) {
      const { value, done } = await window.streamReader.read();
      if (done) break;
      window.streamParts.push(value);
      window.streamRead += value.length;
    }
  } catch (error) {
    return { error: `${error.name}: ${error.message}`, before, read: window.streamRead };
  }
  const bytes = new Uint8Array(await new Blob(window.streamParts).arrayBuffer());
  return { before, read: window.streamRead, sent: window.sentSince,
           sha256: await window.webmodelsTest.sha256Hex(bytes) };
}"""


def kill_host(browser: Browser) -> None:
    for pid in host_pids(browser.store):
        os.kill(pid, signal.SIGKILL)  # the host, and its loopback transfer, go away


def test_a_stream_cut_half_way_resumes_from_the_byte_it_reached(
    browser: Browser, model_server: ModelServer
) -> None:
    started = time.perf_counter()
    page = browser.open("a")
    page.set_default_timeout(300_000)
    query, sha = stored_model(page, model_server, "/resume.bin")
    print(f"stored {time.perf_counter() - started:.1f} s")

    # 1. The connection breaks: a new ticket for the rest, through the bridge.
    half = page.evaluate(HALF, [query, SIZE // 2])
    assert SIZE // 2 <= half < SIZE
    kill_host(browser)
    rest: dict[str, Any] = page.evaluate(REST)
    print(f"\nbridge resume: {rest.get('error') or 'ok'}, read {rest['read']} of {SIZE}")
    assert rest.get("sha256") == sha and rest["read"] == SIZE, rest
    resumed = [s["offset"] for s in rest["sent"] if s["method"] == "models.open"]
    assert len(resumed) == 2 and resumed[0] is None and half <= resumed[1] < SIZE, rest["sent"]
    assert not any(s["method"] == "models.read" for s in rest["sent"]), rest["sent"]

    print(f"phase 1 {time.perf_counter() - started:.1f} s")
    # 2. It breaks again, late, and the bridge cannot fetch (as when a policy blocks it):
    #    native messaging from the byte reached (16 MiB: it is the slow path).
    half = page.evaluate(HALF, [query, SIZE - (16 << 20)])
    browser.context.route(re.compile(r"^http://127\.0\.0\.1:\d+/m/"), lambda route: route.abort())
    kill_host(browser)
    rest = page.evaluate(REST)
    print(f"native resume: {rest.get('error') or 'ok'}, read {rest['read']} of {SIZE}")
    assert rest.get("sha256") == sha and rest["read"] == SIZE, rest
    reads = [s["offset"] for s in rest["sent"] if s["method"] == "models.read"]
    assert reads and min(reads) >= half, rest["sent"]  # never from zero
    print(f"test {time.perf_counter() - started:.1f} s")
