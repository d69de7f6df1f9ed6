"""`webmodels.load(query, {prefetch: {compile: true}})` in real Chromium: the page's
prefetch asks the host for a compiled session, which the host builds in the background
once idle; anything but a boolean is refused in the page."""

from __future__ import annotations

import base64
import hashlib
import re
import time

import pytest

from e2e.test_page_api import Browser, browser, pages_server
from e2e.test_stream_fast_path import host_log
from support.httpserver import ModelServer
from support.runtime_models import identity_model

pytestmark = pytest.mark.e2e
__all__ = ["browser", "pages_server"]  # fixtures shared with test_page_api

LOAD = """async ([query, options]) => {
  try {
    const model = await webmodels.load(query, options);
    return { sha256: model.info.sha256 };
  } catch (error) {
    return { error: error.name };
  }
}"""


def test_a_prefetch_that_asks_for_a_compile_gets_one(
    browser: Browser, model_server: ModelServer
) -> None:
    started = time.perf_counter()
    model = identity_model("float32").SerializeToString()
    digest = hashlib.sha256(model).digest()
    query = {
        "url": model_server.add("/compile.onnx", model),
        "integrity": "sha256-" + base64.b64encode(digest).decode(),
    }
    page = browser.open("a")
    for bad in ({"compile": "yes"}, {"prefetch": {"compile": 1}}, {"prefetch": {}}):
        assert page.evaluate(LOAD, [query, bad]) == {"error": "TypeError"}, bad
    loaded = page.evaluate(LOAD, [query, {"prefetch": {"compile": True}}])
    assert loaded == {"sha256": digest.hex()}
    # Queued after background_delay_s and run once the host was idle background_idle_s.
    deadline = time.monotonic() + 120
    while not re.search(rf"compiled {digest.hex()[:12]}", host_log(browser.store)):
        assert time.monotonic() < deadline, "no background compile after prefetch.compile"
        time.sleep(0.5)
    took = time.perf_counter() - started
    print(f"\nprefetch {{compile: true}}: compiled in the background; test {took:.1f} s")
