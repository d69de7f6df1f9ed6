"""The demo's browser driving: Chromium started as the end-to-end tests start it, the
demo page loaded and its button pressed, the popup opened and read, screenshots
checked (scripts/demo.py runs the story)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from demo_output import Log  # noqa: E402

from support.png import distinct_colours  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

EXTENSION_ID = "nkalnjoncikobhonhokfhfdgffafbfch"  # webmodels.config.CHROMIUM_EXTENSION_ID
POPUP_URL = f"chrome-extension://{EXTENSION_ID}/popup/popup.html"
POPUP_SIZE = {"width": 380, "height": 560}
PAGE_SIZE = {"width": 900, "height": 760}
LOAD_TIMEOUT_MS = 120_000
UI_TIMEOUT_MS = 20_000
MIN_COLOURS = 50  # a blank or half-drawn screenshot has far fewer


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
