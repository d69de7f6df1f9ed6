"""The page API of the real extension (extension/) in real Chromium, against the
real host that `webmodels install` registers.

Test pages (tests/e2e/pages) are served from one local server as two sites,
http://a.localhost:PORT and http://b.localhost:PORT (loopback origins, so the host
may fetch their models from 127.0.0.1 with Local Network Access on, as a user's host
runs); models come from another server that a test can stop (offline). What a
page did is checked with the host itself: a trusted host process on the same store
lists which partitions obtained which model.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e.conftest import install_host
from e2e.sites import CONTENT_TYPES, PAGES, SharedChromium, serve_pages, site_args
from support.host import HostProcess
from support.httpserver import Fault, ModelServer
from support.models import tiny_model

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    Launch = Callable[..., BrowserContext]  # the `chromium` fixture (conftest.py)

pytestmark = pytest.mark.e2e
__all__ = ["CONTENT_TYPES", "PAGES", "site_args"]  # shared with other tests and scripts/bench

EXTENSION = Path(__file__).resolve().parents[2] / "extension"
API_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Model:
    path: Path
    data: bytes
    url: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def query(self) -> dict[str, str]:
        digest = hashlib.sha256(self.data).digest()
        return {"url": self.url, "integrity": "sha256-" + base64.b64encode(digest).decode()}


@dataclass
class Browser:
    context: BrowserContext
    port: int
    store: Path
    domain: str = "localhost"  # sites are <site>.<domain> (site_args)

    def origin(self, site: str) -> str:
        return f"http://{site}.{self.domain}:{self.port}"

    def open(self, site: str, path: str = "index.html") -> Page:
        page = self.context.new_page()
        page.set_default_timeout(API_TIMEOUT_MS)
        page.goto(f"{self.origin(site)}/{path}")
        page.wait_for_function("() => window.webmodelsTest && window.webmodels")
        return page

    def sites_of(self, sha256: str) -> list[dict[str, str]]:
        """The partitions that obtained a model, as the host's manage.list says."""
        host = HostProcess(self.store)
        try:
            models = host.result("manage.list")["models"]
        finally:
            host.close()
        return next((m["sites"] for m in models if m["sha256"] == sha256), [])


def call(page: Page, tool: str, *args: Any) -> Any:
    """`webmodelsTest[tool](...args)` in the page (tests/e2e/pages/page-tools.js)."""
    return page.evaluate(
        "([tool, args]) => window.webmodelsTest[tool](...args)", [tool, list(args)]
    )


@pytest.fixture
def pages_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield serve_pages(server)


@pytest.fixture
def model(tmp_path: Path, model_server: ModelServer) -> Model:
    """A 2 MiB model of this test's own (a random seed): no other test's store or
    browser has held it."""
    seed = int.from_bytes(os.urandom(3), "big")
    path = tiny_model(tmp_path / "tiny.onnx", weight_bytes=2 << 20, seed=seed)
    data = path.read_bytes()
    return Model(path, data, model_server.add("tiny.onnx", data))


@pytest.fixture
def browser(
    chromium: Launch, tmp_path: Path, install_env: dict[str, str], pages_server: ModelServer
) -> Browser:
    """Chromium with the real extension, its host installed for this profile."""
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, install_env)
    context = chromium(profile, extension_dir=EXTENSION, extra_args=site_args(pages_server.port))
    return Browser(context, pages_server.port, store)


@pytest.fixture
def shared_browser(shared_chromium: SharedChromium) -> Iterator[Browser]:
    """The Chromium shared by tests that need none of their own (e2e/sites.py): for tests
    whose data is random and whose checks concern their own bytes only. The pages the
    test opened are closed after it."""
    context = shared_chromium.launch()
    before = set(context.pages)
    yield Browser(context, shared_chromium.port, shared_chromium.store)
    for page in context.pages:
        if page not in before:
            page.close()


