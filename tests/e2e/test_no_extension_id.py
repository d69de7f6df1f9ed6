"""No value a page can read names the extension (PRIVACY.md, hole 5), in real Chromium
and real Firefox ESR.

In Firefox an extension's origin is ``moz-extension://<UUID>``, random per profile:
any page that could read it would have a cross-site tracking ID that survives cookie
clearing. In Chromium the ID is fixed, but still tells a site about the install. Two
sites run tests/e2e/pages/exposed.js, which gathers every string the extension exposes
to page script — the API objects walked, every message event's origin and data from
the page's start, the DOM (outerHTML), resource timing, frames, error texts — during a
load with progress, a whole-model read through the fast byte path, a connected worker
and failing calls. The real extension ID is read from the browser side (Chromium: the
service worker's URL; Firefox: the origin its service worker announced to the host).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.test_firefox import Firefox, require_firefox
from e2e.test_page_api import EXTENSION, Browser, browser, call, pages_server
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["browser", "pages_server"]  # fixtures shared with test_page_api

EXTENSION_URL_WORDS = ("moz-extension", "chrome-extension")


def model_query(server: ModelServer, name: str) -> tuple[dict[str, str], int]:
    data = os.urandom(3 << 20)  # above the fast byte path's threshold
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"url": server.add(name, data), "integrity": f"sha256-{digest}"}, len(data)


def check_exposed(
    seen: dict[str, Any], *, origin: str, size: int, secret: Callable[[], str]
) -> None:
    """What one site gathered: nothing names the extension (`secret()`: its real ID or
    UUID), and the work was done (fast path included)."""
    text = json.dumps(seen["strings"])
    for word in EXTENSION_URL_WORDS:
        assert word not in text, [s[:300] for s in seen["strings"] if word in s]
    identifier = secret()
    assert identifier not in text, [s[:300] for s in seen["strings"] if identifier in s]
    print(f"\n{origin}: {len(seen['strings'])} strings, {len(text)} characters, none names it")
    assert seen["bytes"] == seen["streamed"] == seen["size"] == size
    assert seen["workerOk"] is True, seen["strings"]
    assert seen["workerScript"].startswith(f"blob:{origin}/")
    # Every message on the page's window came from the page's own origin.
    assert seen["messageOrigins"] == [origin]
    # Stacks of errors and of page code that the API calls: reported, see PRIVACY.md.
    named = [s for s in seen["stacks"] + seen["progressStacks"] if secret() in s]
    print(
        f"{origin}: {len(named)} of {len(seen['stacks'] + seen['progressStacks'])} stacks name it"
    )


def bridge_ok(messages: list[dict[str, Any]], origin: str, size: int) -> None:
    """The fast byte path brought the bytes, posted by the relay at the page's origin."""
    assert {"origin": origin, "bytes": size, "error": None} in messages, messages
    # (A buffer handed on to the worker is detached before later listeners see it.)
    assert all(m["origin"] == origin and m["error"] is None for m in messages), messages


# --- Chromium ---------------------------------------------------------------------------


def chromium_extension_id(browser: Browser) -> str:
    workers = browser.context.service_workers or [browser.context.wait_for_event("serviceworker")]
    match = re.match(r"chrome-extension://([a-p]{32})/", workers[0].url)
    assert match, workers[0].url
    return match.group(1)


def test_chromium_pages_read_nothing_that_names_the_extension(
    browser: Browser, model_server: ModelServer
) -> None:
    extension_id = chromium_extension_id(browser)
    for site in ("a", "b"):
        query, size = model_query(model_server, f"/{site}.bin")
        page = browser.open(site, "exposed.html")
        seen = page.evaluate("(query) => window.collectExposed(query)", query)
        check_exposed(seen, origin=browser.origin(site), size=size, secret=lambda: extension_id)
        bridge_ok(call(page, "bridgeMessages"), browser.origin(site), size)


# --- Firefox ----------------------------------------------------------------------------


class FirefoxSites(Firefox):
    """Firefox at ``http://<site>.localhost:PORT`` (resolved to 127.0.0.1 by a pref,
    never by DNS; secure contexts, as localhost is)."""

    def site(self, name: str) -> str:
        self.origin = f"http://{name}.localhost:{self.port}"
        return self.origin


@pytest.fixture
def firefox_sites(tmp_path: Path, pages_server: ModelServer) -> Iterator[FirefoxSites]:
    driver_path = require_firefox()
    from selenium import webdriver
    from selenium.webdriver.firefox.options import Options
    from selenium.webdriver.firefox.service import Service

    home, store = tmp_path / "home", tmp_path / "store"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env["HOME"] = str(home)
    install = [sys.executable, "-m", "webmodels", "--store", str(store), "install"]
    done = subprocess.run(
        [*install, "--browser", "firefox"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    options = Options()
    options.add_argument("-headless")
    options.binary_location = "/usr/bin/firefox-esr"
    options.set_preference("network.dns.localDomains", "a.localhost,b.localhost")
    service = Service(executable_path=str(driver_path), env={**env, "MOZ_HEADLESS": "1"})
    driver = webdriver.Firefox(options=options, service=service)
    try:
        assert driver.install_addon(str(EXTENSION), temporary=True) == "webmodels@webmodels.org"
        yield FirefoxSites(driver, pages_server.port, store)
    finally:
        driver.quit()


def announced_origin(store: Path) -> str:
    """The origin the extension's service worker told its host (the host logs it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for log in store.rglob("host.log*"):
            found = re.findall(
                r"loopback: serving (moz-extension://[0-9a-f-]{36}) only", log.read_text()
            )
            if found:
                return found[-1]
        time.sleep(0.2)
    raise AssertionError("the extension never told the host its origin")


def test_firefox_pages_read_nothing_that_names_the_extension(
    firefox_sites: FirefoxSites, model_server: ModelServer
) -> None:
    firefox = firefox_sites
    for site in ("a", "b"):
        query, size = model_query(model_server, f"/{site}.bin")
        origin = firefox.site(site)
        firefox.open("exposed.html")
        outcome = firefox.run("return await window.collectExposed(args[0]);", query)
        assert "error" not in outcome, outcome

        def uuid() -> str:
            return announced_origin(firefox.store).removeprefix("moz-extension://")

        check_exposed(outcome["ok"], origin=origin, size=size, secret=uuid)
        bridge_ok(firefox.tool("bridgeMessages"), origin, size)
