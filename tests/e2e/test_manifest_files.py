"""The Transformers.js flow, end to end in real Chromium with the real extension and
host: a page stores ``model.onnx`` and ``model.onnx_data`` one by one through
Cross-Origin Storage, then ``webmodels.load({files})`` names them by hash and
``createSession()`` runs a host session over both; the output equals in-process ONNX
Runtime's. Another site naming the same hashes gets ``NotFoundError``. Once the user
names the same files a model, the page loads it by name (``load({name, version})``) and
runs a session over it; ``load({files}, {compile: true})`` is answered by the host."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from e2e.conftest import install_host
from e2e.test_page_api import site_args
from support.httpserver import ModelServer
from support.manifest_models import matmul_chain, reference_run

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    Launch = Callable[..., BrowserContext]

pytestmark = pytest.mark.e2e

EXTENSION = Path(__file__).resolve().parents[2] / "extension"
WIDTH = 256
PAGE = b"<!doctype html><meta charset=utf-8><title>manifest files</title><p>files</p>"
STORE_AND_RUN = """
async ([files, x, store]) => {
  try {
    if (store) {
      for (const [name, { url, sha256 }] of Object.entries(files)) {
        const bytes = await (await fetch(url)).arrayBuffer();
        const handle = await navigator.crossOriginStorage.requestFileHandle(
          { algorithm: "SHA-256", value: sha256 }, { create: true });
        const writable = await handle.createWritable();
        await writable.write(new Blob([bytes]));
        await writable.close();
      }
    }
    const named = Object.fromEntries(
      Object.entries(files).map(([name, { sha256 }]) => [name, { sha256 }]));
    const model = await webmodels.load({ files: named });
    const session = await model.createSession();
    const out = await session.run({ x: { type: "float32", dims: [1, x.length],
                                         data: new Float32Array(x) } });
    await session.release();
    return { y: Array.from(out.y.data) };
  } catch (error) {
    return { error: { name: error.name, code: error.webmodelsCode ?? null } };
  }
}
"""


LOAD_BY_NAME = """
async ([files, x]) => {
  try {
    const named = Object.fromEntries(
      Object.entries(files).map(([name, { sha256 }]) => [name, { sha256 }]));
    await webmodels.load({ files: named }, { compile: true });  // checked by the host now
    const model = await webmodels.load({ name: "t/chain", version: "^1" });
    const session = await model.createSession();
    const out = await session.run({ x: { type: "float32", dims: [1, x.length],
                                         data: new Float32Array(x) } });
    await session.release();
    return { info: model.info, y: Array.from(out.y.data) };
  } catch (error) {
    return { error: { name: error.name, code: error.webmodelsCode ?? null } };
  }
}
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, dict[str, Any], Path]]:
    graph = matmul_chain(tmp_path / "model", width=WIDTH)
    with ModelServer() as server:
        server.add("index.html", PAGE, content_type="text/html; charset=utf-8")
        files = {}
        for path in (graph, graph.parent / "model.onnx_data"):
            data = path.read_bytes()
            server.add(path.name, data, content_type="application/octet-stream")
            files[path.name] = {"url": f"/{path.name}", "sha256": hashlib.sha256(data).hexdigest()}
        yield server.port, files, graph


@pytest.fixture
def browser(
    chromium: Launch, tmp_path: Path, install_env: dict[str, str], served: tuple[int, Any, Path]
) -> BrowserContext:
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, install_env)
    return chromium(profile, extension_dir=EXTENSION, extra_args=site_args(served[0]))


def open_page(browser: BrowserContext, port: int, site: str) -> Page:
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"http://{site}.localhost:{port}/index.html")
    page.wait_for_function("() => window.webmodels && navigator.crossOriginStorage")
    return page


def test_a_page_stores_graph_and_data_through_cos_and_runs_a_host_session_over_both(
    browser: BrowserContext, served: tuple[int, dict[str, Any], Path], tmp_path: Path
) -> None:
    started = time.monotonic()
    port, files, graph = served
    x = np.random.default_rng(4).standard_normal(WIDTH).astype(np.float32)

    page_a = open_page(browser, port, "a")
    ran = page_a.evaluate(STORE_AND_RUN, [files, x.tolist(), True])
    other = open_page(browser, port, "b").evaluate(STORE_AND_RUN, [files, x.tolist(), False])

    assert "error" not in ran, ran
    expected = reference_run(graph, x.reshape(1, WIDTH)).reshape(-1)
    np.testing.assert_allclose(np.array(ran["y"], np.float32), expected, rtol=1e-5, atol=1e-6)
    assert other == {"error": {"name": "NotFoundError", "code": "not_found"}}

    # The user names the same files a model (webmodels import --name); the page loads
    # it by name and gets a model of files it creates a session over.
    command = [sys.executable, "-m", "webmodels", "--store", str(tmp_path / "store")]
    command += ["import", str(graph), "--name", "t/chain", "--model-version", "1.0.0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    by_name = page_a.evaluate(LOAD_BY_NAME, [files, x.tolist()])
    assert "error" not in by_name, by_name
    assert (by_name["info"]["name"], by_name["info"]["graph"]) == ("t/chain", "model.onnx")
    np.testing.assert_allclose(np.array(by_name["y"], np.float32), expected, rtol=1e-5, atol=1e-6)
    print(f"\nmanifest files e2e: {time.monotonic() - started:.1f} s")
