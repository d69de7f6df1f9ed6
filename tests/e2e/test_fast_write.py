"""The fast write path in real Chromium: a Cross-Origin Storage write
(`createWritable()` → `write()` → `close()`) goes as one Blob through the extension's
bridge frame to the host's one-time loopback upload URL, and `close()` resolves once
the host verified and stored the bytes; the page never sees the URL."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from e2e.test_page_api import Browser, shared_browser

pytestmark = pytest.mark.e2e
__all__ = ["shared_browser"]  # a fixture shared with test_page_api

# In the page: `mib` MiB of pseudo-random bytes in `parts` write() calls, stored through
# COS; the time close() took, the SHA-256 written, the SHA-256 read back, and what the
# bridge answered the page (a write's verdict carries `result`).
WRITE = """async ([mib, parts]) => {
  const TAG = "__webmodels";
  const verdicts = [];
  window.addEventListener("message", (event) => {
    const data = event.data;
    const verdict = data?.[TAG] === 1 && data.dir === "from-bridge";
    if (verdict && ("result" in data || "failure" in data)) {
      verdicts.push({ origin: event.origin, result: data.result ?? null });
    }
  });
  const size = mib << 20;
  const bytes = new Uint8Array(size);
  let x = 2463534242;
  const words = new Uint32Array(bytes.buffer);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0;
  }
  const hex = await window.webmodelsTest.sha256Hex(bytes);
  const handle = await navigator.crossOriginStorage.requestFileHandle(
    { algorithm: "SHA-256", value: hex }, { create: true });
  const writable = await handle.createWritable();
  const step = Math.ceil(size / parts);
  const started = performance.now();
  for (let at = 0; at < size; at += step) {
    await writable.write(new Blob([bytes.subarray(at, at + step)]));
  }
  await writable.close();
  const ms = performance.now() - started;
  const back = await window.webmodelsTest.cosGet(hex);
  return { hex, ms, back, verdicts };
}"""


def write(page: Page, mib: int, parts: int) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(WRITE, [mib, parts])
    return result


def through_bridge(result: dict[str, Any], origin: str, size: int) -> None:
    [verdict] = result["verdicts"]
    assert verdict["origin"] == origin
    assert verdict["result"]["model"]["sha256"] == result["hex"]
    assert verdict["result"]["model"]["size"] == size
    assert "127.0.0.1" not in str(verdict)


def test_a_200_mib_write_goes_through_the_bridge_byte_identical(shared_browser: Browser) -> None:
    page = shared_browser.open("a")
    page.set_default_timeout(300_000)
    result = write(page, 200, 1)
    assert result["back"] == {"sha256": result["hex"], "size": 200 << 20, "isFile": True}
    through_bridge(result, shared_browser.origin("a"), 200 << 20)
    print(f"\n200 MiB COS write through the bridge: {200 / (result['ms'] / 1000):.0f} MiB/s")


def test_a_thousand_small_writes_are_stored_whole(shared_browser: Browser) -> None:
    page = shared_browser.open("a")
    page.set_default_timeout(300_000)
    result = write(page, 16, 1000)
    assert result["back"] == {"sha256": result["hex"], "size": 16 << 20, "isFile": True}
    through_bridge(result, shared_browser.origin("a"), 16 << 20)


def test_a_page_whose_csp_forbids_frames_still_writes_through_the_bridge(
    shared_browser: Browser,
) -> None:
    """Chromium exempts the extension's web-accessible bridge from `frame-src 'none'`
    (as for reads, test_fast_path.py); where a bridge cannot start, the write goes
    through native messaging (cos.js `fastUpload` answers null)."""
    page = shared_browser.open("a", "no-frames.html")
    result = write(page, 8, 3)
    assert result["back"] == {"sha256": result["hex"], "size": 8 << 20, "isFile": True}
    through_bridge(result, shared_browser.origin("a"), 8 << 20)
