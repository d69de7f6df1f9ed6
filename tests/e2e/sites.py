"""The test pages as sites (http://a.localhost:PORT, http://b.localhost:PORT from one
local server) and the one Chromium (and one Firefox) that tests needing no browser of
their own share.

`SharedChromium` is for tests whose data is random and whose checks are about their
own bytes only: they need no fresh store, host or profile, so they share one Chromium
(the real extension, its host installed for the profile, a store of its own) instead
of launching and installing one each. It is launched on first use and closed when the
run leaves the end-to-end tests (tests/e2e/conftest.py); each test's pages are closed
after it. Tests that count the store's files, read the host's log, kill the host, stop
a server or use a fixed model keep a browser of their own (`browser`, `chromium`).
`SharedFirefox` is the same for the Firefox tests (`firefox` is their own one).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.httpserver import ModelServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

PAGES = Path(__file__).parent / "pages"
EXTENSION = Path(__file__).resolve().parents[2] / "extension"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def site_args(port: int, domain: str = "localhost") -> list[str]:
    """Chromium flags that make ``http://<site>.<domain>:<port>`` reach 127.0.0.1 (never
    ::1, never DNS), so one local server plays several sites (a and b). ``*.localhost``
    pages are loopback origins and secure contexts by themselves; any other domain
    plays public sites, made secure contexts as https pages would be."""
    args = [f"--host-resolver-rules=MAP *.{domain} 127.0.0.1"]
    if domain != "localhost":
        origins = ",".join(f"http://{site}.{domain}:{port}" for site in ("a", "b"))
        args.append(f"--unsafely-treat-insecure-origin-as-secure={origins}")
    return args


def serve_pages(server: ModelServer) -> ModelServer:
    """Every file of tests/e2e/pages on `server`, at its path there."""
    for file in sorted(PAGES.rglob("*")):
        if file.is_file():
            kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
            server.add(file.relative_to(PAGES).as_posix(), file.read_bytes(), content_type=kind)
    return server


class SharedChromium:
    """One Chromium, its store and its pages server, launched when first asked for."""

    def __init__(self, playwright: Playwright, root: Path) -> None:
        self.playwright, self.root = playwright, root
        self.store = root / "store"
        self._context: BrowserContext | None = None
        self._pages: ModelServer | None = None

    @property
    def port(self) -> int:
        assert self._pages is not None, "launch() first"
        return self._pages.port

    def launch(self) -> BrowserContext:
        if self._context is not None:
            return self._context
        from e2e.conftest import install_host, launch_chromium  # conftest imports this

        profile, config_home, home = self.root / "profile", self.root / "xdg", self.root / "home"
        config_home.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
        env.pop("CHROME_CONFIG_HOME", None)
        env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(config_home)}
        install_host(self.store, profile, env)
        if self._pages is None:
            self._pages = serve_pages(ModelServer().start())
        self._context = launch_chromium(
            self.playwright,
            user_data_dir=profile,
            config_home=config_home,
            extension_dir=EXTENSION,
            extra_args=site_args(self._pages.port),
        )
        return self._context

    def close(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.close()
        pages, self._pages = self._pages, None
        if pages is not None:
            pages.stop()


class SharedFirefox:
    """One Firefox ESR (the extension, its host registered in a home of its own, a store
    of its own) and its pages server, launched when first asked for."""

    def __init__(self, root: Path) -> None:
        self.root, self.store = root, root / "store"
        self._stack: ExitStack | None = None
        self._driver: Any = None
        self._pages: ModelServer | None = None

    @property
    def port(self) -> int:
        assert self._pages is not None, "launch() first"
        return self._pages.port

    def launch(self) -> Any:
        """The selenium driver."""
        if self._driver is not None:
            return self._driver
        from e2e.firefox_launch import launch_firefox

        with ExitStack() as stack:
            self._pages = stack.enter_context(ModelServer())
            serve_pages(self._pages)
            self._driver = stack.enter_context(launch_firefox(self.root / "home", self.store))
            self._stack = stack.pop_all()
        return self._driver

    def close(self) -> None:
        stack, self._stack = self._stack, None
        self._driver, self._pages = None, None
        if stack is not None:
            stack.close()
