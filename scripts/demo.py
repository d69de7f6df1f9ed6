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
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from demo_browser import (  # noqa: E402
    UI_TIMEOUT_MS,
    e2e_browser,
    finish_load,
    open_popup,
    read_popup,
    screenshot,
    start_load,
)
from demo_output import Log, describe_info, mib, progress_line, source_words, timed  # noqa: E402
from demo_sandbox import Sandbox  # noqa: E402

from support.httpserver import Fault, ModelServer  # noqa: E402
from support.models import REAL_MODELS, real_model  # noqa: E402
from webmodels.catalogs.documents import sign_catalog  # noqa: E402
from webmodels.signing import public_key_text  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

EXTENSION = ROOT / "extension"
DEMO_PAGES = ROOT / "tests" / "e2e" / "pages" / "demo"
DOWNLOAD_WATCH_S = 5.0
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


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
        # One copy: the file's size once (its parts, and a recipe that keeps the
        # graph's bytes compressed, so a little less), never two.
        size = self.model.size
        self.log.check(
            usage.get("stored_bytes", size) == size and usage["physical_bytes"] <= size + 65536,
            f"one copy on disk ({usage['physical_bytes']:,} bytes for a {size:,}-byte file)",
        )


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
