"""WebLLM (@mlc-ai/web-llm, as published on npm, pinned) stores its weight shards
through navigator.crossOriginStorage, in real Chromium with the real extension.

WebLLM 0.2.86 uses Cross-Origin Storage only when ``navigator.crossOriginStorage
.getFileHandle`` is a function (0.2.83-0.2.85 call ``requestFileHandle``); otherwise it
silently falls back to its per-site Cache API and every site downloads the weights
again. Each version's own storage code runs here (its artifact cache with
``cacheBackend: "cross-origin"`` and ``hasModelInCache``) on a tiny fake model whose
tensor-cache.json and shards a loopback server serves the way Hugging Face does
(``/resolve/`` files, ``/raw/`` Git LFS pointers that name each file's SHA-256). Site A
stores two models; site B finds the one on the signed commons list, with no download,
and never the other (stored with ``origins: "*"``, which must not widen who sees it).

The package is fetched by npm at test time into .cache/npm/. The test serves its
lib/index.js with one line added, ``export { libExports$2 as __tvmjs }``, so the page
reaches WebLLM's bundled runtime library (createArtifactCache), whose tensor-cache
loader needs a compiled model library to run; everything else is WebLLM's own code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from e2e.conftest import install_host
from e2e.test_page_api import EXTENSION, Browser, pages_server, site_args
from privacy.signing import Signer, entry, trusting_config
from support.host import HostProcess
from support.httpserver import ModelServer
from support.npm import npm_package

if TYPE_CHECKING:
    from e2e.test_page_api import Launch

pytestmark = pytest.mark.e2e
__all__ = ["pages_server"]  # fixtures shared with test_page_api

VERSIONS = ("0.2.86", "0.2.85")
RUNTIME_EXPORT = "var libExports$2 = requireLib$2();"
DRIVER = "libraries/webllm-storage.js"
RUN = "async ([fn, args]) => (await import('/" + DRIVER + "'))[fn](args)"


@dataclass(frozen=True)
class FakeModel:
    """A WebLLM model folder: tensor-cache.json and its shards, by file name."""

    model_id: str
    url: str  # what WebLLM's model record names (it adds /resolve/main/)
    files: dict[str, bytes]

    @property
    def shards(self) -> list[str]:
        return [name for name in self.files if name != "tensor-cache.json"]

    def args(self) -> dict[str, Any]:
        return {"modelId": self.model_id, "modelUrl": self.url, "shards": self.shards}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_model(server: ModelServer, model_id: str, shard_sizes: list[int]) -> FakeModel:
    shards = {f"params_shard_{i}.bin": os.urandom(size) for i, size in enumerate(shard_sizes)}
    records = [
        {"dataPath": name, "format": "raw-shard", "nbytes": len(data), "records": []}
        for name, data in shards.items()
    ]
    index = json.dumps({"metadata": {"model": model_id}, "records": records}).encode()
    files = {"tensor-cache.json": index, **shards}
    for name, data in files.items():
        server.add(f"test-org/{model_id}/resolve/main/{name}", data)
        pointer = "version https://git-lfs.github.com/spec/v1\n"
        pointer += f"oid sha256:{sha256(data)}\nsize {len(data)}\n"
        server.add(
            f"test-org/{model_id}/raw/main/{name}", pointer.encode(), content_type="text/plain"
        )
    return FakeModel(model_id, server.url(f"test-org/{model_id}"), files)


@pytest.fixture
def models(model_server: ModelServer) -> dict[str, dict[str, FakeModel]]:
    """Per WebLLM version, a common model (on the commons list) and a private one."""
    return {
        version: {
            "common": fake_model(model_server, f"Common-{version}-MLC", [300_000, 200_000]),
            "private": fake_model(model_server, f"Private-{version}-MLC", [250_000]),
        }
        for version in VERSIONS
    }


@pytest.fixture
def browser(
    chromium: Launch,
    tmp_path: Path,
    install_env: dict[str, str],
    pages_server: ModelServer,
    models: dict[str, dict[str, FakeModel]],
) -> Browser:
    """Chromium with the real extension; its host trusts a throw-away commons key whose
    list holds every file of each version's common model."""
    signer = Signer()
    env = install_env | trusting_config(tmp_path, signer, system_preinstalled=False)
    profile, store = tmp_path / "profile", tmp_path / "store"
    install_host(store, profile, env)
    cli = [sys.executable, "-m", "webmodels", "--store", str(store)]
    common = [
        entry(data, name=f"test/{version.replace('.', '-')}-{i}")
        for version, pair in models.items()
        for i, data in enumerate(pair["common"].files.values())
    ]
    listed = signer.write(tmp_path / "commons.json", 1, common)
    update = [*cli, "commons", "update", str(listed)]
    subprocess.run(update, env=env, check=True, capture_output=True, timeout=120)
    for version in VERSIONS:
        lib = (npm_package(f"@mlc-ai/web-llm@{version}") / "lib" / "index.js").read_text()
        assert RUNTIME_EXPORT in lib, f"WebLLM {version}: its runtime library moved"
        served = lib + "\nexport { libExports$2 as __tvmjs };\n"
        kind = "text/javascript; charset=utf-8"
        pages_server.add(f"libraries/web-llm-{version}.js", served.encode(), content_type=kind)
    extra = site_args(pages_server.port)
    context = chromium(profile, extension_dir=EXTENSION, env=env, extra_args=extra)
    return Browser(context, pages_server.port, store)


