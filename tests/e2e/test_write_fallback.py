"""A Cross-Origin Storage write whose bridge PUT fails, in real Chromium: the host is
killed while it holds part of the bytes (a crash, an upgrade), so the bridge's PUT is
cut. The bridge then hands the Blob to the service worker, which sends it whole again
through native messaging (to the host the next request starts; background/
native-write.js), and the page sees the same messages and verdict as for a bridge
write: `close()` resolves, the stored bytes are the page's, byte for byte, and nothing
of the cut upload is published or left behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.test_page_api import Browser, browser, host_pids, pages_server
from support.host import HostProcess

pytestmark = pytest.mark.e2e
__all__ = ["browser", "pages_server"]  # fixtures shared with test_page_api

MIB = 96
# Starts a write of `mib` MiB of pseudo-random bytes (not awaited: window.__written),
# and records what a page can see of it: the requests its own shim posts to the relay,
# and the bridge verdicts the relay posts back.
START = """async (mib) => {
  const TAG = "__webmodels";
  const seen = { methods: [], verdicts: [] };
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (data?.[TAG] !== 1) return;
    if (data.dir === "to-extension") seen.methods.push(data.method);
    const verdict = data.dir === "from-bridge" && ("result" in data || "failure" in data);
    const keys = Object.keys(data).sort();
    if (verdict) seen.verdicts.push({ origin: event.origin, keys, result: data.result ?? null });
  });
  const size = mib << 20;
  const bytes = new Uint8Array(size);
  let x = 2463534242 + mib;
  const words = new Uint32Array(bytes.buffer);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0;
  }
  const hex = await window.webmodelsTest.sha256Hex(bytes);
  const handle = await navigator.crossOriginStorage.requestFileHandle(
    { algorithm: "SHA-256", value: hex }, { create: true });
  const writable = await handle.createWritable();
  await writable.write(new Blob([bytes]));
  const started = performance.now();
  window.__written = writable.close().then(
    async () => {
      const ms = performance.now() - started;
      return { hex, ms, back: await window.webmodelsTest.cosGet(hex), seen };
    },
    (error) => ({ error: String(error), seen }));
  return hex;
}"""


def bridge_writes(store: Path) -> list[str]:
    """The host log's lines for writes a bridge PUT completed (loopback.py)."""
    logs = sorted((store / "logs").glob("host.log*"))
    lines = [line for log in logs for line in log.read_text(errors="replace").splitlines()]
    return [line for line in lines if "loopback write:" in line]


def stored_models(store: Path) -> list[str]:
    host = HostProcess(store)
    try:
        return [m["sha256"] for m in host.result("manage.list")["models"]]
    finally:
        host.close()


def partials(store: Path) -> dict[Path, int]:
    """Upload temp files (store/blobs.py: tmp/<pid>-<uuid>.partial) and their sizes."""
    found = {}
    for path in store.glob("**/tmp/*.partial"):
        try:
            found[path] = path.stat().st_size
        except FileNotFoundError:
            continue
    return found


def kill_host_mid_upload(store: Path, size: int) -> Path:
    """Waits for the host to hold part of the upload, then kills it; the temp file."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        held = {path: n for path, n in partials(store).items() if 0 < n < size}
        if held:
            for pid in host_pids(store):
                os.kill(pid, signal.SIGKILL)  # a host this test's browser started
            return next(iter(held))
        time.sleep(0.005)
    raise AssertionError("the host never held part of the upload")


def test_a_put_cut_mid_write_is_sent_again_through_native_messaging_whole(
    browser: Browser,
) -> None:
    page = browser.open("a")
    page.set_default_timeout(300_000)
    size = MIB << 20
    began = time.monotonic()
    hex_digest = page.evaluate(START, MIB)
    cut = kill_host_mid_upload(browser.store, size)
    killed_pid = int(cut.name.split("-")[0])
    outcome: dict[str, Any] = page.evaluate("() => window.__written")
    print(f"\n{MIB} MiB write, bridge cut, sent again natively: {time.monotonic() - began:.1f} s")

    assert "error" not in outcome, outcome
    assert outcome["hex"] == hex_digest
    # Stored whole and byte-identical (cosGet reads it back and hashes it).
    assert outcome["back"] == {"sha256": hex_digest, "size": size, "isFile": True}
    # Written by a host the native-messaging request started, not the killed one.
    assert killed_pid not in host_pids(browser.store)
    # The page saw what it sees of any bridge write: one request for a write URL, one
    # verdict with the stored model, posted by its own window's relay.
    seen = outcome["seen"]
    assert [m for m in seen["methods"] if m.startswith("cos.write")] == ["cos.write.open"]
    [verdict] = seen["verdicts"]
    assert verdict["origin"] == browser.origin("a")
    assert verdict["keys"] == ["__webmodels", "dir", "result", "ticket"]
    assert verdict["result"]["model"]["sha256"] == hex_digest
    assert "127.0.0.1" not in str(verdict)
    # Nothing of the cut upload is published, or left once the new host has started.
    assert stored_models(browser.store) == [hex_digest]
    # And no bridge PUT ever completed: the bytes came through native messaging.
    assert not [line for line in bridge_writes(browser.store) if f" {size} bytes" in line]
    assert not [p for p in partials(browser.store) if p.name.startswith(f"{killed_pid}-")]
