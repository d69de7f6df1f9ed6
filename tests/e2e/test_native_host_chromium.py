"""`webmodels install` writes manifests that a real Chromium accepts.

The probe extension (fixtures/probe-extension, same key and so the same ID as the
real extension) calls ``chrome.runtime.sendNativeMessage("org.webmodels.host",
hello)`` from an extension page; the test reads the outcome from that page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from webmodels import NATIVE_HOST_NAME, PROTOCOL_VERSION
from webmodels.config import CHROMIUM_EXTENSION_ID

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    Launch = Callable[..., BrowserContext]  # the `chromium` fixture (tests/e2e/conftest.py)

pytestmark = pytest.mark.e2e

PROBE_URL = f"chrome-extension://{CHROMIUM_EXTENSION_ID}/probe.html"
REPLY_TIMEOUT_MS = 30_000
# chrome/browser/extensions/api/messaging/native_message_process_host.cc
NOT_FOUND = "Specified native messaging host not found."


@pytest.fixture
def cli_env(tmp_path: Path, config_home: Path) -> dict[str, str]:
    """The environment of `webmodels` runs: a throwaway HOME and XDG config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env.pop("CHROME_CONFIG_HOME", None)
    home = tmp_path / "user-home"
    home.mkdir()
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(config_home)}


def webmodels(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "webmodels", *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def probe(context: BrowserContext) -> dict[str, Any]:
    """Open the probe page and return its outcome: {"reply": ...} or {"error": ...}."""
    page = context.new_page()
    try:
        page.goto(PROBE_URL)
        done = page.wait_for_selector(
            '#result[data-state="done"]', state="attached", timeout=REPLY_TIMEOUT_MS
        )
        assert done is not None
        outcome: dict[str, Any] = json.loads(done.text_content() or "null")
        return outcome
    finally:
        page.close()


def assert_hello(outcome: dict[str, Any]) -> None:
    assert "reply" in outcome, f"Chromium could not reach the host: {outcome}"
    reply = outcome["reply"]
    assert reply["id"] == 1 and reply["ok"] is True, reply
    assert reply["result"]["protocol_version"] == PROTOCOL_VERSION, reply


def test_probe_extension_has_the_webmodels_id(chromium: Launch, tmp_path: Path) -> None:
    context = chromium(tmp_path / "profile")
    worker = context.service_workers[0] if context.service_workers else None
    worker = worker or context.wait_for_event("serviceworker", timeout=REPLY_TIMEOUT_MS)
    assert worker.url.startswith(f"chrome-extension://{CHROMIUM_EXTENSION_ID}/")


def test_without_install_chromium_finds_no_host(chromium: Launch, tmp_path: Path) -> None:
    context = chromium(tmp_path / "profile")
    assert probe(context) == {"error": NOT_FOUND}


def test_install_for_a_profile_is_accepted_and_uninstall_takes_it_away(
    chromium: Launch, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    profile, store = tmp_path / "profile", tmp_path / "store"
    selection = ("--browser", "chromium", "--user-data-dir", str(profile))
    webmodels("--store", store, "install", *selection, env=cli_env)
    assert (profile / "NativeMessagingHosts" / f"{NATIVE_HOST_NAME}.json").is_file()
    context = chromium(profile)

    assert_hello(probe(context))

    webmodels("--store", store, "uninstall", *selection, env=cli_env)
    # Chromium reads the manifest again for every connection.
    assert probe(context) == {"error": NOT_FOUND}


def test_default_install_is_found_by_the_default_profile(
    chromium: Launch, tmp_path: Path, config_home: Path, cli_env: dict[str, str]
) -> None:
    webmodels("--store", tmp_path / "store", "install", "--browser", "chromium", env=cli_env)
    # Chromium's default profile folder on Linux is $XDG_CONFIG_HOME/chromium.
    context = chromium(config_home / "chromium")

    assert_hello(probe(context))
