"""Host sessions from a page, end to end: real Chromium, the real extension and host,
a real model (magika, from its PyPI wheel).

A page loads the model by URL and integrity, creates a session in the host and runs
it; the output must equal ONNX Runtime's own (run in a subprocess as the reference).
The same page also runs the model in the page with ONNX Runtime Web (WASM, from the
npm package, installed into .cache/ at test time and served by the test), fed by
``model.arrayBuffer()`` and through the same lines of page code: both agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from e2e.conftest import install_host
from e2e.test_page_api import site_args
from support.httpserver import ModelServer
from support.models import CACHE, real_model

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    Launch = Callable[..., BrowserContext]  # the `chromium` fixture (conftest.py)

pytestmark = pytest.mark.e2e

EXTENSION = Path(__file__).resolve().parents[2] / "extension"
PAGES = Path(__file__).parent / "pages"
ORT_WEB = "onnxruntime-web@1.30.0"
# ort.wasm.min.js imports the .mjs from ort.env.wasm.wasmPaths, which fetches the .wasm.
ORT_FILES = {
    "ort.wasm.min.js": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
}
API_TIMEOUT_MS = 45_000
BATCH = 3  # magika: bytes int32[N, 2048] -> target_label float32[N, 214]


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)")
    pytest.skip(reason)


def ort_web_dist() -> Path:
    """onnxruntime-web's dist/ folder, installed once into .cache/npm/ (npm, no
    install scripts: the package needs none to be served as files)."""
    folder = CACHE / "npm" / ORT_WEB.replace("@", "-")
    dist = folder / "node_modules" / "onnxruntime-web" / "dist"
    if all((dist / name).is_file() for name in ORT_FILES):
        return dist
    npm = shutil.which("npm")
    if npm is None:
        skip_or_fail("npm is missing: it installs onnxruntime-web for this test")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true}\n')
    command = [str(npm), "install", "--ignore-scripts", "--no-audit", "--no-fund", ORT_WEB]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        skip_or_fail(f"npm install {ORT_WEB} failed: {done.stderr.strip()[-500:]}")
    return dist


REFERENCE = """
import sys
import numpy as np
import onnxruntime as ort
model, feed, out = sys.argv[1:4]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
x = np.load(feed)
np.save(out, session.run(None, {session.get_inputs()[0].name: x})[0])
"""


def reference_output(model: Path, x: np.ndarray, folder: Path) -> np.ndarray:
    """ONNX Runtime's own output, computed in another process (CPU)."""
    feed, out = folder / "feed.npy", folder / "reference.npy"
    np.save(feed, x)
    command = [sys.executable, "-c", REFERENCE, str(model), str(feed), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: np.ndarray = np.load(out)
    return result


def tensor(exported: dict[str, Any]) -> np.ndarray:
    assert exported["type"] == "float32", exported["type"]
    data = np.frombuffer(base64.b64decode(exported["data"]), dtype="<f4")
    return data.reshape(exported["dims"])


@dataclass(frozen=True)
class Served:
    port: int
    model_path: Path
    query: dict[str, str]

    def origin(self, site: str) -> str:
        return f"http://{site}.localhost:{self.port}"


@pytest.fixture
def served(model_server: ModelServer) -> Iterator[Served]:
    """The test pages and ORT Web on one server (sites a.localhost, b.localhost); magika on
    another (the host downloads it from there)."""
    dist = ort_web_dist()
    path = real_model("magika")
    data = path.read_bytes()
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    query = {"url": model_server.add("magika.onnx", data), "integrity": integrity}
    with ModelServer() as pages:
        for name in ("page-tools.js", "sessions/index.html", "sessions/session-tools.js"):
            kind = "text/html" if name.endswith(".html") else "text/javascript"
            pages.add(name, (PAGES / name).read_bytes(), content_type=f"{kind}; charset=utf-8")
        for name, kind in ORT_FILES.items():
            pages.add_file(f"ort/{name}", dist / name, content_type=kind)
        yield Served(pages.port, path, query)


@pytest.fixture
def browser(
    chromium: Launch, tmp_path: Path, install_env: dict[str, str], served: Served
) -> BrowserContext:
    """Chromium with the real extension, its host installed for this profile."""
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, install_env)
    return chromium(profile, extension_dir=EXTENSION, extra_args=site_args(served.port))


def open_page(browser: BrowserContext, served: Served, site: str) -> Page:
    page = browser.new_page()
    page.set_default_timeout(API_TIMEOUT_MS)
    page.goto(f"{served.origin(site)}/sessions/index.html")
    page.wait_for_function("() => window.sessionTest && window.webmodels && window.ort")
    return page


def test_a_page_runs_a_real_model_in_the_host_and_in_ort_web_with_the_same_results(
    browser: BrowserContext, served: Served, tmp_path: Path
) -> None:
    x = np.random.default_rng(5).integers(0, 257, size=(BATCH, 2048), dtype=np.int32)
    expected = reference_output(served.model_path, x, tmp_path)
    page = open_page(browser, served, "a")

    result = page.evaluate(
        "([q, x, dims]) => window.sessionTest.hostAndWasm(q, x, dims)",
        [served.query, base64.b64encode(x.astype("<i4").tobytes()).decode(), [BATCH, 2048]],
    )

    assert "error" not in result, result
    session = result["session"]
    assert session["inputNames"] == ["bytes"] and session["outputNames"] == ["target_label"]
    assert session["inputMetadata"][0]["type"] == "int32"
    assert session["inputMetadata"][0]["shape"][1] == 2048
    assert result["hostOutputIsTypedArray"] is True
    assert result["secondCompiledCacheHit"] is True
    assert result["afterRelease"]["error"]["name"] == "InvalidStateError"
    host, wasm = tensor(result["host"]), tensor(result["wasm"])
    assert host.shape == wasm.shape == expected.shape == (BATCH, 214)
    if session["provider"] == "CPUExecutionProvider":  # same ORT, same CPU: the same bits
        np.testing.assert_array_equal(host, expected)
    else:  # a GPU provider sums in another order
        np.testing.assert_allclose(host, expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(wasm, host, rtol=0, atol=1e-4)
    assert (host.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_the_host_refuses_a_bad_feed_and_keeps_sessions_to_their_site(
    browser: BrowserContext, served: Served
) -> None:
    a, b = open_page(browser, served, "a"), open_page(browser, served, "b")

    refused = a.evaluate("(q) => window.sessionTest.wrongShape(q)", served.query)
    created = a.evaluate(
        "(q) => window.webmodelsTest.raw({id: 'c', method: 'sessions.create', params: q})",
        {"sha256": hashlib.sha256(served.model_path.read_bytes()).hexdigest()},
    )
    stolen = b.evaluate(
        """(id) => window.webmodelsTest.raw({id: 'r', method: 'sessions.run',
            params: {session_id: id, feeds: {}}})""",
        created["result"]["session_id"],
    )

    assert refused["error"] is not None, refused
    assert refused["error"]["code"] == "inference_failed", refused
    assert refused["error"]["name"] == "OperationError"
    assert created["ok"] is True, json.dumps(created)
    assert stolen["ok"] is False and stolen["error"]["code"] == "session_not_found", stolen
