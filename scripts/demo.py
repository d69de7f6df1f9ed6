"""webmodels end to end: a real model through a web page, the extension, the host and the popup.

In a throw-away Chromium profile and store:

1. registers the native host for that profile (`webmodels install --user-data-dir`),
2. serves a demo site and, from another origin, a real ONNX model (magika 1.0.3,
   taken out of its PyPI wheel), throttled so the progress can be seen,
3. starts headless Chromium with the extension; the demo page calls
   `window.webmodels.load({url, integrity}, {monitor})`, shows the progress and the
   model's info, and reads the bytes back,
4. a second site asks for the same model: magika is on the signed commons list, so
   it comes from the store without a download (a model that is not common would be
   transferred again, so that no site learns what another one stored); one copy,
5. opens the popup and reads it: the model, both sites, the deduplication savings,
6. saves screenshots of the page and the popup, and checks the store with the CLI.

Exit status 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.httpserver import Fault, ModelServer  # noqa: E402
from support.models import REAL_MODELS, real_model  # noqa: E402
from support.png import distinct_colours  # noqa: E402
from webmodels.catalogs.documents import sign_catalog  # noqa: E402
from webmodels.signing import public_key_text  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

EXTENSION = ROOT / "extension"
DEMO_PAGES = ROOT / "tests" / "e2e" / "pages" / "demo"
EXTENSION_ID = "njlggidnjaijbhcfhmipfndcjjmocgpp"  # webmodels.config.CHROMIUM_EXTENSION_ID
POPUP_URL = f"chrome-extension://{EXTENSION_ID}/popup/popup.html"
POPUP_SIZE = {"width": 380, "height": 560}
PAGE_SIZE = {"width": 900, "height": 760}
LOAD_TIMEOUT_MS = 120_000
UI_TIMEOUT_MS = 20_000
DOWNLOAD_WATCH_S = 5.0
MIN_COLOURS = 50  # a blank or half-drawn screenshot has far fewer
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


# --- output ---------------------------------------------------------------------------


@dataclass
class Log:
    """Timestamped lines, and the checks that decide the exit status."""

    started: float = field(default_factory=time.perf_counter)
    failures: list[str] = field(default_factory=list)

    def step(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:5.1f}s] {text}", flush=True)

    def detail(self, text: str) -> None:
        print(f"         {text}", flush=True)

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            print(f"         FAILED: {what}", flush=True)
        return ok


def mib(size: int) -> str:
    return f"{size / 1048576:.2f} MiB"


@contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t:` … `t[0]` is the seconds the block took."""
    box = [0.0]
    began = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - began


