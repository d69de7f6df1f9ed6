"""In real Chromium with the real extension and host, with no local-network allowance
(as a user's host runs): a public site (http://a.test, mapped to 127.0.0.1 by
Chromium only) cannot make the host fetch from a loopback server, and learns only
``download_failed``; the loopback server sees not even a connection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from e2e.conftest import install_host
from e2e.test_page_api import (
    EXTENSION,
    Browser,
    Model,
    call,
    model,
    pages_server,
    site_args,
)
from support.httpserver import ModelServer
from webmodels.errors import ERROR_CODES

if TYPE_CHECKING:
    from e2e.test_page_api import Launch

__all__ = ["model", "pages_server"]  # fixtures shared with test_page_api

pytestmark = pytest.mark.e2e

# What a page sees: the dispatcher gives pages the fixed meaning of the code (errors.py).
PAGE_DOWNLOAD_FAILED = ERROR_CODES["download_failed"]


@pytest.fixture
def strict_browser(
    chromium: Launch, tmp_path: Path, install_env: dict[str, str], pages_server: ModelServer
) -> Browser:
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, install_env)
    context = chromium(
        profile,
        extension_dir=EXTENSION,
        extra_args=site_args(pages_server.port, "test"),  # public-looking: a.test, b.test
        env={"WEBMODELS_LOCAL_NETWORK_ORIGINS": ""},  # the default, said out loud
    )
    return Browser(context, pages_server.port, store, "test")


def test_a_public_site_cannot_make_the_host_fetch_from_loopback(
    strict_browser: Browser, model: Model, model_server: ModelServer
) -> None:
    page = strict_browser.open("a")

    result = call(page, "load", model.query)

    assert result.get("error", {}).get("code") == "download_failed", result
    assert PAGE_DOWNLOAD_FAILED in result["error"]["message"]
    assert model_server.accepted == 0
    assert strict_browser.sites_of(model.sha256) == []
