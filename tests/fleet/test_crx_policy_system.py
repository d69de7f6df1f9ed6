"""The self-hosted CRX installed by a real Chromium through a real policy file.

Opt-in (``WEBMODELS_SYSTEM_TESTS=1``, as root): it writes a uniquely named file into the
system's Chromium policy folder, which every Chromium on the machine reads while it is
there; the file is removed in ``finally``, and one left by a killed run is removed
first. The test builds the CRX and ``updates.xml`` with ``scripts/package`` (a
throw-away key), serves them from a loopback server, force-installs them with
``ExtensionInstallForcelist``, launches headless Chromium on a fresh profile and
checks that the extension was installed by policy with the CRX's ID and that a page
gets ``window.webmodels`` talking to the host registered for that ID (the ID allowed
with ``chromium_extension_ids`` in a webmodels policy file, docs/fleet.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from e2e.conftest import CHROMIUM, install_host, require_chromium
from e2e.sites import serve_pages, site_args
from support.httpserver import ModelServer
from support.models import tiny_model

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from package_lib.__main__ import main as package  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("WEBMODELS_SYSTEM_TESTS") != "1",
        reason="writes the system's Chromium policy: set WEBMODELS_SYSTEM_TESTS=1 (as root)",
    ),
]

POLICY_DIR = Path("/etc/chromium/policies/managed")
PREFIX = "webmodels-system-test-"
INSTALL_DEADLINE_S = 120.0
TIMEOUT_MS = 60_000


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale() -> None:
    """Policy files of earlier runs whose process is gone (a killed run)."""
    for stale in POLICY_DIR.glob(f"{PREFIX}*.json"):
        found = re.fullmatch(rf"{PREFIX}(\d+)-\w+\.json", stale.name)
        if found is None or not _alive(int(found.group(1))):
            stale.unlink(missing_ok=True)


@pytest.fixture
def chromium_policy() -> Iterator[Path]:
    """The path of this run's policy file in the system folder (written by the test)."""
    if os.geteuid() != 0:
        pytest.skip("the system test writes the system's Chromium policy: run it as root")
    created = [d for d in (POLICY_DIR, *POLICY_DIR.parents) if not d.exists()]
    POLICY_DIR.mkdir(parents=True, exist_ok=True)
    _remove_stale()
    path = POLICY_DIR / f"{PREFIX}{os.getpid()}-{os.urandom(4).hex()}.json"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        for folder in created:  # the folders this run made, innermost first, if empty
            if not any(folder.iterdir()):
                folder.rmdir()


def _throwaway_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _build(tmp_path: Path, server: ModelServer) -> str:
    """The CRX and updates.xml, served by `server`; the CRX's extension ID."""
    out = tmp_path / "dist"
    base = server.url("webmodels/")
    key = _throwaway_key(tmp_path / "signing.pem")
    assert package(["--out", str(out), "--key", str(key), "--base-url", base]) == 0
    xml = (out / "updates.xml").read_text()
    app_id = re.search(r'appid="([a-p]{32})"', xml)
    assert app_id is not None, xml
    for file in (out / "updates.xml", *out.glob("*.crx")):
        kind = "text/xml" if file.suffix == ".xml" else "application/x-chrome-extension"
        server.add(f"webmodels/{file.name}", file.read_bytes(), content_type=kind)
    return app_id.group(1)


def _installed(context: Any, app_id: str) -> dict[str, Any]:
    """Chromium's own record of the extension (chrome://extensions-internals), once it
    was installed and enabled; fails after a generous deadline."""
    page = context.new_page()
    try:
        deadline = time.monotonic() + INSTALL_DEADLINE_S
        while True:
            page.goto("chrome://extensions-internals")
            records = json.loads(page.inner_text("body"))
            found = [r for r in records if r.get("id") == app_id]
            if found or time.monotonic() > deadline:
                break
            page.wait_for_timeout(500)
        policy = _policy_status(context)
        assert found, f"{app_id} was not installed; chrome://policy says {policy}"
        return dict(found[0])
    finally:
        page.close()


def _policy_status(context: Any) -> Any:
    """What Chromium made of the policies (DevTools protocol; for the failure message)."""
    page = context.new_page()
    try:
        page.goto("chrome://policy")
        page.wait_for_timeout(1000)
        return page.inner_text("body")[:3000]
    finally:
        page.close()


def test_chromium_force_installs_the_crx_and_pages_reach_the_host(
    tmp_path: Path, chromium_policy: Path
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with ModelServer() as server:
        serve_pages(server)
        app_id = _build(tmp_path, server)
        chromium_policy.write_text(
            json.dumps(
                {"ExtensionInstallForcelist": [f"{app_id};{server.url('webmodels/updates.xml')}"]}
            )
        )
        data = tiny_model(tmp_path / "tiny.onnx", seed=os.getpid()).read_bytes()
        url = server.add("tiny.onnx", data)
        integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()

        profile, config_home, home = tmp_path / "profile", tmp_path / "xdg", tmp_path / "home"
        config_home.mkdir()
        home.mkdir()
        webmodels_policy = tmp_path / "webmodels-policy.toml"
        webmodels_policy.write_text(f'chromium_extension_ids = ["{app_id}"]\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
        env.pop("CHROME_CONFIG_HOME", None)
        env |= {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(config_home),
            "WEBMODELS_POLICY": str(webmodels_policy),
        }
        install_host(tmp_path / "store", profile, env)

        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    *site_args(server.port),
                ],
                # Playwright's defaults turn extensions and their updater off.
                ignore_default_args=[
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                ],
                env=env,
                timeout=TIMEOUT_MS,
            )
            try:
                record = _installed(context, app_id)
                assert record["location"] == "EXTERNAL_POLICY_DOWNLOAD", record
                assert record["name"] == "webmodels" and not record["disable_reasons"], record
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(f"http://a.localhost:{server.port}/index.html")
                page.wait_for_function("() => window.webmodelsTest && window.webmodels")
                loaded = page.evaluate(
                    "(q) => window.webmodelsTest.load(q)", {"url": url, "integrity": integrity}
                )
            finally:
                context.close()
    print(f"force-installed {app_id} from {record['location']}; page load: {loaded.get('info')}")
    assert loaded.get("sha256") == hashlib.sha256(data).hexdigest(), loaded
    assert (tmp_path / "store").is_dir()