# --- the sandbox: a store, a profile, a HOME -------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def profile(self) -> Path:
        return self.root / "chromium-profile"

    @property
    def config_home(self) -> Path:
        return self.root / "xdg-config"

    def env(self) -> dict[str, str]:
        """For `webmodels` and for Chromium (whose native hosts inherit it): nothing
        is read from or written to the user's real home, config or logs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
        env.pop("CHROME_CONFIG_HOME", None)
        return {
            **env,
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.config_home),
            "WEBMODELS_CONFIG": str(self.root / "config.toml"),
            "WEBMODELS_LOG_DIR": str(self.root / "logs"),
        }

    def create(self) -> None:
        for path in (self.root / "home", self.config_home, self.root / "logs"):
            path.mkdir(parents=True, exist_ok=True)
        (self.root / "config.toml").write_text("system_preinstalled = false\n")

    def webmodels(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "webmodels", "--store", str(self.store), *args]
        return subprocess.run(
            command, env=self.env(), capture_output=True, text=True, timeout=120, check=True
        )

    def host_log_tail(self, lines: int = 15) -> list[str]:
        path = self.root / "logs" / "host.log"
        return path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else []


# --- servers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    path: Path
    sha256: str
    integrity: str
    size: int


def the_model() -> Model:
    path = real_model("magika")
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()
    integrity = "sha256-" + base64.b64encode(digest).decode()
    return Model(path, digest.hex(), integrity, len(data))


def serve_site(stack: ExitStack) -> ModelServer:
    site = stack.enter_context(ModelServer())
    for file in sorted(DEMO_PAGES.iterdir()):
        if file.suffix in CONTENT_TYPES:
            site.add(file.name, file.read_bytes(), content_type=CONTENT_TYPES[file.suffix])
    return site


def serve_model(stack: ExitStack, model: Model, rate_mbps: float) -> tuple[ModelServer, str]:
    cdn = stack.enter_context(ModelServer())
    url = cdn.add_file("models/magika-1.0.3/model.onnx", model.path)
    if rate_mbps > 0:
        cdn.fault(url, Fault("slow", rate=int(rate_mbps * 125_000), times=None))
    return cdn, url


def page_url(origin: str, model: Model, model_url: str) -> str:
    query = {"model": model_url, "integrity": model.integrity, "size": model.size}
    return f"{origin}/index.html?{urlencode({**query, 'name': 'magika 1.0.3 model.onnx'})}"


# --- the browser ----------------------------------------------------------------------


def e2e_browser() -> Any:
    """tests/e2e/conftest.py, for its `CHROMIUM` and `launch_chromium`: the demo
    starts Chromium exactly as the end-to-end tests do (binary, flags, environment)."""
    spec = importlib.util.spec_from_file_location(
        "webmodels_e2e_browser", ROOT / "tests" / "e2e" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_load(context: BrowserContext, url: str) -> Page:
    """Open the demo page and press its button (a real click: downloads need a
    user gesture)."""
    page = context.new_page()
    page.set_viewport_size(PAGE_SIZE)
    page.goto(url)
    page.wait_for_selector("body:not([data-state=starting])", timeout=UI_TIMEOUT_MS)
    if page.get_attribute("body", "data-state") == "ready":
        page.click("#load")
    return page


def finish_load(page: Page) -> dict[str, Any]:
    """The outcome the demo page writes into #result."""
    page.wait_for_selector("body[data-state=done], body[data-state=error]", timeout=LOAD_TIMEOUT_MS)
    result: dict[str, Any] = json.loads(page.text_content("#result") or "{}")
    return result


