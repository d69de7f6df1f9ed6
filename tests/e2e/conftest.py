"""Launching Debian's Chromium with a test extension (reused by every e2e test).

Chromium is driven through the Python ``playwright`` package but is always the
system's ``/usr/bin/chromium`` (never ``playwright install``). Without it the
tests are skipped, except in CI (``CI=true``) where a missing browser fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from e2e.sites import SharedChromium, SharedFirefox

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = Path("/usr/bin/chromium")
EXTENSION = Path(__file__).resolve().parents[2] / "extension"
FIXTURES = Path(__file__).parent / "fixtures"
PROBE_EXTENSION = FIXTURES / "probe-extension"
STARTUP_TIMEOUT_MS = 30_000

Launch = Callable[..., "BrowserContext"]


def require_chromium() -> Path:
    """Skip (or in CI fail) the calling test when Chromium or playwright is missing."""
    reason = None
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup does)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing: run scripts/setup"
    if reason is None:
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)")
    pytest.skip(reason)


def chromium_args(extension_dir: Path) -> list[str]:
    ext = str(extension_dir.resolve())
    return [
        f"--load-extension={ext}",
        f"--disable-extensions-except={ext}",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]


def launch_chromium(
    playwright: Playwright,
    *,
    user_data_dir: Path,
    config_home: Path,
    extension_dir: Path = PROBE_EXTENSION,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> BrowserContext:
    """Start headless Chromium on `user_data_dir` with `extension_dir` loaded.

    ``XDG_CONFIG_HOME`` points at `config_home`, so nothing is read from or written
    to the real ~/.config (and the default native-host folders are empty there).
    Native hosts that Chromium starts inherit this environment. `extra_args` are
    added to the command line.
    """
    browser_env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(config_home),
        **(env or {}),
    }
    browser_env.pop("CHROME_CONFIG_HOME", None)
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*chromium_args(extension_dir), *extra_args],
        env=browser_env,
        timeout=STARTUP_TIMEOUT_MS,
    )


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


_SHARED: list[SharedChromium | SharedFirefox] = []
E2E = Path(__file__).parent


@pytest.fixture(scope="session")
def shared_chromium(
    playwright_session: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedChromium]:
    """The one Chromium that tests needing no browser of their own share (e2e/sites.py)."""
    shared = SharedChromium(playwright_session, tmp_path_factory.mktemp("shared-chromium"))
    _SHARED.append(shared)
    yield shared
    shared.close()


@pytest.fixture(scope="session")
def shared_firefox_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFirefox]:
    """The one Firefox that Firefox tests needing none of their own share (e2e/sites.py)."""
    shared = SharedFirefox(tmp_path_factory.mktemp("shared-firefox"))
    _SHARED.append(shared)
    yield shared
    shared.close()


@pytest.hookimpl(trylast=True)  # after the test's own fixtures are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Close a shared browser once the next test does not need it (it would idle beside
    the other tests): the Chromium as the run leaves the end-to-end tests (its users
    are spread over several files), the Firefox after its last user. One is launched
    again if a later test asks for it."""
    leaving = nextitem is None or E2E not in nextitem.path.parents
    wanted = () if nextitem is None else getattr(nextitem, "fixturenames", ())
    for shared in _SHARED:
        if leaving or (
            isinstance(shared, SharedFirefox) and "shared_firefox_session" not in wanted
        ):
            shared.close()


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    """The browser's (and its native hosts') XDG_CONFIG_HOME for one test."""
    path = tmp_path / "xdg-config"
    path.mkdir()
    return path


@pytest.fixture
def install_env(tmp_path: Path, config_home: Path) -> dict[str, str]:
    """The environment `install_host` runs the CLI in: no WEBMODELS_* of the caller's, an
    empty HOME of the test's own, and the browser's XDG_CONFIG_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env.pop("CHROME_CONFIG_HOME", None)
    home = tmp_path / "user-home"
    home.mkdir()
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(config_home)}


def install_host(store: Path, profile: Path, env: Mapping[str, str]) -> None:
    """Register the real host, serving `store`, for the fresh Chromium profile `profile`
    as a user does (`webmodels --store STORE install --browser chromium --user-data-dir
    PROFILE`), in `env` (usually the `install_env` fixture)."""
    command = [sys.executable, "-m", "webmodels", "--store", str(store), "install"]
    command += ["--browser", "chromium", "--user-data-dir", str(profile)]
    done = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def chromium(playwright_session: Playwright, config_home: Path) -> Iterator[Launch]:
    """A function that launches Chromium (see `launch_chromium`); every browser it
    started is closed after the test."""
    contexts: list[BrowserContext] = []

    def launch(
        user_data_dir: Path,
        *,
        extension_dir: Path = PROBE_EXTENSION,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> BrowserContext:
        context = launch_chromium(
            playwright_session,
            user_data_dir=user_data_dir,
            config_home=config_home,
            extension_dir=extension_dir,
            env=env,
            extra_args=extra_args,
        )
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()
