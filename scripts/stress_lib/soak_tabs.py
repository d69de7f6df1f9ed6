"""The browser soak's tabs (stress_lib/soak.py): four tabs on three sites
(``http://a.localhost:PORT`` twice, ``b`` and ``c``: loopback origins from one local
server), what one tab does in a round (`TabPlan`, run by `ROUND_JS` inside the page so
that the four tabs' rounds run at once), and closing and reopening a tab. It owns
nothing the host imports."""

from __future__ import annotations

import base64
import hashlib
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    from support.httpserver import ModelServer

API_TIMEOUT_MS = 60_000
TABS = ("a1", "a2", "b", "c")  # tab name -> its site is the first letter
# The models a round cancels or closes a tab under are served at SLOW_RATE bytes/s; the
# soak acts once the server has sent some of one, 8 s before it could have sent all.
SLOW_RATE = 64 * 1024
SLOW_BYTES = 512 * 1024

# One tab's round, started in the page and left running (window.__soakRound): a COS
# write in 1 to 4 write() calls and its read, a load by URL and integrity read by
# arrayBuffer() and stream(), a host session (released, or kept when the tab is closed
# after the round), and its cancel: a download aborted part way, or a stream() read
# cancelled after its first chunk (the model is then read again in full).
ROUND_JS = """(plan) => {
  const T = window.webmodelsTest;
  const fail = (error) =>
    ({ error: { name: error?.name, message: String(error?.message ?? error) } });
  async function session(query, keep) {
    try {
      const model = await window.webmodels.load(query);
      const session = await model.createSession();
      const x = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
      const feeds = { [session.inputNames[0]]: { type: "float32", dims: [2, 4], data: x } };
      const y = (await session.run(feeds))[session.outputNames[0]];
      if (keep) window.__soakKept = session; else await session.release();
      return { dims: Array.from(y.dims), data: Array.from(y.data) };
    } catch (error) { return fail(error); }
  }
  async function cancelDownload(query) {  // aborted by the soak once bytes flow
    const controller = new AbortController();
    window.__soakAbort = () => controller.abort();
    try {
      await window.webmodels.load(query, { signal: controller.signal });
      return { settled: "loaded" };
    } catch (error) { return fail(error); }
  }
  async function cancelStream(query) {
    try {
      const model = await window.webmodels.load(query);
      const reader = model.stream().getReader();
      const first = await reader.read();
      await reader.cancel();
      const again = await T.sha256Hex(await new Response(model.stream()).arrayBuffer());
      return { first: first.value?.byteLength ?? 0, again };
    } catch (error) { return fail(error); }
  }
  async function closing(plan) {  // this tab is closed under these
    T.cosStore(plan.cos.hex, plan.cos.data, plan.cos.parts);
    return await T.load(plan.slow);
  }
  window.__soakRound = (async () => {
    if (plan.closed) return await closing(plan);
    const out = {};
    out.cosStore = await T.cosStore(plan.cos.hex, plan.cos.data, plan.cos.parts);
    out.cosGet = await T.cosGet(plan.cos.hex);
    out.load = await T.load(plan.query);
    out.session = await session(plan.query, plan.keep);
    if (plan.cancel === "download") out.cancelDownload = await cancelDownload(plan.slow);
    if (plan.cancel === "stream") out.cancelStream = await cancelStream(plan.query);
    return out;
  })().catch(fail);
  return true;
}"""


@dataclass
class TabPlan:
    """What one tab does in a round, and the answers it must give."""

    tab: str
    cos: dict[str, Any]  # hex, data (base64), parts
    cos_size: int
    query: dict[str, str]  # url, integrity
    digest: str
    seed: int
    cancel: str | None = None  # "download" | "stream"
    keep: bool = False  # keep the session open: the tab is closed after the round
    closed: bool = False  # the tab is closed while its round runs
    slow: dict[str, str] | None = None  # a slowly served model (cancel, close)
    slow_path: str = ""
    slow_digest: str = ""

    def js(self) -> dict[str, Any]:
        return {
            "cos": self.cos,
            "query": self.query,
            "keep": self.keep,
            "closed": self.closed,
            "cancel": self.cancel,
            "slow": self.slow,
        }

    def expected_output(self) -> np.ndarray[Any, Any]:
        return (np.arange(8, dtype=np.float32).reshape(2, 4) + np.arange(4) + self.seed).ravel()


def integrity(digest: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(digest)).decode()


def fresh_model(
    models: ModelServer, name: str, rng: random.Random, size: int
) -> tuple[dict[str, str], str, int]:
    """A new tiny model of about `size` bytes on the model server: query, digest, seed."""
    from support.models import tiny_model

    seed = rng.randint(1, 1 << 20)
    with tempfile.TemporaryDirectory() as folder:
        data = tiny_model(Path(folder) / "m.onnx", weight_bytes=size, seed=seed).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    return {"url": models.add(name, data), "integrity": integrity(digest)}, digest, seed


def plan_tab(models: ModelServer, tab: str, seq: int, rng: random.Random) -> TabPlan:
    data = rng.randbytes(rng.randint(1, 384 * 1024))
    hex_ = hashlib.sha256(data).hexdigest()
    cos = {"hex": hex_, "data": base64.b64encode(data).decode(), "parts": rng.randint(1, 4)}
    query, digest, seed = fresh_model(models, f"m{seq}-{tab}.onnx", rng, rng.randint(1, 256) << 10)
    return TabPlan(tab, cos, len(data), query, digest, seed)


def add_slow(models: ModelServer, plan: TabPlan, seq: int, rng: random.Random) -> None:
    """Give `plan` a model served at SLOW_RATE (a cancel or a close lands part way)."""
    from support.httpserver import Fault

    name = f"slow{seq}-{plan.tab}.onnx"
    plan.slow, plan.slow_digest, _ = fresh_model(models, name, rng, SLOW_BYTES)
    plan.slow_path = name
    models.fault(name, Fault("slow", rate=SLOW_RATE, times=None))


@dataclass
class Tabs:
    """The browser, its four tabs, the pages' port and the model server."""

    context: BrowserContext
    port: int
    models: ModelServer
    pages: dict[str, Page] = field(default_factory=dict)

    def origin(self, site: str) -> str:
        return f"http://{site[0]}.localhost:{self.port}"

    def page(self, tab: str) -> Page:
        if tab not in self.pages:
            page = self.context.new_page()
            page.set_default_timeout(API_TIMEOUT_MS)
            page.goto(f"{self.origin(tab)}/index.html")
            page.wait_for_function("() => window.webmodelsTest && window.webmodels")
            self.pages[tab] = page
        return self.pages[tab]

    def close(self, tab: str) -> None:
        """Close the tab (the next call opens it again)."""
        page = self.pages.pop(tab, None)
        if page is not None:
            page.close()

    def call(self, tab: str, tool: str, *args: Any) -> Any:
        return self.page(tab).evaluate(
            "([tool, args]) => window.webmodelsTest[tool](...args)", [tool, list(args)]
        )

    def start(self, plan: TabPlan) -> None:
        self.page(plan.tab).evaluate(ROUND_JS, plan.js())

    def abort(self, tab: str) -> None:
        """Abort the tab's cancelled download (its round started it)."""
        self.page(tab).wait_for_function("() => window.__soakAbort")
        self.page(tab).evaluate("() => window.__soakAbort()")

    def result(self, tab: str) -> dict[str, Any]:
        got: Any = self.page(tab).evaluate("() => window.__soakRound")
        return got if isinstance(got, dict) else {"error": got}
