"""`model.stream()` inside a Web Worker (extension/page/worker-client.js) in real
Chromium: the worker gets the page's own stream, transferred to it, so the bytes come
through the extension's bridge at loopback speed chunk by chunk (native messaging
carries none of them), byte-identical."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest

from e2e.test_page_api import Browser, shared_browser
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["shared_browser"]  # a fixture shared with test_page_api

SIZE = 32 << 20

# The worker reads model.stream() to the end: chunk count, bytes, time, SHA-256.
WORKER = """
importScripts(self.name);
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
self.onmessage = async (event) => {
  try {
    const model = await webmodels.load(event.data);
    const reader = model.stream().getReader();
    const parts = [];
    let read = 0;
    const started = performance.now();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value);
      read += value.length;
    }
    const ms = performance.now() - started;
    const digest = await crypto.subtle.digest("SHA-256", await new Blob(parts).arrayBuffer());
    postMessage({ chunks: parts.length, read, ms, sha256: hex(digest) });
  } catch (error) {
    postMessage({ error: `${error.name}: ${error.message}` });
  }
};
"""

# In the page: start the worker, connect it, and note what the page sends the extension.
RUN = """async ([source, query]) => {
  const sent = [];
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (event.source === window && data?.__webmodels === 1 && data.dir === "to-extension") {
      sent.push(data.method);
    }
  });
  const script = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(script, { name: webmodels.workerScript });
  webmodels.connectWorker(worker);
  const result = await new Promise((resolve) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.postMessage(query);
  });
  worker.terminate();
  return { ...result, sent };
}"""


def test_a_worker_streams_a_32_mib_model_through_the_bridge(
    shared_browser: Browser, model_server: ModelServer
) -> None:
    started = time.perf_counter()
    data = os.urandom(SIZE)
    sha = hashlib.sha256(data).hexdigest()
    query = {
        "url": model_server.add("/worker-stream.bin", data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    page = shared_browser.open("a")
    page.set_default_timeout(300_000)
    assert page.evaluate("async (q) => (await webmodels.load(q)).info.sha256", query) == sha

    result = page.evaluate(RUN, [WORKER, query])

    assert "error" not in result, result
    assert result["sha256"] == sha and result["read"] == SIZE
    assert "models.open" in result["sent"], result["sent"]  # the bridge's ticket
    assert "models.read" not in result["sent"], result["sent"]  # no native messaging
    assert result["chunks"] > 4  # delivered as it arrives, not as one buffer
    print(
        f"\n32 MiB model.stream() in a worker: {result['chunks']} chunks in "
        f"{result['ms']:.0f} ms ({32 / (result['ms'] / 1000):.0f} MiB/s); "
        f"test {time.perf_counter() - started:.1f} s"
    )
