"""`model.stream()` when the loopback connection under it breaks half-way, in real
Chromium: the host process is killed once the page has half of a 64 MiB model (its
loopback transfer dies with it, as when the host restarts or the connection is reset).
The stream carries on from the byte it reached — a new ticket for the rest through the
bridge, or native messaging from there when the bridge cannot — and what the page read
is byte-identical to the file: nothing from zero again, nothing twice, nothing missing;
where nothing can carry on, the stream errors. The native-messaging resume (and the
error) runs with ``WEBMODELS_LONG=1`` only (a second browser and
64 MiB model: over the suite's time budget)."""

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


LOOPBACK_READ = re.compile(r"^http://127\.0\.0\.1:\d+/m/")


def cut_at(
    browser: Browser,
    page: Any,
    query: dict[str, str],
    at: int,
    *,
    block_bridge: bool = False,
    lose: str | None = None,
) -> dict[str, Any]:
    """Streams the model, kills the host once `at` bytes arrived, and reads the rest.
    Before the kill: if `block_bridge`, the bridge's fetches fail (as when a policy
    blocks it); `lose`: a SHA-256 whose stored file is deleted (nothing can carry on)."""
    reached = page.evaluate(HALF, [query, at])
    assert at <= reached < SIZE
    if block_bridge:
        browser.context.route(LOOPBACK_READ, lambda route: route.abort())
    if lose is not None:
        [blob] = [p for p in browser.store.rglob(lose) if p.is_file()]
        blob.unlink()
    kill_host(browser)
    rest: dict[str, Any] = page.evaluate(REST)
    print(f"\nresumed after {reached}: {rest.get('error') or 'ok'}, read {rest['read']} of {SIZE}")
    return {**rest, "reached": reached}


def test_a_stream_cut_half_way_resumes_from_the_byte_it_reached(
    browser: Browser, model_server: ModelServer
) -> None:
    started = time.perf_counter()
    page = browser.open("a")
    page.set_default_timeout(300_000)
    query, sha = stored_model(page, model_server, "/resume.bin")
    rest = cut_at(browser, page, query, SIZE // 2)
    assert rest.get("sha256") == sha and rest["read"] == SIZE, rest
    # A new ticket for the rest, from the byte reached (bytes the browser held when the
    # host died reached the page first), through the bridge.
    resumed = [s["offset"] for s in rest["sent"] if s["method"] == "models.open"]
    assert len(resumed) == 2 and resumed[0] is None, rest["sent"]
    assert rest["reached"] <= resumed[1] < SIZE, rest["sent"]
    assert not any(s["method"] == "models.read" for s in rest["sent"]), rest["sent"]
    print(f"test {time.perf_counter() - started:.1f} s")


@pytest.mark.skipif(
    os.environ.get("WEBMODELS_LONG") != "1",
    reason="the long run: WEBMODELS_LONG=1 (a second browser and model: over the time budget)",
)
def test_a_cut_stream_the_bridge_cannot_resume_goes_on_over_native_messaging(
    browser: Browser, model_server: ModelServer
) -> None:
    page = browser.open("a")
    page.set_default_timeout(300_000)
    query, sha = stored_model(page, model_server, "/resume-native.bin")
    rest = cut_at(browser, page, query, SIZE - (16 << 20), block_bridge=True)  # 16 MiB left
    assert rest.get("sha256") == sha and rest["read"] == SIZE, rest
    # A ticket for the rest first (its fetch fails), then native messaging from there.
    opened = [s["offset"] for s in rest["sent"] if s["method"] == "models.open"]
    reads = [s["offset"] for s in rest["sent"] if s["method"] == "models.read"]
    assert len(opened) == 2 and rest["reached"] <= opened[1] < SIZE, rest["sent"]
    assert reads and min(reads) == opened[1], rest["sent"]  # never from zero

    # Cut again, and the stored file is gone: nothing can carry on, and the page gets an
    # error, never a stream that ends short.
    browser.context.unroute(LOOPBACK_READ)
    lost = cut_at(browser, page, query, SIZE // 2, block_bridge=True, lose=sha)
    assert lost.get("error") and lost["read"] < SIZE, lost