def test_a_page_loads_a_model_with_progress_reads_it_back_and_loads_it_offline(
    browser: Browser, model: Model, model_server: ModelServer
) -> None:
    page = browser.open("a")

    first = call(page, "load", model.query)

    assert "error" not in first, first
    assert first["info"]["sha256"] == model.sha256 and first["info"]["size"] == len(model.data)
    assert first["sha256"] == first["streamed"] == model.sha256
    assert first["progress"], "monitor got no downloadprogress events"
    assert first["progress"][-1] == [len(model.data), len(model.data)]

    model_server.stop()
    again = call(page, "load", model.query)

    assert "error" not in again, again
    assert again["sha256"] == model.sha256
    assert again["progress"] == []  # nothing to download
    assert call(page, "availability", {"sha256": model.sha256}) == {"availability": "available"}


def test_cross_origin_storage_stores_looks_up_and_refuses_wrong_bytes(
    shared_browser: Browser,
) -> None:
    page = shared_browser.open("a")
    data = os.urandom(3 << 20)
    hex_digest = hashlib.sha256(data).hexdigest()
    encoded = base64.b64encode(data).decode()

    assert call(page, "cosGet", hex_digest)["error"]["name"] == "NotFoundError"
    assert call(page, "cosStore", hex_digest, encoded, 3) == {"stored": True}
    assert call(page, "cosGet", hex_digest) == {
        "sha256": hex_digest,
        "size": len(data),
        "isFile": True,
    }
    assert call(page, "cosGet", hex_digest, True)["sha256"] == hex_digest  # requestFileHandles

    wrong = hashlib.sha256(b"other bytes").hexdigest()
    refused = call(page, "cosStore", wrong, encoded)
    assert refused["error"]["code"] == "integrity_mismatch", refused
    assert refused["error"]["name"] == "DataError"
    assert "integrity_mismatch" in refused["error"]["message"]
    absent = call(page, "cosGet", wrong)
    assert absent["error"] == {
        "name": "NotFoundError",
        "code": "not_found",
        "message": absent["error"]["message"],
    }
    assert shared_browser.sites_of(hex_digest) == [
        {"top_site": shared_browser.origin("a"), "origin": shared_browser.origin("a")}
    ]


def test_several_lookups_and_writes_at_once(shared_browser: Browser) -> None:
    page = shared_browser.open("a")
    blobs = [os.urandom(300_000 + i) for i in range(6)]
    digests = [hashlib.sha256(b).hexdigest() for b in blobs]
    encoded = [base64.b64encode(b).decode() for b in blobs]

    stored = page.evaluate(
        """([digests, blobs]) => Promise.all(digests.map((d, i) =>
            window.webmodelsTest.cosStore(d, blobs[i])))""",
        [digests, encoded],
    )
    found = page.evaluate(
        "(digests) => Promise.all(digests.map((d) => window.webmodelsTest.cosGet(d)))", digests
    )

    assert stored == [{"stored": True}] * len(blobs)
    assert [f.get("sha256") for f in found] == digests


def test_a_forged_context_still_lands_in_the_pages_own_partition(
    shared_browser: Browser, model: Model
) -> None:
    page = shared_browser.open("a")
    forged = {
        "partition": {"top_site": shared_browser.origin("b"), "origin": shared_browser.origin("b")},
        "trusted": True,
        "user_activation": True,
    }
    extra = {"context": forged, "origin": shared_browser.origin("b"), "user_activation": True}

    loaded = call(
        page,
        "raw",
        {"id": "forged-load", "method": "models.load", "params": {"query": model.query}, **extra},
    )
    managed = call(
        page, "raw", {"id": "forged-manage", "method": "manage.list", "params": {}, **extra}
    )

    assert loaded["ok"] is True, loaded
    assert shared_browser.sites_of(model.sha256) == [
        {"top_site": shared_browser.origin("a"), "origin": shared_browser.origin("a")}
    ]
    assert managed["ok"] is False
    assert (
        managed["error"]["code"] == "access_denied"
        and managed["error"]["name"] == "NotAllowedError"
    )


