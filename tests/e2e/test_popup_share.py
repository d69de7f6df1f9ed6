"""The popup shares a model with a site (docs/design.md#privacy): after the user shares it, a page
of that site sees the model without a download; taking it back works too."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from e2e.conftest import install_host
from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, run_cli, webmodels_env
from support.httpserver import ModelServer

pytestmark = pytest.mark.e2e
EXTENSION = Path(__file__).resolve().parents[2] / "extension"


def test_share_from_the_popup(chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    profile = tmp_path / "profile"
    store.mkdir()
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(20_000))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    run_cli(store, "import", "--raw", str(model))
    install_host(store, profile, webmodels_env(store))
    context = chromium(profile, extension_dir=EXTENSION)
    popup = context.new_page()
    popup.goto("chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/popup/popup.html")
    card = popup.locator(f'li.model[data-sha256="{digest}"]')
    card.locator('[data-action="share"]').click()
    card.locator(".share-input").fill("https://b.example")
    card.locator('[data-action="confirm-share"]').click()
    card.locator('[data-shared-with="https://b.example"]').wait_for(timeout=10_000)
    page_b = {"partition": {"top_site": "https://b.example", "origin": "https://b.example"}}
    host = HostProcess(store)
    try:
        seen = host.result("models.availability", {"query": {"sha256": digest}}, context=page_b)
        assert seen == {"availability": "available"}
        card.locator('[data-action="unshare"]').click()
        card.locator('[data-shared-with="https://b.example"]').wait_for(
            state="detached", timeout=10_000
        )
        gone = host.result("models.availability", {"query": {"sha256": digest}}, context=page_b)
        assert gone == {"availability": "unavailable"}
    finally:
        host.kill()


def test_privacy_mode_from_the_popup(chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, profile = tmp_path / "store", tmp_path / "profile"
    store.mkdir()
    install_host(store, profile, webmodels_env(store))
    popup = chromium(profile, extension_dir=EXTENSION).new_page()
    popup.goto("chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/popup/popup.html")
    strict = popup.locator('input[name="privacy-mode"][value="strict"]')
    strict.wait_for(timeout=10_000)
    popup.wait_for_function("document.querySelector('input[value=strict]').checked", timeout=10_000)
    popup.locator('input[name="privacy-mode"][value="relaxed"]').check()
    host = HostProcess(store)
    try:
        deadline_ok = False
        for _ in range(50):
            if host.result("manage.settings.get") == {"privacy_mode": "relaxed"}:
                deadline_ok = True
                break
            popup.wait_for_timeout(100)
        assert deadline_ok
        shot = popup.screenshot(full_page=True)
        assert len(shot) > 10_000
    finally:
        host.kill()


def test_catalogs_from_the_popup(chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Add a catalog by URL and key in the popup; the host resolves its names; remove it."""
    store, profile = tmp_path / "store", tmp_path / "profile"
    store.mkdir()
    data = os.urandom(10_000)
    signer = CatalogSigner("popular")
    with ModelServer() as server:
        model_url = server.add("/m.bin", data)
        url = server.add(
            "/catalog.json", signer.sign(1, [entry(data, "acme/model", "1.0.0", urls=(model_url,))])
        )
        install_host(store, profile, webmodels_env(store))
        context = chromium(profile, extension_dir=EXTENSION)
        popup = context.new_page()
        popup.goto("chrome-extension://nkalnjoncikobhonhokfhfdgffafbfch/popup/popup.html")
        popup.locator("#catalog-source").fill(url)
        popup.locator("#catalog-key").fill(signer.public)
        popup.locator('[data-action="add-catalog"]').click()
        row = popup.locator('li.catalog[data-catalog="popular"]')
        row.wait_for(timeout=10_000)
        assert "version 1 · 1 model" in row.inner_text()
        page_a = {"partition": {"top_site": "https://a.example", "origin": "https://a.example"}}
        host = HostProcess(store)
        try:
            query = {"query": {"name": "acme/model", "version": "^1"}}
            seen = host.result("models.availability", query, context=page_a)
            assert seen == {"availability": "downloadable"}
            row.locator('[data-action="remove-catalog"]').click()
            row.locator('[data-action="confirm-remove-catalog"]').click()
            row.wait_for(state="detached", timeout=10_000)
            gone = host.call("models.availability", query, context=page_a)
            assert gone["error"]["code"] == "not_found"
        finally:
            host.kill()
        popup.screenshot(path=str(tmp_path / "catalogs.png"))