def progress_line(result: dict[str, Any], size: int) -> str:
    events = result.get("events") or []
    if not events:
        return "no download.progress events (the model came from the store)"
    picks = events if len(events) <= 8 else [events[i * (len(events) - 1) // 7] for i in range(8)]
    steps = " ".join(f"{round(100 * e['loaded'] / (e['total'] or 1))}%" for e in picks)
    span = (events[-1]["t"] - events[0]["t"]) / 1000
    rate = f", {size / span / 1e6:.1f} MB/s" if span > 0.05 else ""
    return f"progress {steps}  ({len(events)} events over {span:.1f} s{rate})"


def source_words(
    info: dict[str, Any], *, downloaded_now: bool, by: str = "another site (common model)"
) -> str:
    """Where the page's model came from, in a user's words. `source` is how the stored
    copy first arrived, so a common model another site downloaded says "downloaded"
    even where this site downloaded nothing."""
    source = info.get("source")
    if source == "preinstalled":
        return "pre-installed on this computer — no download"
    if source == "imported":
        return "imported by the user — no download"
    if downloaded_now:
        return "downloaded now by this site"
    return f"already stored by {by} — no download"


def describe_info(info: dict[str, Any], *, downloaded_now: bool) -> list[str]:
    def tensors(items: list[dict[str, Any]]) -> str:
        return ", ".join(f"{t['name']}:{t['type']}{t['dims']}" for t in items or [])

    opsets = ", ".join(f"{k} {v}" for k, v in (info.get("opsets") or {}).items())
    return [
        f"sha256 {info['sha256'][:16]}…  {info['size']:,} bytes  {info['format']}",
        f"source: {source_words(info, downloaded_now=downloaded_now)}",
        f"inputs {tensors(info.get('inputs', []))} → outputs {tensors(info.get('outputs', []))}",
        f"opsets {opsets}; producer {info.get('producer')}",
    ]


POPUP_CONTENTS = """() => {
  const text = (el, sel) => el.querySelector(sel)?.textContent.trim() ?? null;
  return {
    state: document.body.dataset.state,
    host: text(document, '#host-status'),
    host_details: document.getElementById('host-status').title,
    totals: [...document.querySelectorAll('#totals .tile')].map((t) => ({
      stat: t.dataset.stat, value: text(t, '.tile-value'), hint: text(t, '.tile-hint') })),
    downloads: [...document.querySelectorAll('#job-list li.job')].map((j) => ({
      title: text(j, '.job-title'), state: j.dataset.state, amount: text(j, '.meta') })),
    models: [...document.querySelectorAll('#model-list li.model')].map((m) => ({
      sha256: m.dataset.sha256, title: text(m, '.model-title'), size: text(m, '.model-size'),
      pinned: m.dataset.pinned === 'true',
      sites: [...m.querySelectorAll('.site-chip')].map((c) => c.dataset.topSite) })),
  };
}"""


def open_popup(context: BrowserContext) -> Page:
    popup = context.new_page()
    popup.set_viewport_size(POPUP_SIZE)
    popup.goto(POPUP_URL)
    popup.wait_for_selector("body:not([data-state=connecting])", timeout=UI_TIMEOUT_MS)
    return popup


def read_popup(popup: Page) -> dict[str, Any]:
    contents: dict[str, Any] = popup.evaluate(POPUP_CONTENTS)
    return contents


def screenshot(page: Page, path: Path, log: Log) -> None:
    page.bring_to_front()
    page.screenshot(path=str(path), full_page=True)
    colours = distinct_colours(path)
    if log.check(colours >= MIN_COLOURS, f"{path.name} shows something ({colours} colours)"):
        log.detail(f"screenshot {path}")


# --- the run --------------------------------------------------------------------------


@dataclass
class Demo:
    log: Log
    sandbox: Sandbox
    out: Path
    model: Model
    rate_mbps: float

    def run(self) -> None:
        self.register()
        with ExitStack() as stack:
            site = serve_site(stack)
            _, model_url = serve_model(stack, self.model, self.rate_mbps)
            urls = [
                page_url(site.url("/").rstrip("/"), self.model, model_url),
                page_url(f"http://localhost:{site.port}", self.model, model_url),
            ]
            throttle = f"throttled to {self.rate_mbps:g} Mbit/s" if self.rate_mbps else "full speed"
            self.log.step(f"model server {model_url} ({throttle}); demo site on port {site.port}")
            self.add_catalog(model_url)
            self.browse(stack, urls)

    def register(self) -> None:
        self.sandbox.create()
        with timed() as t:
            self.sandbox.webmodels(
                "install", "--browser", "chromium", "--user-data-dir", str(self.sandbox.profile)
            )
        self.log.step(f"host registered for a throw-away Chromium profile ({t[0]:.1f} s)")
        self.log.detail(f"store {self.sandbox.store}")

    def add_catalog(self, model_url: str) -> None:
        """A catalog naming the model (google/magika 1.0.3), signed with a throw-away
        key, trusted with `webmodels catalog add` as a user would."""
        key = Ed25519PrivateKey.generate()
        payload = {
            "catalog": "demo",
            "version": 1,
            "expires": "2099-01-01T00:00:00Z",
            "models": [
                {
                    "name": "google/magika",
                    "version": "1.0.3",
                    "sha256": self.model.sha256,
                    "size": self.model.size,
                    "urls": [model_url],
                    "task": "file-type-detection",
                    "license": "Apache-2.0",
                }
            ],
        }
        path = self.sandbox.root / "catalog.json"
        path.write_bytes(sign_catalog(json.dumps(payload).encode(), key))
        public = public_key_text(key.public_key())
        self.sandbox.webmodels("catalog", "add", str(path), "--key", public)
        self.log.step("a signed catalog names it google/magika 1.0.3 (`webmodels catalog add`)")

    def browse(self, stack: ExitStack, urls: list[str]) -> None:
        from playwright.sync_api import sync_playwright

        browser = e2e_browser()
        driver = stack.enter_context(sync_playwright())
        with timed() as t:
            context = browser.launch_chromium(
                driver,
                user_data_dir=self.sandbox.profile,
                config_home=self.sandbox.config_home,
                extension_dir=EXTENSION,
                env=self.sandbox.env(),
            )
        stack.callback(context.close)
        self.log.step(
            f"Chromium {context.browser.version if context.browser else ''} started"
            f" with the extension ({t[0]:.1f} s)"
        )
        self.visit(context, urls[0], "page.png", download=True)
        popup = open_popup(context)
        self.visit(context, urls[1], None, popup=popup, download=False)
        self.by_name(context, urls[0])
        self.inspect_popup(popup)
        self.inspect_store()

    def by_name(self, context: BrowserContext, first: str) -> None:
        """The first site asks by name and range; a signed catalog the user added names
        the model, and the store already holds that version for the site."""
        origin = first.split("/index.html")[0]
        spec = "google/magika@^1"
        url = f"{origin}/index.html?{urlencode({'spec': spec, 'size': self.model.size})}"
        self.log.step(f"{origin} asks by name: webmodels.load({{name, version: '^1'}})")
        page = start_load(context, url)
        result = finish_load(page)
        info = result.get("info") or {}
        self.log.detail(
            f"resolved {spec} -> {info.get('name')}@{info.get('version')}"
            f" ({source_words(info, downloaded_now=bool(result.get('events')), by='this site')};"
            f" substituted {info.get('substituted')})"
        )
        self.log.check(info.get("sha256") == self.model.sha256, "the name gave the same model")
        self.log.check(not result.get("events"), "and no download: this site already had it")

    def visit(
        self,
        context: BrowserContext,
        url: str,
        shot: str | None,
        popup: Page | None = None,
        *,
        download: bool,
    ) -> Page:
        origin = url.split("/index.html")[0]
        self.log.step(f"{origin} loads the model (window.webmodels.load with a monitor)")
        with timed() as t:
            page = start_load(context, url)
            if popup is not None and download:
                self.catch_download(popup)
            result = finish_load(page)
        if "error" in result or "info" not in result:
            self.log.check(
                False, f"{origin}: the page could not load the model: {result.get('error')}"
            )
            return page
        info = result["info"]
        self.log.detail(progress_line(result, self.model.size))
        self.log.detail(
            f"model ready {result['ms'] / 1000:.2f} s after the click ({t[0]:.1f} s on the page)"
        )
        for line in describe_info(info, downloaded_now=bool(result.get("events"))):
            self.log.detail(line)
        back = result.get("read_back")
        if back is not None:
            self.log.detail(f"model.arrayBuffer(): {back['text']}")
            self.log.check(
                back["ok"], "the bytes read back in the page hash to the model's SHA-256"
            )
        self.log.check(info["sha256"] == self.model.sha256, "the page got the model it asked for")
        if download:
            self.log.check(bool(result.get("events")), f"{origin} saw download progress")
        else:  # a common model (signed commons list): served from the store, no network
            self.log.check(
                not result.get("events"),
                f"{origin} got it from the store without a download (a common model)",
            )
        if shot:
            screenshot(page, self.out / shot, self.log)
        return page

    def catch_download(self, popup: Page) -> None:
        """The popup while the download runs: its progress bar part way (best effort:
        without a throttle the download may be over before the popup polls)."""
        popup.bring_to_front()
        deadline = time.monotonic() + DOWNLOAD_WATCH_S
        while time.monotonic() < deadline:
            jobs = read_popup(popup)["downloads"]
            if jobs and re.search(r"\b([1-9]\d?)%", jobs[0]["amount"] or ""):
                self.log.detail(
                    f"popup meanwhile: downloading {jobs[0]['title']}, {jobs[0]['amount']}"
                )
                popup.screenshot(path=str(self.out / "popup-downloading.png"), full_page=True)
                self.log.detail(f"screenshot {self.out / 'popup-downloading.png'}")
                return
            time.sleep(0.1)
        self.log.detail("(the download ended before the popup showed it)")

    def inspect_popup(self, popup: Page) -> None:
        self.log.step("the popup (the user's view of the store)")
        popup.bring_to_front()
        with timed() as t:  # opened afresh: manage.list, .stats and .jobs, and hello
            popup.reload()
            popup.wait_for_selector("body:not([data-state=connecting])", timeout=UI_TIMEOUT_MS)
        contents = read_popup(popup)
        details = f" ({contents['host_details']})" if contents["host_details"] else ""
        self.log.detail(f"{contents['host']}{details}; shown {t[0]:.2f} s after opening")
        for tile in contents["totals"]:
            self.log.detail(f"{tile['stat']:>8}: {tile['value']}  ({tile['hint']})")
        for model in contents["models"]:
            sites = ", ".join(model["sites"]) or "no site"
            self.log.detail(f"model {model['title']}  {model['size']}  used by {sites}")
        listed = [m for m in contents["models"] if m["sha256"] == self.model.sha256]
        sites = set(listed[0]["sites"]) if listed else set()
        self.log.check(contents["state"] == "ready", "the popup is connected to the host")
        self.log.check(bool(listed), "the popup lists the model")
        self.log.check(len(sites) == 2, f"the popup shows both sites using it (saw {sites})")
        screenshot(popup, self.out / "popup.png", self.log)

    def inspect_store(self) -> None:
        listing = json.loads(self.sandbox.webmodels("--json", "ls").stdout)
        usage = json.loads(self.sandbox.webmodels("--json", "du").stdout)
        self.log.step("the store, seen by the CLI (`webmodels ls`, `webmodels du`)")
        models = listing if isinstance(listing, list) else listing.get("models", [])
        stored = [m for m in models if m.get("sha256") == self.model.sha256]
        self.log.detail(
            f"{len(models)} model(s); blobs {mib(usage['physical_bytes'])} on disk for"
            f" {mib(usage['logical_bytes'])} of site copies: {mib(usage['saved_bytes'])} saved"
        )
        self.log.check(len(stored) == 1, "the store holds the model once")
        self.log.check(usage["physical_bytes"] == self.model.size, "one copy on disk")


def chromium_missing() -> str | None:
    chromium: Path = e2e_browser().CHROMIUM
    if chromium.is_file() and os.access(chromium, os.X_OK):
        return None
    return (
        f"Chromium is needed for the demo and was not found at {chromium}.\n"
        "Install Debian's package:  sudo apt-get install chromium\n"
        "(scripts/setup installs it when run as root; never `playwright install`.)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="screenshots (./out)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary profile/store")
    parser.add_argument(
        "--rate-mbps", type=float, default=12.0, help="model server speed, Mbit/s (0: no limit)"
    )
    args = parser.parse_args()
    if problem := chromium_missing():
        print(problem, file=sys.stderr)
        return 2
    if not (EXTENSION / "manifest.json").is_file():
        print(f"the extension is missing: {EXTENSION}/manifest.json", file=sys.stderr)
        return 2
    log = Log()
    args.out.mkdir(parents=True, exist_ok=True)
    model = the_model()
    log.step(
        f"model: magika 1.0.3 ({REAL_MODELS['magika'][1]}), {mib(model.size)},"
        f" sha256 {model.sha256[:16]}…"
    )
    sandbox = Sandbox(Path(tempfile.mkdtemp(prefix="webmodels-demo-")))
    try:
        Demo(log, sandbox, args.out.resolve(), model, args.rate_mbps).run()
    except Exception as exc:  # report, then fail: the log says how far it got
        lines = str(exc).splitlines()
        more = f"\n         … ({len(lines) - 12} more lines)" if len(lines) > 12 else ""
        log.check(False, f"{type(exc).__name__}: " + "\n".join(lines[:12]) + more)
    finally:
        for line in sandbox.host_log_tail() if log.failures else []:
            log.detail(f"host.log: {line}")
        if args.keep:
            log.step(f"kept {sandbox.root} (profile, store, host log)")
        else:
            shutil.rmtree(sandbox.root, ignore_errors=True)
    if log.failures:
        print(f"\ndemo FAILED ({len(log.failures)} check(s)); rerun with --keep to look around")
        return 1
    log.step(f"all checks passed; screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
