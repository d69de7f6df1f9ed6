"""The popup's "Common models" section shows which commons lists are in force: the
project's and a user's (signed with a throw-away key the config trusts), side by side."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from e2e.conftest import install_host
from privacy.signing import Signer, entry
from support.host import run_cli, webmodels_env

pytestmark = pytest.mark.e2e
EXTENSION = Path(__file__).resolve().parents[2] / "extension"
POPUP = "chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/popup/popup.html"


def test_popup_lists_the_commons_lists_in_force(chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    store, profile = tmp_path / "store", tmp_path / "profile"
    store.mkdir()
    user = Signer()
    config = tmp_path / "config.toml"
    config.write_text(f"commons_keys = {json.dumps(['project', user.public])}\n", "utf-8")
    env = {"WEBMODELS_CONFIG": str(config)}
    listed = user.write(tmp_path / "mine.json", 1, [entry(b"a"), entry(b"b", name="x/b")])
    run_cli(store, "commons", "add", str(listed), **env)
    install_host(store, profile, webmodels_env(store, **env))
    popup = chromium(profile, extension_dir=EXTENSION).new_page()
    popup.goto(POPUP)
    in_force = popup.locator("#commons-list li.commons-list[data-in-force=true]")
    in_force.nth(1).wait_for(timeout=10_000)
    texts = sorted(in_force.all_text_contents())
    assert len(texts) == 2
    assert texts[0].startswith("The project's list") and "version 2" in texts[0]
    assert texts[1].startswith("Your list") and "version 1 · 2 models" in texts[1]
    popup.screenshot(path=str(tmp_path / "popup-commons.png"), full_page=True)
    print(f"wall time {time.monotonic() - started:.1f} s")
