"""The page API inside a Web Worker (extension/page/worker-client.js) in real
Chromium: a worker its page connected loads a model with progress, reads it, and uses
Cross-Origin Storage as Transformers.js does — all in the page's own partition."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from e2e.test_page_api import Browser, shared_browser
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["shared_browser"]  # a fixture shared with test_page_api

RUN_WORKER = """async ([query, data]) => {
    const worker = new Worker("worker-test.js", { name: webmodels.workerScript });
    webmodels.connectWorker(worker);
    return new Promise((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage({ query, data });
    });
}"""


def test_a_connected_worker_loads_reads_and_stores_in_its_pages_partition(
    shared_browser: Browser, model_server: ModelServer
) -> None:
    model = os.urandom(3 << 20)
    query = {
        "url": model_server.add("/w.bin", model),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(model).digest()).decode(),
    }
    written = os.urandom(200_000)
    page = shared_browser.open("a")
    assert page.evaluate("() => webmodels.workerScript").startswith(
        f"blob:{shared_browser.origin('a')}/"
    )

    got = page.evaluate(RUN_WORKER, [query, base64.b64encode(written).decode()])

    assert "error" not in got, got
    assert got["sha256"] == hashlib.sha256(model).hexdigest()
    assert got["info"]["size"] == len(model)
    assert got["progress"][-1] == [len(model), len(model)]
    assert got["absentBefore"] is True
    assert got["storedSha256"] == hashlib.sha256(written).hexdigest()
    assert got["availability"] == "available"
    # Both were credited to the page's partition, as if the page had done it.
    me = [{"top_site": shared_browser.origin("a"), "origin": shared_browser.origin("a")}]
    assert shared_browser.sites_of(hashlib.sha256(model).hexdigest()) == me
    assert shared_browser.sites_of(hashlib.sha256(written).hexdigest()) == me
