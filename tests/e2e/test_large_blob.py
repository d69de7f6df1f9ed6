"""`model.blob()` and Cross-Origin Storage `getFile()` in real Chromium are built from
the stream part by part: no buffer of the model's whole size is ever made in the page
(an ArrayBuffer cannot hold a multi-GB model; Blob parts the browser can page to disk
can), and the bytes are the model's. scripts/bench/large.py measures it at 3 GB."""

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

SIZE = 24 << 20

# In the page: every binary part given to `new Blob` / `new File` while `read` runs
# (their byte lengths), and the SHA-256 and size of what `read` returned.
READ = """async ([query, way]) => {
  const model = await webmodels.load(query);
  const buffers = [], RealBlob = Blob, RealFile = File;
  const note = (parts) => {
    for (const part of parts ?? []) if (!(part instanceof RealBlob)) buffers.push(part.byteLength);
  };
  window.Blob = class extends RealBlob {
    constructor(parts, options) { note(parts); super(parts, options); }
  };
  window.File = class extends RealFile {
    constructor(parts, ...rest) { note(parts); super(parts, ...rest); }
  };
  let got;
  try {
    if (way === "blob") got = await model.blob();
    else {
      const hash = { algorithm: "SHA-256", value: model.info.sha256 };
      got = await (await navigator.crossOriginStorage.requestFileHandle(hash)).getFile();
    }
  } finally {
    window.Blob = RealBlob;
    window.File = RealFile;
  }
  const bytes = new Uint8Array(await got.arrayBuffer());
  return { buffers, size: got.size, sha256: await window.webmodelsTest.sha256Hex(bytes) };
}"""


def test_a_models_blob_and_file_are_assembled_from_the_stream_never_one_whole_buffer(
    shared_browser: Browser, model_server: ModelServer
) -> None:
    started = time.perf_counter()
    page = shared_browser.open("a")
    page.set_default_timeout(120_000)
    data = os.urandom(SIZE)
    digest = hashlib.sha256(data)
    query = {
        "url": model_server.add("/large.bin", data),
        "integrity": "sha256-" + base64.b64encode(digest.digest()).decode(),
    }
    for way in ("blob", "getFile"):
        result = page.evaluate(READ, [query, way])
        assert (result["size"], result["sha256"]) == (SIZE, digest.hexdigest()), way
        assert result["buffers"], "the parts are made in the page, as the bytes arrive"
        assert max(result["buffers"]) < SIZE // 2, (way, result["buffers"])  # never whole
        print(f"\n{way}(): {len(result['buffers'])} buffers")
    print(f"test {time.perf_counter() - started:.1f} s")
