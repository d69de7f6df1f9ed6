"""Representations in a real browser: a page asks for a model ``{for: "webgpu"}``, the
page API sends what the WebGPU adapter reports, the host's choice follows it, and the
model runs on WebGPU (Chromium's SwiftShader adapter) in ONNX Runtime Web with the
same outputs as the host's session.

Real Chromium, the real extension and host, ONNX Runtime Web from npm (installed into
.cache/ at test time). WebGPU needs ``--enable-unsafe-webgpu
--use-webgpu-adapter=swiftshader``; WebNN is asked for with
``--enable-features=WebMachineLearningNeuralNetwork``. Where either is absent the test
says so (WebGPU: skip with the reason; WebNN: the host must then get no report, and the
reason is printed). docs/representations.md records what this Chromium has.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from e2e.conftest import install_host
from e2e.test_page_api import site_args
from e2e.test_sessions import ort_web_dist, skip_or_fail, tensor
from support.httpserver import ModelServer
from webmodels.representations.convert import relative_error
from webmodels.representations.recipes import TOLERANCE

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    Launch = Callable[..., BrowserContext]  # the `chromium` fixture (conftest.py)

pytestmark = pytest.mark.e2e

EXTENSION = Path(__file__).resolve().parents[2] / "extension"
PAGES = Path(__file__).parent / "pages"
WEBGPU_FLAGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"]
WEBNN_FLAGS = ["--enable-features=WebMachineLearningNeuralNetwork"]
# ort.webgpu.min.js (WebGPU and WASM providers) loads the asyncify build of the runtime.
ORT_FILES = {
    "ort.webgpu.min.js": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.asyncify.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.asyncify.wasm": "application/wasm",
}
API_TIMEOUT_MS = 60_000
BATCH, WIDTH, HIDDEN, CLASSES = 3, 16, 32, 8


def small_mlp(path: Path) -> Path:
    """x float32[N, 16] -> Softmax(Relu(x W1 + b1) W2) float32[N, 8], random weights:
    small enough for SwiftShader to compile at once, real enough that a lossy form shows."""
    rng = np.random.default_rng(16)
    weights = {
        "w1": rng.standard_normal((WIDTH, HIDDEN)).astype(np.float32),
        "b1": rng.standard_normal(HIDDEN).astype(np.float32),
        "w2": rng.standard_normal((HIDDEN, CLASSES)).astype(np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@dataclass(frozen=True)
class Served:
    port: int
    query: dict[str, str]


@pytest.fixture
def served(model_server: ModelServer, tmp_path: Path) -> Iterator[Served]:
    """The test page and ORT Web on one server (site a.localhost); the model on another
    (the host downloads it from there)."""
    dist = ort_web_dist()
    missing = [name for name in ORT_FILES if not (dist / name).is_file()]
    if missing:
        skip_or_fail(f"onnxruntime-web has no {', '.join(missing)}")
    data = small_mlp(tmp_path / "mlp.onnx").read_bytes()
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    query = {"url": model_server.add("mlp.onnx", data), "integrity": integrity}
    with ModelServer() as pages:
        for name in ("representations/index.html", "representations/representation-tools.js"):
            kind = "text/html" if name.endswith(".html") else "text/javascript"
            pages.add(name, (PAGES / name).read_bytes(), content_type=f"{kind}; charset=utf-8")
        for name, kind in ORT_FILES.items():
            pages.add_file(f"ort/{name}", dist / name, content_type=kind)
        yield Served(pages.port, query)


@dataclass(frozen=True)
class Browser:
    context: BrowserContext
    store: Path


@pytest.fixture
def browser(
    chromium: Launch, tmp_path: Path, install_env: dict[str, str], served: Served
) -> Browser:
    """Chromium with WebGPU on SwiftShader, WebNN asked for, the real extension and its
    host installed for this profile."""
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, install_env)
    args = [*site_args(served.port), *WEBGPU_FLAGS, *WEBNN_FLAGS]
    return Browser(chromium(profile, extension_dir=EXTENSION, extra_args=args), store)


def open_page(browser: Browser, served: Served) -> Page:
    page = browser.context.new_page()
    page.set_default_timeout(API_TIMEOUT_MS)
    page.goto(f"http://a.localhost:{served.port}/representations/index.html")
    page.wait_for_function("() => window.representationTest && window.webmodels && window.ort")
    return page


def asked_lines(store: Path, count: int) -> list[str]:
    """The host's log lines for the representations pages asked for (methods/models.py),
    once `count` of them are there (the host writes its log as it answers)."""
    pattern = re.compile(r"representation asked: (.*)$", re.M)
    deadline = time.monotonic() + 30
    while True:
        text = "".join(log.read_text(errors="replace") for log in store.rglob("host.log*"))
        lines = pattern.findall(text)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_a_page_gets_the_form_its_webgpu_adapter_fits_and_runs_it_on_webgpu(
    browser: Browser, served: Served
) -> None:
    started = time.monotonic()
    page = open_page(browser, served)
    found = page.evaluate("() => window.representationTest.runtimes()")
    if "absent" in found["webgpu"]:
        skip_or_fail(f"no WebGPU adapter in this Chromium: {found['webgpu']['absent']}")
    f16 = "shader-f16" in found["webgpu"]["features"]
    x = np.random.default_rng(7).standard_normal((BATCH, WIDTH)).astype("<f4")
    feed = [base64.b64encode(x.tobytes()).decode(), [BATCH, WIDTH]]

    run = "([q, r, p, x, dims]) => window.representationTest.loadAndRun(q, r, p, x, dims)"
    gpu = page.evaluate(run, [served.query, "webgpu", ["webgpu", "wasm"], *feed])
    webnn = [] if "absent" in found["webnn"] else ["webnn"]
    nn = page.evaluate(run, [served.query, "webnn", webnn, *feed])

    assert "error" not in gpu, gpu
    assert "error" not in nn, nn
    # The host got the adapter's report and chose by it: fp32 on SwiftShader (no
    # shader-f16), which is the stored form, so the model is given as stored.
    webgpu_line, webnn_line = asked_lines(browser.store, 2)
    assert webgpu_line == (
        f"for webgpu, device: webgpu shader-f16 {'yes' if f16 else 'no'}"
        f" -> {'fp16' if f16 else 'fp32'} onnx opset source"
    )
    assert "subgroups" not in webgpu_line  # only the fact the choice used crossed over
    host = tensor(gpu["outputs"]["host"])
    assert host.shape == (BATCH, CLASSES)
    assert gpu["ortWebgpuDevice"] == found["webgpu"]["architecture"]  # really on the adapter
    np.testing.assert_allclose(tensor(gpu["outputs"]["webgpu"]), host, rtol=0, atol=1e-5)
    np.testing.assert_allclose(tensor(gpu["outputs"]["wasm"]), host, rtol=0, atol=1e-5)
    if "absent" in found["webnn"]:  # measured here: createContext is NotSupportedError
        assert webnn_line == "for webnn, device: nothing reported -> fp32 onnx opset source"
        print(f"WebNN absent, not run: {found['webnn']['absent']}")
    else:
        f16_nn = all("float16" in found["webnn"][k] for k in ("input", "constant"))
        assert webnn_line.startswith(
            f"for webnn, device: webnn float16 {'yes' if f16_nn else 'no'}"
        )
        np.testing.assert_allclose(tensor(nn["outputs"]["webnn"]), host, rtol=0, atol=1e-3)
    print(f"milliseconds: for webgpu {gpu['ms']}, for webnn {nn['ms']}")
    added = time.monotonic()
    derive_ahead_from_the_page(page, browser.store, served.query)
    split = page.evaluate(
        "([q, x, dims]) => window.representationTest.loadSplitAndRun(q, x, dims)",
        [served.query, *feed],
    )
    assert "error" not in split, split
    # The split is a model of files: the host session over both, and ORT Web given both.
    assert split["kind"] == "WebModelFiles" and split["info"]["graph"] == "model.onnx"
    roles = {path: part["role"] for path, part in split["info"]["files"].items()}
    assert roles == {"model.onnx": "graph", "model.onnx_data": "external_data"}
    np.testing.assert_array_equal(tensor(split["outputs"]["host"]), host)
    np.testing.assert_allclose(tensor(split["outputs"]["wasm"]), host, rtol=0, atol=1e-5)
    print(f"derive ahead and the split: {time.monotonic() - added:.1f} s")
    added = time.monotonic()
    forms_on_wasm(page, served, feed, host)
    print(f"fp16 and int8 forms on WASM: {time.monotonic() - added:.1f} s")
    print(
        f"adapter {found['webgpu']['architecture']}, shader-f16 {f16}; "
        f"test body {time.monotonic() - started:.1f} s"
    )


def forms_on_wasm(page: Page, served: Served, feed: list[Any], fp32: np.ndarray) -> None:
    """The fp16 form (asked by dtype, as a page whose adapter has `shader-f16` gets it
    for WebGPU) and `{for: "wasm", dtype: "int8"}`, derived from the stored fp32: each
    runs in a host session and in ONNX Runtime Web on WASM, alike, and within its
    dtype's tolerance of the fp32 outputs (twice it: these inputs are not the check's)."""
    run = "([q, r, p, x, dims]) => window.representationTest.loadAndRun(q, r, p, x, dims)"
    for asked in ({"dtype": "fp16"}, {"for": "wasm", "dtype": "int8"}):
        form = page.evaluate(run, [served.query, asked, ["wasm"], *feed])
        assert "error" not in form, form
        dtype = asked["dtype"]
        assert form["info"]["representation"]["dtype"] == dtype, form["info"]
        source = base64.b64decode(served.query["integrity"].removeprefix("sha256-")).hex()
        assert form["info"]["derived_from"] == source
        host, wasm = tensor(form["outputs"]["host"]), tensor(form["outputs"]["wasm"])
        np.testing.assert_allclose(wasm, host, rtol=0, atol=1e-3)
        error = relative_error(fp32, wasm)
        print(f"{dtype} on WASM: relative error {error:.2e} (tolerance {TOLERANCE[dtype]})")
        assert error <= 2 * TOLERANCE[dtype]


def derivations(store: Path, deadline_s: float = 0) -> int:
    """How many forms the host derived (its log), waiting up to ``deadline_s`` for one."""
    deadline = time.monotonic() + deadline_s
    while True:
        text = "".join(log.read_text(errors="replace") for log in store.rglob("host.log*"))
        made = text.count("derived {")
        if made or time.monotonic() >= deadline:
            return made
        time.sleep(0.1)


def derive_ahead_from_the_page(page: Page, store: Path, query: dict[str, str]) -> None:
    """``webmodels.load(query, {derive})``: the page API refuses a malformed list itself,
    and sends a good one, after which the host derives the form in the background; the
    page's later load in that representation finds it made (derived once)."""
    refused = page.evaluate(
        "q => webmodels.load(q, {derive: 'int8'}).then(() => 'sent', (e) => e.name)", query
    )
    assert refused == "TypeError"
    # An opset conversion: the cheapest form to make (no quantizer to import)
    later = {"for": "wasm", "opset": 18}
    ahead = page.evaluate(
        "([q, f]) => webmodels.load(q, {derive: [f]}).then((m) => m.info)", [query, later]
    )
    assert ahead.get("derived_from") is None  # the model itself; the form is made after
    assert derivations(store, deadline_s=60) == 1, "the form asked ahead was never derived"
    form = page.evaluate(
        "([q, f]) => webmodels.load(q, {representation: f}).then((m) => m.info)", [query, later]
    )
    assert form["derived_from"] == ahead["sha256"]
    assert form["representation"]["opset"] == 18
    assert derivations(store) == 1  # found made, not derived again
