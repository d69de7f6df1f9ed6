"""Popup wording a user reads, in real Chromium with the real extension and host: the
storage bar has a legend, the catalog key field shows its whole placeholder, and a
model's source is explained in words (a downloaded model is the one copy that other
sites allowed to use it get without a download). A screenshot is saved for review."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from e2e.conftest import install_host
from support.host import run_cli, webmodels_env
from support.httpserver import ModelServer
from support.png import distinct_colours

pytestmark = pytest.mark.e2e
EXTENSION = Path(__file__).resolve().parents[2] / "extension"
POPUP_URL = "chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/popup/popup.html"

# Whether an input's placeholder fits inside its box, measured in the input's font.
PLACEHOLDER_FITS = """(input) => {
  const style = getComputedStyle(input);
  const context = document.createElement("canvas").getContext("2d");
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const text = context.measureText(input.placeholder).width;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {text, room};
}"""


def test_popup_explains_the_storage_bar_the_key_field_and_the_source(
    chromium,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    started = time.monotonic()
    store, profile = tmp_path / "store", tmp_path / "profile"
    store.mkdir()
    data = os.urandom(20_000)
    with ModelServer() as server:
        url = server.add("/m.bin", data)
        run_cli(store, "pull", url, "--sha256", hashlib.sha256(data).hexdigest())
    install_host(store, profile, webmodels_env(store))
    context = chromium(profile, extension_dir=EXTENSION)
    popup = context.new_page()
    popup.set_viewport_size({"width": 380, "height": 700})
    popup.goto(POPUP_URL)
    popup.locator("#model-list li.model").first.wait_for(timeout=30_000)

    legend = popup.locator("#totals .usage-legend")
    assert "on disk" in legend.inner_text() and "saved by sharing" in legend.inner_text()

    fit = popup.locator("#catalog-key").evaluate(PLACEHOLDER_FITS)
    print(f"catalog key placeholder: {fit['text']:.0f} px of text in {fit['room']:.0f} px")
    assert fit["text"] <= fit["room"], "the catalog key placeholder is cut off"

    badge = popup.locator("#model-list li.model .badge.source-downloaded").first
    assert "no download" in (badge.get_attribute("title") or "")
    assert "common model" in (badge.get_attribute("title") or "")

    shot = tmp_path / "popup-wording.png"
    popup.screenshot(path=str(shot), full_page=True)
    assert distinct_colours(shot) > 50
    print(f"screenshot {shot}; took {time.monotonic() - started:.1f} s")
