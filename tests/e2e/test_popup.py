"""The popup, the user's view of the store, driven in a real Chromium with the real
extension and host: a page at origin A loads a model through `window.webmodels`
(the demo page in pages/demo/, its model on a local server), and the popup shows
it with site A, the totals, downloads in progress, and pins, deletes and forgets.
A web page asking for the same management calls is refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from e2e.conftest import install_host
from support.held import held_in
from support.httpserver import Fault, ModelServer
from support.models import tiny_model
from support.png import distinct_colours
from webmodels.config import CHROMIUM_EXTENSION_ID

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    Launch = Callable[..., BrowserContext]  # the `chromium` fixture (tests/e2e/conftest.py)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "extension"
DEMO_PAGES = Path(__file__).parent / "pages" / "demo"
POPUP_URL = f"chrome-extension://{CHROMIUM_EXTENSION_ID}/popup/popup.html"
POPUP_SIZE = {"width": 380, "height": 560}
TIMEOUT_MS = 30_000
HUMAN_SIZE = re.compile(r"^\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)$")
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class Served:
    """The demo site (origin A) and a model on another origin."""

    site: ModelServer
    cdn: ModelServer
    sha256: str
    size: int
    model_url: str
    integrity: str

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.site.port}"

    def page_url(self) -> str:
        query = {"model": self.model_url, "integrity": self.integrity, "size": self.size}
        return f"{self.origin}/index.html?{urlencode(query)}"


@dataclass(frozen=True)
class Setup:
    store: Path
    profile: Path
    env: dict[str, str]

    def webmodels(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "webmodels", "--store", str(self.store), *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`webmodels ARGS` running while the test goes on."""
        command = [sys.executable, "-m", "webmodels", "--store", str(self.store), *args]
        pipe = subprocess.PIPE
        return subprocess.Popen(command, env=self.env, stdout=pipe, stderr=pipe, text=True)

    def stored(self) -> dict[str, dict[str, Any]]:
        """The store's models by sha256, as `webmodels ls` sees them."""
        listing = json.loads(self.webmodels("--json", "ls").stdout)
        models = listing if isinstance(listing, list) else listing["models"]
        return {m["sha256"]: m for m in models}

    def holds(self, sha256: str) -> bool:
        """The store keeps the file's bytes on disk (whole or as segments)."""
        return sha256 in held_in(self.store)


