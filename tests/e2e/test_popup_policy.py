"""A privacy mode locked by the administrator's policy, as the user sees it in the popup
of real Chromium with the real extension and host: "Set by your administrator", and
the choice offered no more."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from e2e.conftest import install_host
from support.host import webmodels_env

pytestmark = pytest.mark.e2e
EXTENSION = Path(__file__).resolve().parents[2] / "extension"
POPUP_URL = "chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/popup/popup.html"


def test_popup_shows_a_locked_privacy_mode_as_set_by_the_administrator(
    chromium,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    started = time.monotonic()
    store, profile = tmp_path / "store", tmp_path / "profile"
    store.mkdir()
    policy = tmp_path / "policy.toml"
    policy.write_text('privacy_mode = { value = "strict", locked = true }\n')
    install_host(store, profile, webmodels_env(store))
    context = chromium(profile, extension_dir=EXTENSION, env={"WEBMODELS_POLICY": str(policy)})
    popup = context.new_page()
    popup.goto(POPUP_URL)
    note = popup.locator("#privacy-managed")
    note.wait_for(state="visible", timeout=30_000)
    assert note.inner_text() == "Set by your administrator."
    relaxed = popup.locator('input[name="privacy-mode"][value="relaxed"]')
    assert relaxed.is_disabled()
    assert popup.locator('input[name="privacy-mode"][value="strict"]').is_checked()
    print(f"popup policy test: {time.monotonic() - started:.1f} s")
