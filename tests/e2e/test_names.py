"""A page asks for a model by name and range in real Chromium, through the real
extension and host: `webmodels.load({name, version}, {substitute})`
(docs/design.md#names-versions-and-sources)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from e2e.conftest import install_host
from e2e.test_page_api import EXTENSION, Browser, call, pages_server, site_args
from support.catalogs import CatalogSigner, entry
from support.httpserver import ModelServer
from support.models import tiny_model

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import BrowserContext

    Launch = Callable[..., BrowserContext]

pytestmark = pytest.mark.e2e
__all__ = ["pages_server"]  # fixtures shared with test_page_api


def webmodels(store: Path, env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "webmodels", "--store", str(store), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_page_asks_for_a_range_and_gets_the_preinstalled_version_offline(
    chromium: Launch,
    tmp_path: Path,
    install_env: dict[str, str],
    pages_server: ModelServer,
    model_server: ModelServer,
) -> None:
    store, profile, folder = tmp_path / "store", tmp_path / "profile", tmp_path / "system"
    folder.mkdir()
    v14 = tiny_model(folder / "model-1.4.onnx", seed=14).read_bytes()
    v15 = tiny_model(tmp_path / "model-1.5.onnx", seed=15).read_bytes()
    v2 = tiny_model(tmp_path / "model-2.onnx", seed=2).read_bytes()
    listed = [
        {
            "file": "model-1.4.onnx",
            "name": "acme/model",
            "version": "1.4.0",
            "sha256": hashlib.sha256(v14).hexdigest(),
        }
    ]
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": listed}))
    signer = CatalogSigner("acme")
    urls = {
        v: (model_server.add(f"/{n}.onnx", v),) for n, v in (("14", v14), ("15", v15), ("2", v2))
    }
    first = signer.write(
        tmp_path / "c1.json",
        1,
        [
            entry(v14, "acme/model", "1.4.0", urls=urls[v14]),
            entry(v2, "acme/model", "2.0.0", urls=urls[v2]),
        ],
    )
    env = {**install_env, "WEBMODELS_PREINSTALLED": str(folder)}
    install_host(store, profile, env)
    webmodels(store, env, "catalog", "add", str(first), "--key", signer.public)
    context = chromium(
        profile,
        extension_dir=EXTENSION,
        env={"WEBMODELS_PREINSTALLED": str(folder)},
        extra_args=site_args(pages_server.port),
    )
    browser = Browser(context, pages_server.port, store)
    page = browser.open("a")

    got = call(page, "load", {"name": "acme/model", "version": "^1"})

    assert "error" not in got, got
    info = got["info"]
    assert (info["name"], info["version"], info["source"], info["substituted"]) == (
        "acme/model",
        "1.4.0",
        "preinstalled",
        False,
    )
    assert got["sha256"] == hashlib.sha256(v14).hexdigest()
    assert got["progress"] == []
    assert model_server.requests == []  # no network transfer at all

    # The publisher ships 1.5.0: by default a page gets the newest; a page that accepts
    # a compatible version keeps using the pre-installed 1.4.0, still offline.
    second = signer.write(
        tmp_path / "c2.json",
        2,
        [
            entry(v14, "acme/model", "1.4.0", urls=urls[v14]),
            entry(v15, "acme/model", "1.5.0", urls=urls[v15]),
            entry(v2, "acme/model", "2.0.0", urls=urls[v2]),
        ],
    )
    webmodels(store, env, "catalog", "add", str(second), "--key", signer.public)
    model_server.stop()
    kept = call(page, "load", {"name": "acme/model", "version": "^1"}, {"substitute": "compatible"})
    assert "error" not in kept, kept
    assert (kept["info"]["version"], kept["info"]["substituted"]) == ("1.4.0", True)
    assert call(page, "availability", {"name": "acme/model", "version": "^1"}) == {
        "availability": "downloadable"
    }  # 1.5.0 would be fetched without substitution