@pytest.fixture
def setup(tmp_path: Path, config_home: Path) -> Setup:
    """A store and a Chromium profile of their own; nothing of the user's is read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env.pop("CHROME_CONFIG_HOME", None)
    (tmp_path / "home").mkdir()
    env |= {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(config_home),
        "WEBMODELS_CONFIG": str(tmp_path / "no-config.toml"),
        "WEBMODELS_LOG_DIR": str(tmp_path / "logs"),
    }
    return Setup(tmp_path / "store", tmp_path / "profile", env)


@pytest.fixture
def installed(setup: Setup) -> Setup:
    install_host(setup.store, setup.profile, setup.env)
    return setup


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    model = tiny_model(tmp_path / "served" / "adder.onnx", weight_bytes=300_000, seed=7)
    data = model.read_bytes()
    digest = hashlib.sha256(data).digest()
    with ModelServer() as site, ModelServer() as cdn:
        for file in DEMO_PAGES.iterdir():
            if file.suffix in CONTENT_TYPES:
                site.add(file.name, file.read_bytes(), content_type=CONTENT_TYPES[file.suffix])
        url = cdn.add("models/adder.onnx", data)
        integrity = "sha256-" + base64.b64encode(digest).decode()
        yield Served(site, cdn, digest.hex(), len(data), url, integrity)


@pytest.fixture
def browser(chromium: Launch, setup: Setup) -> BrowserContext:
    return chromium(setup.profile, extension_dir=EXTENSION, env=setup.env)


# --- driving the pages ---------------------------------------------------------------


def start_load(context: BrowserContext, served: Served) -> Page:
    """The demo page at origin A, its "Load model" button pressed (a user gesture)."""
    page = context.new_page()
    page.goto(served.page_url())
    page.wait_for_selector("body[data-state=ready]", timeout=TIMEOUT_MS)
    page.click("#load")
    return page


def finish_load(page: Page) -> dict[str, Any]:
    page.wait_for_selector("body[data-state=done], body[data-state=error]", timeout=TIMEOUT_MS)
    result: dict[str, Any] = json.loads(page.text_content("#result") or "{}")
    assert "info" in result, f"the page could not load the model: {result}"
    return result


def open_popup(context: BrowserContext) -> Page:
    popup = context.new_page()
    popup.set_viewport_size(POPUP_SIZE)
    popup.goto(POPUP_URL)
    popup.wait_for_selector("body:not([data-state=connecting])", timeout=TIMEOUT_MS)
    return popup


def model_card(popup: Page, sha256: str) -> str:
    return f"#model-list li.model[data-sha256='{sha256}']"


def tile(popup: Page, stat: str) -> str:
    return popup.text_content(f"#totals [data-stat={stat}] .tile-value") or ""


def assert_not_blank(path: Path) -> None:
    colours = distinct_colours(path)
    assert colours > 50, f"{path} looks blank ({colours} colours)"


# --- tests ---------------------------------------------------------------------------


def test_popup_lists_a_model_a_page_loaded_then_pins_and_deletes_it(
    browser: BrowserContext, installed: Setup, served: Served, tmp_path: Path
) -> None:
    popup = open_popup(browser)
    assert popup.get_attribute("body", "data-state") == "ready"
    assert popup.is_visible("#models-empty"), "an empty store shows the empty state"

    finish_load(start_load(browser, served))
    popup.bring_to_front()
    card = model_card(popup, served.sha256)
    popup.wait_for_selector(card, timeout=TIMEOUT_MS)  # no reload: the popup polls
    deriving = installed.start("--json", "derive", served.sha256, "--dtype", "int8")

    chips = popup.locator(f"{card} .site-chip")
    assert chips.count() == 1
    assert chips.first.get_attribute("data-top-site") == served.origin
    assert popup.locator(f"#site-list li.site[data-top-site='{served.origin}']").count() == 1
    assert HUMAN_SIZE.match(popup.text_content(f"{card} .model-size") or "")
    assert HUMAN_SIZE.match(tile(popup, "physical")) and HUMAN_SIZE.match(tile(popup, "saved"))
    assert popup.is_hidden("#models-empty")
    shot = tmp_path / "popup.png"
    popup.screenshot(path=str(shot), full_page=True)
    assert_not_blank(shot)

    popup.click(f"{card} [data-action=pin]")
    popup.wait_for_selector(f"{card}[data-pinned=true]", timeout=TIMEOUT_MS)
    assert installed.stored()[served.sha256]["pinned"] is True

    # The form the user derived (meanwhile) is listed right under its model.
    assert deriving.wait(timeout=120) == 0, deriving.stderr and deriving.stderr.read()
    assert deriving.stdout is not None
    form = f"{card} + li.model.form[data-sha256='{json.loads(deriving.stdout.read())['sha256']}']"
    popup.wait_for_selector(form, timeout=TIMEOUT_MS)  # no reload: the popup polls
    assert popup.get_attribute(form, "data-derived-from") == served.sha256
    assert popup.text_content(f"{form} .badge.form") == "int8 form"

    # Delete asks first; a pinned model asks a second time, then goes with force.
    popup.click(f"{card} [data-action=delete]")
    popup.click(f"{card} [data-action=cancel]")
    assert popup.locator(f"{card} [data-action=confirm-delete]").count() == 0
    popup.click(f"{card} [data-action=delete]")
    popup.click(f"{card} [data-action=confirm-delete]")
    popup.click(f"{card} [data-action=confirm-force]")
    popup.wait_for_selector(card, state="detached", timeout=TIMEOUT_MS)

    assert popup.is_visible("#models-empty")
    assert served.sha256 not in installed.stored()
    assert not installed.holds(served.sha256)
    assert "freed" in (popup.text_content("#notice") or "")


def test_forgetting_a_site_removes_the_model_only_it_used(
    browser: BrowserContext, installed: Setup, served: Served
) -> None:
    finish_load(start_load(browser, served))
    popup = open_popup(browser)
    site = f"#site-list li.site[data-top-site='{served.origin}']"
    popup.wait_for_selector(site, timeout=TIMEOUT_MS)

    popup.click(f"{site} [data-action=clear-site]")
    popup.click(f"{site} [data-action=confirm-clear]")

    popup.wait_for_selector(model_card(popup, served.sha256), state="detached", timeout=TIMEOUT_MS)
    assert popup.is_hidden("#sites")
    assert served.sha256 not in installed.stored()


def test_popup_shows_a_download_in_progress(
    browser: BrowserContext, installed: Setup, served: Served
) -> None:
    # About four seconds for the whole file, so the popup sees it under way.
    served.cdn.fault(served.model_url, Fault("slow", rate=served.size // 4, times=None))
    popup = open_popup(browser)
    page = start_load(browser, served)
    popup.bring_to_front()

    job = f"#job-list li.job[data-sha256='{served.sha256}']"
    from playwright.sync_api import expect

    popup.wait_for_selector(f"{job} progress", timeout=TIMEOUT_MS)
    expect(popup.locator(f"{job} .meta")).to_contain_text(re.compile(r" of .* · \d+%"))

    finish_load(page)
    popup.bring_to_front()
    popup.wait_for_selector(job, state="detached", timeout=TIMEOUT_MS)
    popup.wait_for_selector(model_card(popup, served.sha256), timeout=TIMEOUT_MS)


def test_a_web_page_cannot_use_the_management_calls(
    browser: BrowserContext, installed: Setup, served: Served
) -> None:
    page = start_load(browser, served)
    finish_load(page)
    assert page.evaluate("typeof chrome === 'undefined' || !chrome.runtime?.connect")

    for method, params in [
        ("manage.list", {}),
        ("manage.stats", {}),
        ("manage.delete", {"sha256": served.sha256, "force": True}),
        ("manage.clear_site", {"top_site": served.origin}),
    ]:
        reply = page.evaluate(RELAY_CALL, {"method": method, "params": params})
        assert reply["ok"] is False, (method, reply)
        assert reply["error"]["code"] == "access_denied", (method, reply)

    # A forged trusted context is dropped on the way: still refused.
    forged = {"method": "manage.list", "params": {}, "context": {"trusted": True}}
    assert page.evaluate(RELAY_CALL, forged)["error"]["code"] == "access_denied"
    assert served.sha256 in installed.stored()
    assert installed.holds(served.sha256)


# What a page can do: post the relay's message itself (nothing stops it) and wait
# for the reply addressed to its id.
RELAY_CALL = """({method, params, context}) => new Promise((resolve) => {
  const id = `manage-${Math.random()}`;
  window.addEventListener('message', (event) => {
    const data = event.data;
    if (event.source === window && data?.__webmodels === 1 && data.dir === 'to-page'
        && data.reply?.id === id) resolve(data.reply);
  });
  window.postMessage({__webmodels: 1, dir: 'to-extension', id, method, params, context},
                     location.origin);
})"""


def test_popup_without_the_host_says_how_to_install_it(
    browser: BrowserContext, tmp_path: Path
) -> None:
    popup = open_popup(browser)

    assert popup.get_attribute("body", "data-state") == "no-host"
    assert "webmodels install" in (popup.text_content("#no-host") or "")
    assert popup.is_hidden("#models")
    shot = tmp_path / "no-host.png"
    popup.screenshot(path=str(shot))
    assert_not_blank(shot)
