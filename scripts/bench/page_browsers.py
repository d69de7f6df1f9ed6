"""The browsers the page benchmarks (page_write.py, page_read.py) drive: headless
Chromium and Firefox ESR, each with the real extension and a host registered for it
in a fresh temporary profile and store, a page of tests/e2e/pages at
http://a.localhost:PORT (a loopback origin), and one way to run an async page
function in either. The launches are the end-to-end tests' own (tests/e2e).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.conftest import launch_chromium, require_chromium  # noqa: E402
from e2e.firefox_launch import Firefox, firefox_missing, launch_firefox  # noqa: E402
from e2e.test_page_api import CONTENT_TYPES, EXTENSION, PAGES, site_args  # noqa: E402
from support.httpserver import ModelServer  # noqa: E402

BROWSERS = ("chromium", "firefox")
CHOICES = (*BROWSERS, "both")
# Calls `function` (a page script's text: an async function of one argument) with
# `arg` in the page; its JSON result.
Evaluate = Callable[[str, Any], Any]


class InPage:
    """Chromium's Evaluate, with `worker`: the same in the extension's service worker
    (page_write.py sends a write from there, as background/native-write.js does)."""

    def __init__(self, page: Evaluate, worker: Evaluate) -> None:
        self._page, self.worker = page, worker

    def __call__(self, function: str, arg: Any) -> Any:
        return self._page(function, arg)


def chosen(option: str | None) -> list[str]:
    """The browsers `--browser` names; by default both when Firefox ESR and its
    driver are here, else Chromium alone (saying why)."""
    if option is None:
        missing = firefox_missing()
        if missing is None:
            return list(BROWSERS)
        print(f"note: Chromium only: {missing}", flush=True)
        return ["chromium"]
    return list(BROWSERS) if option == "both" else [option]


def serve_pages(server: ModelServer) -> None:
    for file in sorted(PAGES.rglob("*")):
        if file.is_file():
            kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
            server.add(file.relative_to(PAGES).as_posix(), file.read_bytes(), content_type=kind)


@contextmanager
def page_in(browser: str, work: Path, pages: ModelServer) -> Iterator[Evaluate]:
    """A page of `pages` in `browser`, with its profile and store under `work`."""
    if browser == "firefox":
        with firefox_page(work, pages) as evaluate:
            yield evaluate
    else:
        with chromium_page(work, pages) as evaluate:
            yield evaluate


@contextmanager
def chromium_page(work: Path, pages: ModelServer) -> Iterator[Evaluate]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver, chromium_page_of(driver, work, pages) as evaluate:
        yield evaluate


@contextmanager
def chromium_page_of(
    driver: Any, work: Path, pages: ModelServer, host_env: Mapping[str, str] | None = None
) -> Iterator[InPage]:
    """`chromium_page` on a running Playwright `driver` (so one run can hold several
    browsers), its host started with `host_env` added (e.g. a store setting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env |= {"HOME": str(work), "XDG_CONFIG_HOME": str(work / "xdg")}
    profile, store = work / "profile", work / "store"
    install = [sys.executable, "-m", "webmodels", "--store", str(store), "install"]
    install += ["--browser", "chromium", "--user-data-dir", str(profile)]
    subprocess.run(install, env=env, check=True, capture_output=True)
    context = launch_chromium(
        driver,
        user_data_dir=profile,
        config_home=work / "xdg",
        extension_dir=EXTENSION,
        env=host_env,
        extra_args=site_args(pages.port),
    )
    try:
        page = context.new_page()
        page.set_default_timeout(600_000)
        page.goto(f"http://a.localhost:{pages.port}/index.html")
        page.wait_for_function("() => window.webmodels && window.webmodelsTest")
        yield InPage(page.evaluate, context.service_workers[0].evaluate)
    finally:
        context.close()


@contextmanager
def firefox_page(work: Path, pages: ModelServer) -> Iterator[Evaluate]:
    missing = firefox_missing()
    if missing is not None:
        raise SystemExit(f"Firefox: {missing}")
    store = work / "store"
    prefs = {"network.dns.localDomains": "a.localhost"}  # to 127.0.0.1, never DNS
    with launch_firefox(work / "home", store, prefs=prefs) as driver:
        page = Firefox(driver, pages.port, store, origin=f"http://a.localhost:{pages.port}")
        page.open()

        def evaluate(function: str, arg: Any) -> Any:
            # A click first: Playwright runs Chromium's scripts as if after a user
            # gesture, and a model load from the network needs one.
            driver.find_element("tag name", "body").click()
            outcome = page.run(f"return await ({function})(args[0]);", arg, timeout_s=600)
            if "error" in outcome:
                raise RuntimeError(f"in Firefox: {outcome['error']}")
            return outcome["ok"]

        yield evaluate
