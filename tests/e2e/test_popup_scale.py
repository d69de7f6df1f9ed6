"""The popup with 10,000 stored files, in a real Chromium with the real extension and
host: it opens and shows the first page of files grouped under their model, loads
more as the list scrolls to its end, and finds a model's files by a search the host
runs. Before pages, `manage.list` answered `too_large` from 2,400 files and the popup
listed nothing. The open time is printed and asserted at 3x the issue's 1 s target."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from e2e.test_popup import (  # noqa: F401 (fixtures)
    POPUP_SIZE,
    POPUP_URL,
    TIMEOUT_MS,
    Setup,
    browser,
    installed,
    setup,
)
from support.big_store import build_store

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

FILES = 10_000
A = "http://a.localhost:8000"
CARDS = "#model-list li.model"


@pytest.fixture
def big(installed: Setup) -> Setup:  # noqa: F811
    started = time.perf_counter()
    build_store(installed.store / "store-v2", FILES, sites=(f"{A} {A}",), blob_files=False)
    print(f"\nbuilt a {FILES:,}-file store in {time.perf_counter() - started:.2f} s")
    return installed


def cards(popup: Page) -> int:
    return popup.locator(CARDS).count()


def test_popup_lists_pages_of_10000_files_grouped_searchable_and_scrolling(
    browser: BrowserContext,  # noqa: F811
    big: Setup,
) -> None:
    test_started = time.perf_counter()
    popup = browser.new_page()
    popup.set_viewport_size(POPUP_SIZE)
    popup.goto(POPUP_URL)  # the first open also starts the host
    popup.wait_for_selector(CARDS, timeout=TIMEOUT_MS)
    popup.close()
    popup = browser.new_page()
    popup.set_viewport_size(POPUP_SIZE)
    started = time.perf_counter()
    popup.goto(POPUP_URL)
    popup.wait_for_selector(CARDS, timeout=TIMEOUT_MS)
    opened = time.perf_counter() - started
    print(f"popup open to first page listed, {FILES:,} files: {opened * 1000:.0f} ms")
    assert cards(popup) == 100 and popup.text_content("#model-count") == f"{FILES}"
    first = popup.locator("#model-list li.model-group").first
    assert "acme/model-00000" in (first.text_content() or "") and "6 files" in (
        first.text_content() or ""
    )

    popup.locator("#models-more").scroll_into_view_if_needed()
    popup.locator(CARDS).nth(199).wait_for(timeout=TIMEOUT_MS)  # the second page

    popup.fill("#model-search", "MODEL-01234")
    expect(popup.locator(CARDS)).to_have_count(6, timeout=TIMEOUT_MS)
    names = popup.locator("#model-list li.model-group .group-name").all_text_contents()
    assert names == ["acme/model-01234"]
    popup.fill("#model-search", "no-such-model")
    popup.wait_for_selector("#models-no-match:not([hidden])", timeout=TIMEOUT_MS)
    print(f"test wall time {time.perf_counter() - test_started:.1f} s")
    assert opened < 3.0
