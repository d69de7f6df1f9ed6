"""Transformers.js' Cross-Origin Storage cache, one test per supported version of
@huggingface/transformers as published on npm, in real Chromium with the real
extension (one browser for the whole file).

The supported versions are those whose package carries
src/utils/cache/CrossOriginStorageCache.js: 4.0.0-4.2.0 call
``requestFileHandles([hash])``, 4.3.x ``requestFileHandle(hash, {create: true, origins:
"*"})``. The page imports that module from the package (fetched by npm at test time
into .cache/npm/; it imports nothing else) and drives its own put() and match() with
model files a loopback server serves as Hugging Face does (``/resolve/`` files, ``/raw/``
Git LFS pointers naming each file's SHA-256). The files are stored for the page's site
only: another site's match() finds nothing (they are not common, whatever ``origins``
asks for).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from e2e.conftest import install_host, launch_chromium
from e2e.sites import serve_pages
from e2e.test_page_api import EXTENSION, Browser, site_args
from support.host import HostProcess
from support.httpserver import ModelServer
from support.npm import npm_package

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

pytestmark = pytest.mark.e2e

VERSIONS = ("4.0.0", "4.0.1", "4.1.0", "4.2.0", "4.3.0", "4.3.1", "4.3.2")
CACHE_MODULE = "src/utils/cache/CrossOriginStorageCache.js"
JS = "text/javascript; charset=utf-8"
RUN = "async (args) => (await import('/libraries/transformers-cache.js')).run(args)"


@pytest.fixture(scope="module")
def model_files() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_browser(
    playwright_session: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    """One Chromium with the real extension and its host for every version's test;
    each version's cache module is served at /libraries/transformers-VERSION.js."""
    root = tmp_path_factory.mktemp("transformers-js")
    (root / "xdg").mkdir()
    (root / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env.pop("CHROME_CONFIG_HOME", None)
    env |= {"HOME": str(root / "home"), "XDG_CONFIG_HOME": str(root / "xdg")}
    install_host(root / "store", root / "profile", env)
    with ModelServer() as pages:
        serve_pages(pages)
        for version in VERSIONS:
            module = npm_package(f"@huggingface/transformers@{version}") / CACHE_MODULE
            pages.add(f"libraries/transformers-{version}.js", module.read_bytes(), content_type=JS)
        context = launch_chromium(
            playwright_session,
            user_data_dir=root / "profile",
            config_home=root / "xdg",
            extension_dir=EXTENSION,
            extra_args=site_args(pages.port),
        )
        try:
            yield Browser(context, pages.port, root / "store")
        finally:
            context.close()


def hf_files(server: ModelServer, version: str) -> dict[str, bytes]:
    """A model folder served as Hugging Face does; returns the /resolve/ URLs' bytes."""
    files = {"onnx/model.onnx": os.urandom(400_000), "tokenizer.json": os.urandom(20_000)}
    served = {}
    for name, data in files.items():
        base = f"test-org/tiny-{version}"
        served[server.url(f"{base}/resolve/main/{name}")] = data
        pointer = "version https://git-lfs.github.com/spec/v1\n"
        pointer += f"oid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n"
        server.add(f"{base}/resolve/main/{name}", data)
        server.add(f"{base}/raw/main/{name}", pointer.encode(), content_type="text/plain")
    return served


def run(browser: Browser, site: str, version: str, urls: list[str], look_only: bool) -> Any:
    page = browser.open(site)
    try:
        args = {"module": f"/libraries/transformers-{version}.js", "urls": urls}
        return page.evaluate(RUN, args | {"lookOnly": look_only})
    finally:
        page.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_transformers_js_caches_model_files_in_cos_for_its_site(
    shared_browser: Browser, model_files: ModelServer, version: str
) -> None:
    started = time.monotonic()
    files = hf_files(model_files, version)
    urls = list(files)
    digests = {url: hashlib.sha256(data).hexdigest() for url, data in files.items()}
    a, b = f"t{version.replace('.', '')}a", f"t{version.replace('.', '')}b"
    method = "requestFileHandle" if version >= "4.3" else "requestFileHandles"

    stored = run(shared_browser, a, version, urls, look_only=False)

    assert stored["available"] is True
    assert stored["before"] == {url: None for url in urls}
    assert stored["after"] == digests
    assert stored["calls"][method] >= 3 * len(urls), stored["calls"]  # match, put, match
    host = HostProcess(shared_browser.store)
    try:
        listed = {m["sha256"]: m["sites"] for m in host.result("manage.list")["models"]}
    finally:
        host.close()
    me = [{"top_site": shared_browser.origin(a), "origin": shared_browser.origin(a)}]
    assert [listed.get(digest) for digest in digests.values()] == [me] * len(urls)

    elsewhere = run(shared_browser, b, version, urls, look_only=True)

    assert elsewhere["before"] == {url: None for url in urls}  # not common: A's alone
    print(f"Transformers.js {version}: {time.monotonic() - started:.1f} s")
