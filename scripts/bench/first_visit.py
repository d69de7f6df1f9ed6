"""A first visit to an AI page, with the extension and without it: a page in real
headless Chromium loads a large ONNX model the way a client library does — `fetch()`
it from a model server, store it (through `navigator.crossOriginStorage`:
`requestFileHandle(hash, {create: true})` → `createWritable()` → `write(blob)` →
awaited `close()`; without the extension, the Cache API, awaited), then create an ONNX
Runtime Web (WASM) session from the bytes. Before fetching, the page asks the store
(`requestFileHandle(hash)`; the Cache API without the extension) and uses what it gets.

Rounds alternate between a profile with the real extension and host and a plain
profile. Each round uses new models and times, per profile: the first site
(a.localhost) loading a model, a second site (b.localhost) loading the same model
(strict mode, not common: it downloads again), and a second site loading a model on a
signed commons list that the first site has stored (with the extension: no download).
Prints per round and medians: time until the bytes are ready, session create, and the
ratios with / without the extension; then where storing the model went, step by step
(first_visit_tables.py: the page's steps, and the host's from its log).

Usage: .venv/bin/python scripts/bench/first_visit.py [--rounds 3] [--size-mb 90]
       [--rate-mbps 0 (unlimited)] [--json PATH (the figures, for scripts/bench/report)]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from first_visit_tables import (  # noqa: E402
    CASES,
    PROFILES,
    Breakdown,
    Figures,
    HostLog,
    fmt_row,
    report,
)

from e2e.conftest import CHROMIUM, launch_chromium, require_chromium  # noqa: E402
from e2e.test_page_api import EXTENSION, site_args  # noqa: E402
from e2e.test_sessions import ORT_FILES, ort_web_dist  # noqa: E402
from privacy.signing import Signer, entry, trusting_config  # noqa: E402
from support.httpserver import Fault, ModelServer  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

PAGE = """<!doctype html><meta charset="utf-8"><title>first visit</title>
<script src="/ort/ort.wasm.min.js"></script>
<script>ort.env.wasm.wasmPaths = "/ort/"; ort.env.wasm.numThreads = 1;</script>
"""
# What a client library does; `crossOriginStorage` may be missing (no extension).
LOAD = """async ({ url, sha256 }) => {
  const t0 = performance.now();
  const cos = navigator.crossOriginStorage;
  const hash = { algorithm: "SHA-256", value: sha256 };
  let bytes = null, fetched = null, stored = null, source = "store";
  const phases = {}; // ms per step of storing what was fetched
  if (cos) {
    try {
      const file = await (await cos.requestFileHandle(hash)).getFile();
      bytes = new Uint8Array(await file.arrayBuffer());
    } catch (e) {
      if (e.name !== "NotFoundError") throw e;
    }
  } else if (globalThis.caches) {
    const hit = await (await caches.open("models")).match(url);
    if (hit) bytes = new Uint8Array(await hit.arrayBuffer());
  }
  const looked = performance.now();
  if (!bytes) {
    phases.lookup = looked - t0;
    source = "network";
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const blob = await response.blob();
    fetched = performance.now() - t0;
    phases.fetch = fetched + t0 - looked;
    let mark = fetched + t0;
    const step = (name) => {
      const now = performance.now();
      phases[name] = now - mark;
      mark = now;
    };
    if (cos) {
      const handle = await cos.requestFileHandle(hash, { create: true });
      step("requestFileHandle");
      const writable = await handle.createWritable();
      step("createWritable");
      await writable.write(blob);
      step("write");
      await writable.close();
      step("close");
    } else if (globalThis.caches) {
      await (await caches.open("models")).put(url, new Response(blob));
      step("cache.put");
    }
    stored = performance.now() - t0;
    bytes = new Uint8Array(await blob.arrayBuffer());
    step("arrayBuffer");
  }
  const ready = performance.now() - t0;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const created = performance.now() - t0;
  await session.release();
  return { source, fetched, stored, ready, session: created - ready, total: created, phases };
}"""


# --- the model -------------------------------------------------------------------------


def base_model(size_mb: int) -> bytes:
    """A MatMul/Add chain with float32 initializers of at least `size_mb` MB, made
    once and cached in the temp folder."""
    path = Path(tempfile.gettempdir()) / "webmodels-bench" / f"first_visit-{size_mb}mb.onnx"
    if path.is_file():
        return path.read_bytes()
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    width = 1024
    layers = -(-size_mb * 1_000_000 // (width * width * 4))
    rng = np.random.default_rng(12)
    nodes, weights = [], []
    for i in range(layers):
        w = (rng.standard_normal((width, width), dtype=np.float32) * 0.03).astype(np.float32)
        b = np.zeros(width, dtype=np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        source = "x" if i == 0 else f"h{i - 1}"
        nodes += [
            helper.make_node("MatMul", [source, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], ["y" if i == layers - 1 else f"h{i}"]),
        ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])
    graph = helper.make_graph(nodes, "first_visit", [x], [y], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def variant(base: bytes, label: str) -> bytes:
    """The same graph with its own SHA-256 (a doc string), so every visit is new."""
    import onnx

    model = onnx.load_from_string(base)
    model.doc_string = f"webmodels first-visit benchmark: {label}"
    data: bytes = model.SerializeToString()
    return data


# --- servers and browsers --------------------------------------------------------------


def serve_pages(stack: ExitStack) -> ModelServer:
    pages = stack.enter_context(ModelServer())
    pages.add("bench.html", PAGE.encode(), content_type="text/html; charset=utf-8")
    dist = ort_web_dist()
    for name, kind in ORT_FILES.items():
        pages.add_file(f"ort/{name}", dist / name, content_type=kind)
    return pages


@dataclass(frozen=True)
class Served:
    url: str
    sha256: str


def serve_models(
    stack: ExitStack, work: Path, size_mb: int, rounds: int, rate_mbps: float
) -> tuple[list[dict[str, Served]], list[dict[str, Any]]]:
    """Per round a private and a common model on a local model server; and the
    commons-list entries of the common ones."""
    import hashlib

    server = stack.enter_context(ModelServer())
    base = base_model(size_mb)
    served: list[dict[str, Served]] = []
    common: list[dict[str, Any]] = []
    for n in range(rounds):
        models: dict[str, Served] = {}
        for kind in ("private", "common"):
            data = variant(base, f"round {n} {kind}")
            path = work / f"r{n}-{kind}.onnx"
            path.write_bytes(data)
            url = server.add_file(f"models/{path.name}", path)
            if rate_mbps > 0:
                server.fault(url, Fault("slow", rate=int(rate_mbps * 125_000), times=None))
            models[kind] = Served(url, hashlib.sha256(data).hexdigest())
            if kind == "common":
                common.append(entry(data, name=f"bench/common-{n}"))
        served.append(models)
    return served, common


def extension_browser(
    stack: ExitStack, driver: Playwright, work: Path, port: int, common: list[dict[str, Any]]
) -> BrowserContext:
    """A throw-away profile with the extension, its host registered on a throw-away
    store that trusts a throw-away commons key; the common models on its list."""
    home = work / "ext"
    (home / "xdg").mkdir(parents=True)
    signer = Signer()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "xdg")}
    env |= {"WEBMODELS_LOG_DIR": str(home / "logs")}
    env |= trusting_config(home, signer, system_preinstalled=False)
    cli = [sys.executable, "-m", "webmodels", "--store", str(home / "store")]
    install = ["install", "--browser", "chromium", "--user-data-dir", str(home / "profile")]
    subprocess.run([*cli, *install], env=env, check=True, capture_output=True)
    listed = signer.write(home / "commons.json", 1, common)
    subprocess.run(
        [*cli, "commons", "update", str(listed)], env=env, check=True, capture_output=True
    )
    context = launch_chromium(
        driver,
        user_data_dir=home / "profile",
        config_home=home / "xdg",
        extension_dir=EXTENSION,
        env=env,
        extra_args=site_args(port),
    )
    stack.callback(context.close)
    return context


def plain_browser(stack: ExitStack, driver: Playwright, work: Path, port: int) -> BrowserContext:
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    args += ["--disable-background-networking", "--disable-component-update"]
    context = driver.chromium.launch_persistent_context(
        str(work / "plain-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*args, *site_args(port)],
    )
    stack.callback(context.close)
    return context


@contextmanager
def opened(context: BrowserContext, url: str, extension: bool) -> Iterator[Any]:
    page = context.new_page()
    page.set_default_timeout(600_000)
    try:
        page.goto(url)
        ready = "navigator.crossOriginStorage && " if extension else ""
        page.wait_for_function(f"() => {ready}window.ort && ort.InferenceSession")
        yield page
    finally:
        page.close()


def visit(context: BrowserContext, origin: str, model: Served, extension: bool) -> dict[str, Any]:
    with opened(context, f"{origin}/bench.html", extension) as page:
        result: dict[str, Any] = page.evaluate(LOAD, {"url": model.url, "sha256": model.sha256})
        return result


WARM_UP = """async () => {
  const cos = navigator.crossOriginStorage;
  if (!cos) return;
  const value = "00".repeat(32);
  await cos.requestFileHandle({ algorithm: "SHA-256", value }).catch(() => null);
}"""


def warm_up(context: BrowserContext, port: int, extension: bool) -> None:
    """A visit to a third site first (untimed): the browser has run a page, and with
    the extension its host has started, before the first timed visit."""
    with opened(context, f"http://c.localhost:{port}/bench.html", extension) as page:
        page.evaluate(WARM_UP)


# --- the run ---------------------------------------------------------------------------


def run_round(
    contexts: dict[str, BrowserContext],
    port: int,
    models: dict[str, Served],
    n: int,
    host_log: HostLog,
) -> list[tuple[str, str, dict[str, Any]]]:
    a, b = f"http://a.localhost:{port}", f"http://b.localhost:{port}"
    rows = []
    for profile in PROFILES[:: 1 if n % 2 == 0 else -1]:
        context, extension = contexts[profile], profile == "extension"
        steps = [
            ("first", a, models["private"]),
            ("second strict", b, models["private"]),
            (None, a, models["common"]),  # the first site stores the common model
            ("second common", b, models["common"]),
        ]
        for case, origin, model in steps:
            result = visit(context, origin, model, extension)
            if extension:
                result["host"] = host_log.take()  # the host's steps of this write, if any
            if case is not None:
                rows.append((profile, case, result))
    return rows


def as_json(figures: Figures, *, model_bytes: int, rate_mbps: float, rounds: int) -> dict[str, Any]:
    """Every round's seconds per case and profile, for scripts/bench/report."""
    cases = {
        case: {
            profile: {
                "ready": figures.ready[(profile, case)],
                "total": figures.total[(profile, case)],
            }
            for profile in PROFILES
        }
        for case in CASES
    }
    return {
        "bench": "first_visit",
        "browser": "chromium",
        "model_bytes": model_bytes,
        "rate_mbps": rate_mbps,
        "rounds": rounds,
        "seconds": cases,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=90)
    parser.add_argument("--rate-mbps", type=float, default=0, help="0: unlimited")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    require_chromium()
    from playwright.sync_api import sync_playwright

    figures, breakdown = Figures(), Breakdown()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        pages = serve_pages(stack)
        served, common = serve_models(stack, work, args.size_mb, args.rounds, args.rate_mbps)
        size = Path(work / "r0-private.onnx").stat().st_size
        rate = f"{args.rate_mbps:g} Mbit/s" if args.rate_mbps > 0 else "unlimited"
        print(f"model {size / 1e6:.1f} MB, model server {rate}, {args.rounds} rounds")
        driver = stack.enter_context(sync_playwright())
        contexts = {
            "extension": extension_browser(stack, driver, work, pages.port, common),
            "plain": plain_browser(stack, driver, work, pages.port),
        }
        for profile, context in contexts.items():
            warm_up(context, pages.port, profile == "extension")
        host_log = HostLog(work / "ext" / "logs")
        host_log.take()  # the warm-up's
        for n, models in enumerate(served):
            for profile, case, result in run_round(contexts, pages.port, models, n, host_log):
                print(fmt_row(n, profile, case, result), flush=True)
                figures.add(profile, case, result)
                breakdown.add(profile, case, result)
    report(figures)
    breakdown.print_table()
    if args.json:
        found = as_json(figures, model_bytes=size, rate_mbps=args.rate_mbps, rounds=args.rounds)
        found["phases"] = breakdown.as_json()
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