def sites_of(browser: Browser, digests: list[str]) -> dict[str, list[dict[str, str]]]:
    """The partitions that obtained each model, from one trusted host's manage.list."""
    host = HostProcess(browser.store)
    try:
        models = host.result("manage.list")["models"]
    finally:
        host.close()
    return {m["sha256"]: m["sites"] for m in models if m["sha256"] in digests}


def run(browser: Browser, site: str, fn: str, version: str, models: list[FakeModel]) -> Any:
    page = browser.open(site)
    args = {"lib": f"/libraries/web-llm-{version}.js", "models": [m.args() for m in models]}
    try:
        return page.evaluate(RUN, [fn, args])
    finally:
        page.close()


def test_webllm_stores_shards_through_cos_and_another_site_finds_only_common_ones(
    browser: Browser, models: dict[str, dict[str, FakeModel]]
) -> None:
    started = time.monotonic()
    for version in VERSIONS:
        common, private = models[version]["common"], models[version]["private"]
        a, b = f"a{version.replace('.', '')}", f"b{version.replace('.', '')}"
        name = "getFileHandle" if version >= "0.2.86" else "requestFileHandle"

        stored = run(browser, a, "store", version, [common, private])

        assert stored["cacheClass"] == "ArtifactCrossOriginStorageCache", (version, stored)
        assert stored["calls"][name] > 0, (version, stored["calls"])
        assert stored["before"] == {common.model_id: False, private.model_id: False}
        assert stored["after"] == {common.model_id: True, private.model_id: True}
        every = [sha256(data) for model in (common, private) for data in model.files.values()]
        me = [{"top_site": browser.origin(a), "origin": browser.origin(a)}]
        assert sites_of(browser, every) == {digest: me for digest in every}, version

        found = run(browser, b, "find", version, [common, private])

        assert found["cacheClass"] == "ArtifactCrossOriginStorageCache", (version, found)
        assert found["found"] == {common.model_id: True, private.model_id: False}, version
        assert found["shards"] == {
            **{f"{common.model_id}/{s}": sha256(common.files[s]) for s in common.shards},
            **{f"{private.model_id}/{s}": None for s in private.shards},
        }, version
    print(f"WebLLM {', '.join(VERSIONS)}: {time.monotonic() - started:.1f} s")
