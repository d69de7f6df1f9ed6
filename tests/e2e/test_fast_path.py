"""The fast byte path in real Chromium (docs/design.md#fast-byte-paths):
`model.arrayBuffer()` of a stored model comes through the extension's bridge frame from
the host's one-time loopback URL,
byte-identical; the page never sees the URL (nor the extension's: the relay posts the
bytes at the page's own origin); and a page cannot use it itself."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import pytest

from e2e.test_page_api import Browser, call, shared_browser
from support.held import holds, on_disk
from support.httpserver import ModelServer
from support.runtime_models import identity_model
from webmodels.digest import Digest
from webmodels.store.store import Store

pytestmark = pytest.mark.e2e
__all__ = ["shared_browser"]  # a fixture shared with test_page_api


def test_a_whole_model_comes_through_the_bridge_and_the_page_never_sees_the_url(
    shared_browser: Browser, model_server: ModelServer, tmp_path: Path
) -> None:
    data = os.urandom(24 << 20)
    sha = hashlib.sha256(data).hexdigest()
    query = {
        "url": model_server.add("/big.bin", data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    page = shared_browser.open("a")
    loaded = call(page, "load", query)
    assert "error" not in loaded, loaded
    assert loaded["sha256"] == sha  # arrayBuffer() (and stream(), chunked) agree

    seen = call(page, "bridgeMessages")
    assert seen == [{"origin": shared_browser.origin("a"), "bytes": len(data), "error": None}]

    # What a page gets for models.open: a ticket, never the loopback URL.
    opened = call(page, "raw", {"id": "open-1", "method": "models.open", "params": {"sha256": sha}})
    assert opened["ok"] is True, opened
    assert sorted(opened["result"]) == ["size", "ticket"]
    assert "127.0.0.1" not in str(opened)

    # Timing, for the record (not asserted): the same bytes whole and streamed, both
    # through the bridge.
    started = time.perf_counter()
    fast = page.evaluate(
        """async (sha) => { const m = await webmodels.load({sha256: sha});
             const b = await m.arrayBuffer(); return b.byteLength; }""",
        sha,
    )
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = page.evaluate(
        """async (sha) => { const m = await webmodels.load({sha256: sha});
             const r = new Response(m.stream()); return (await r.arrayBuffer()).byteLength; }""",
        sha,
    )
    slow_s = time.perf_counter() - started
    assert fast == slow == len(data)
    print(f"\n24 MiB: arrayBuffer() {fast_s * 1000:.0f} ms, stream() {slow_s * 1000:.0f} ms")


def test_a_session_output_past_one_frame_reaches_the_page_whole(
    shared_browser: Browser, model_server: ModelServer
) -> None:
    """A 2.8 MB output (the host's reply frame holds 1 MiB) is kept by the host and
    fetched by the page through the bridge, equal to what went in."""
    model = identity_model("float32").SerializeToString()
    query = {
        "url": model_server.add("/identity.onnx", model),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(model).digest()).decode(),
    }
    page = shared_browser.open("a")
    before = len(call(page, "bridgeMessages"))
    same = page.evaluate(
        """async (query) => {
             const model = await webmodels.load(query);
             const session = await model.createSession();
             const x = new Float32Array(700000);
             for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
             const feed = { type: "float32", dims: [1, 1, x.length], data: x };
             const { y } = await session.run({ x: feed });
             await session.release();
             return y.data.length === x.length && y.data.every((v, i) => v === x[i])
               && y.dims.join() === [1, 1, x.length].join();
           }""",
        query,
    )
    assert same is True
    after = call(page, "bridgeMessages")[before:]
    assert after == [{"origin": shared_browser.origin("a"), "bytes": 2_800_000, "error": None}]


def test_the_transformers_js_cache_adapter_stores_once_and_answers_per_site(
    shared_browser: Browser,
) -> None:
    """`webmodels.cache` (Transformers.js `env.customCache`): put() stores in the shared
    store, match() answers from it; another site putting the same file costs no second
    copy, and a site that never put it gets undefined."""
    data = os.urandom(3 << 20)
    sha = hashlib.sha256(data).hexdigest()
    script = """async ([action, url, b64]) => {
        const cache = webmodels.cache;
        if (action === "put") {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const headers = {"Content-Type": "application/octet-stream"};
          await cache.put(url, new Response(bytes, {headers}));
          return null;
        }
        const found = await cache.match(url);
        if (found === undefined) return null;
        const body = new Uint8Array(await found.arrayBuffer());
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
        return {type: found.headers.get("Content-Type"), size: body.length,
                sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")};
    }"""
    url = "https://huggingface.example/onnx/model.onnx"
    page_a = shared_browser.open("a")
    assert page_a.evaluate(script, ["match", url, ""]) is None
    page_a.evaluate(script, ["put", url, base64.b64encode(data).decode()])
    found = page_a.evaluate(script, ["match", url, ""])
    assert found == {"type": "application/octet-stream", "size": len(data), "sha256": sha}
    page_b = shared_browser.open("b")
    assert page_b.evaluate(script, ["match", url, ""]) is None  # b never put it
    with Store(shared_browser.store / "store-v2") as store:
        copy = on_disk(store, Digest(sha))  # its whole file, or its segments
        assert holds(store, Digest(sha))
        recipe = store.recipe_of(Digest(sha))
    # One copy: the blocks its file (or pack) takes; in a pack, each segment starts
    # on a 4 KiB boundary (a block at most each).
    parts = len(recipe.segments) if recipe is not None else 1
    assert sum(path.stat().st_blocks * 512 for path in copy) <= len(data) + 4096 * parts
    kept = _kept_files(shared_browser.store / "store-v2")
    page_b.evaluate(script, ["put", url, base64.b64encode(data).decode()])
    assert page_b.evaluate(script, ["match", url, ""])["sha256"] == sha
    assert {s["top_site"] for s in shared_browser.sites_of(sha)} == {
        shared_browser.origin("a"),
        shared_browser.origin("b"),
    }
    # One copy for both sites: b's put added no whole file and no segment to the store
    # (the pack it wrote leaves on the host's reaper thread, soon after the put).
    deadline = time.monotonic() + 60
    while _kept_files(shared_browser.store / "store-v2") != kept and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _kept_files(shared_browser.store / "store-v2") == kept


def _kept_files(root: Path) -> set[Path]:
    """Every file a store keeps bytes in: whole files, segment files and packs."""
    with Store(root) as store:
        whole = {path for _, path in store.files.iter_blobs()}
        whole |= {path for _, path in store.segmented.store.iter_packs()}
        return whole | {path for _, path in store.segmented.store.iter_segments()}


def test_a_page_whose_csp_forbids_frames_still_gets_the_fast_path(
    shared_browser: Browser, model_server: ModelServer
) -> None:
    """Chromium exempts the extension's web-accessible bridge from the page's
    `frame-src 'none'`: the bytes still come through it, whole."""
    data = os.urandom(3 << 20)
    query = {
        "url": model_server.add("/csp.bin", data),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    page = shared_browser.open("a", "no-frames.html")
    loaded = call(page, "load", query)
    assert "error" not in loaded, loaded
    assert loaded["sha256"] == hashlib.sha256(data).hexdigest()
    assert call(page, "bridgeMessages") == [
        {"origin": shared_browser.origin("a"), "bytes": len(data), "error": None}
    ]