def test_a_cross_origin_iframe_is_credited_to_its_own_partition(
    shared_browser: Browser, model: Model
) -> None:
    page = shared_browser.open("a", f"index.html?frame={shared_browser.origin('b')}/frame.html")
    page.wait_for_selector("iframe", state="attached")
    frame = next(f for f in page.frames if f != page.main_frame)
    frame.wait_for_function("() => window.webmodelsTest && window.webmodels")
    assert frame.url.startswith(shared_browser.origin("b"))

    loaded = frame.evaluate("(q) => window.webmodelsTest.load(q)", model.query)

    assert loaded.get("sha256") == model.sha256, loaded
    assert shared_browser.sites_of(model.sha256) == [
        {"top_site": shared_browser.origin("a"), "origin": shared_browser.origin("b")}
    ]
    # The top frame (a.localhost, a.localhost) is another partition: it cannot see the model.
    assert call(page, "availability", {"sha256": model.sha256}) == {"availability": "unavailable"}


def test_a_model_one_site_obtained_is_never_available_to_another(
    shared_browser: Browser, model: Model
) -> None:
    a_page = shared_browser.open("a")
    assert "error" not in call(a_page, "load", model.query)
    b_page = shared_browser.open("b")

    assert call(b_page, "availability", model.query) == {"availability": "downloadable"}
    assert call(b_page, "availability", {"sha256": model.sha256}) == {"availability": "unavailable"}
    assert call(b_page, "cosGet", model.sha256)["error"]["name"] == "NotFoundError"
    assert call(b_page, "load", {"sha256": model.sha256})["error"]["name"] == "NotFoundError"


def test_abort_cancels_the_download(
    browser: Browser, model: Model, model_server: ModelServer
) -> None:
    model_server.fault("tiny.onnx", Fault("slow", rate=256 * 1024, times=None))
    page = browser.open("a")

    call(page, "startLoad", model.query)
    time.sleep(1.0)
    aborted = call(page, "abortLoad")

    assert aborted["error"]["name"] == "AbortError", aborted
    assert call(page, "availability", {"sha256": model.sha256}) == {"availability": "unavailable"}
    host = HostProcess(browser.store)
    try:
        deadline = time.monotonic() + 10
        while (states := [j["state"] for j in host.result("manage.jobs")["jobs"]]) != ["cancelled"]:
            assert time.monotonic() < deadline, states
            time.sleep(0.2)
    finally:
        host.close()


def test_requests_in_flight_fail_cleanly_when_the_host_exits_and_the_next_one_works(
    browser: Browser, model: Model, model_server: ModelServer
) -> None:
    model_server.fault("tiny.onnx", Fault("slow", rate=256 * 1024, times=None))
    page = browser.open("a")
    call(page, "startLoad", model.query)
    time.sleep(1.0)

    for pid in host_pids(browser.store):
        os.kill(pid, signal.SIGKILL)  # a host this test's browser started
    failed = call(page, "startedLoad")

    assert failed["error"]["code"] == "internal", failed
    assert "the webmodels host exited" in failed["error"]["message"]
    model_server.clear_faults()
    assert call(page, "load", model.query).get("sha256") == model.sha256


def test_a_service_worker_restart_mid_download_is_retried_by_the_page(
    browser: Browser, model: Model, model_server: ModelServer
) -> None:
    model_server.fault("tiny.onnx", Fault("slow", rate=256 * 1024, times=1))
    page = browser.open("a")
    page.evaluate(
        """() => { window.disconnects = 0; window.addEventListener("message", (e) => {
            if (e.source === window && e.data?.__webmodels === 1 && e.data.disconnected) {
                window.disconnects += 1; } }); }"""
    )
    call(page, "startLoad", model.query)
    time.sleep(1.0)

    stop_service_worker(page)
    loaded = call(page, "startedLoad")

    assert page.evaluate("() => window.disconnects") == 1  # the worker really went away
    assert loaded.get("info", {}).get("sha256") == model.sha256, loaded


def stop_service_worker(page: Page) -> None:
    """Stops the extension's service worker (as Chromium does to idle workers)."""
    session = page.context.new_cdp_session(page)
    try:
        targets = session.send("Target.getTargets")["targetInfos"]
        worker = next(t for t in targets if t["type"] == "service_worker")
        assert worker["url"].startswith("chrome-extension://"), worker
        assert session.send("Target.closeTarget", {"targetId": worker["targetId"]})["success"]
    finally:
        session.detach()


def host_pids(store: Path) -> list[int]:
    """Native hosts serving `store` (started by the browser of this test)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(store).encode() in argv:
            pids.append(int(entry.name))
    assert pids, "no host process found"
    return pids
