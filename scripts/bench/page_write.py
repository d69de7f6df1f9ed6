"""Storing a model from a page (a Cross-Origin Storage write: `createWritable()` →
`write(blob)` → `close()`): the fast write path (the extension's bridge frame PUTs the
Blob to the host's one-time 127.0.0.1 upload URL) against native messaging (chunks
of base64: `cos.write.begin`/`chunk`/`commit`, 16 MiB with 3 in flight): "native" as
the service worker sends a Blob whose PUT failed (background/native-write.js: one JSON
hop, service worker -> host; in Firefox, which has no service worker, as the relay
does: the Blob by reference to the background, which sends it in 512 KiB chunks, 3 in
flight), "native-relay" as the relay does where ports carry no Blobs (Chromium; content/
relay.js: page -> background -> host, 16 MiB chunks, 3 in flight),
and "native-1" as 2017abe did (8 MiB, one at a time, from the page) — side by side in
one run in real headless Chromium and Firefox ESR with the real extension and host,
alternating rounds, printing MB/s and the ratios per browser and size. Chromium's
service-worker loop runs on a native port of its own (a second host on the same store).

Usage: .venv/bin/python scripts/bench/page_write.py [--sizes-mb 64 200] [--rounds 3]
       [--browser chromium|firefox|both  (default: both when Firefox ESR is here)]
       [--json PATH (the figures, for scripts/bench/report)]
       [--sweep (native messaging only: MiB per chunk 1/4-16 x chunks in flight 1-3,
                 the page's loop and, in Firefox, the relay's whole-Blob request;
                 the first size, alternating)]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from page_browsers import CHOICES, Evaluate, chosen, page_in, serve_pages

from support.httpserver import ModelServer

# Pseudo-random bytes made in the page, as a Blob (as a library has after fetch), and
# their SHA-256 (not timed).
PREPARE = """async (mib) => {
  const bytes = new Uint8Array(mib << 20);
  const words = new Uint32Array(bytes.buffer);
  let x = 2463534242 + mib;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0;
  }
  window.__blob = new Blob([bytes]); // one Blob per size: Chromium's blob storage is bounded
  return await window.webmodelsTest.sha256Hex(bytes);
}"""
BRIDGE = """async (hex) => {
  const t = performance.now();
  const handle = await navigator.crossOriginStorage.requestFileHandle(
    { algorithm: "SHA-256", value: hex }, { create: true });
  const writable = await handle.createWritable();
  await writable.write(window.__blob);
  await writable.close();
  return performance.now() - t;
}"""
NATIVE = """async ([hex, depth, chunkKib]) => {
  // The relay's messages, as content/relay.js sends them when the bridge cannot.
  const call = async (method, params) => {
    const id = `bench-${Math.random()}`;
    const reply = await window.webmodelsTest.raw({ id, method, params }, 600000);
    if (!reply.ok) throw new Error(JSON.stringify(reply));
    return reply.result;
  };
  const base64 = (bytes) => {
    if (typeof bytes.toBase64 === "function") return bytes.toBase64();
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const CHUNK = chunkKib << 10;
  const t = performance.now();
  const blob = window.__blob;
  const { upload_id } = await call("cos.write.begin", { sha256: hex, size: blob.size });
  const inFlight = [];
  for (let offset = 0; offset < blob.size; offset += CHUNK) {
    const bytes = new Uint8Array(await blob.slice(offset, offset + CHUNK).arrayBuffer());
    inFlight.push(call("cos.write.chunk", { upload_id, offset, data: base64(bytes) }));
    if (inFlight.length >= depth) await inFlight.shift();
  }
  for (const sent of inFlight) await sent;
  await call("cos.write.commit", { upload_id });
  return performance.now() - t;
}"""

# The relay's fallback where runtime ports carry Blobs (Firefox): the Blob, by
# reference, in one request; the service worker sends the chunks (channel.js).
BLOB = """async ([hex, depth, chunkKib]) => {
  const t = performance.now();
  const params = { sha256: hex, blob: window.__blob, chunk_kib: chunkKib, in_flight: depth };
  const id = `bench-${Math.random()}`;
  const reply = await window.webmodelsTest.raw({ id, method: "cos.write.blob", params }, 600000);
  if (!reply.ok) throw new Error(JSON.stringify(reply));
  return performance.now() - t;
}"""

# The same bytes in the service worker, as the bridge hands them over (not timed).
SW_PREPARE = """async ([mib, port]) => {
  const bytes = new Uint8Array(mib << 20);
  const words = new Uint32Array(bytes.buffer);
  let x = 2463534242 + mib;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0;
  }
  self.__blob = new Blob([bytes]);
  const origin = `http://a.localhost:${port}`;
  const partition = { top_site: origin, origin };
  self.__context = { partition, user_activation: false, trusted: false };
  if (!self.__port) {
    self.__port = chrome.runtime.connectNative("org.webmodels.host");
    self.__waiters = new Map();
    self.__port.onMessage.addListener((m) => self.__waiters.get(m.id)?.(m));
    // The host started: not timed (the service worker's port is open before a write).
    await new Promise((resolve) => {
      self.__waiters.set("warm", resolve);
      self.__port.postMessage({ id: "warm", method: "hello", params: {}, context: self.__context });
    });
  }
}"""
SW_NATIVE = """async ([hex, depth, chunkKib]) => {
  let n = 0;
  const call = (method, params) => new Promise((resolve, reject) => {
    const id = `bench-${++n}-${Math.random()}`;
    self.__waiters.set(id, (m) => {
      self.__waiters.delete(id);
      m.ok ? resolve(m.result) : reject(new Error(JSON.stringify(m)));
    });
    self.__port.postMessage({ id, method, params, context: self.__context });
  });
  const CHUNK = chunkMib << 20;
  const t = performance.now();
  const blob = self.__blob;
  const { upload_id } = await call("cos.write.begin", { sha256: hex, size: blob.size });
  const inFlight = [];
  for (let offset = 0; offset < blob.size; offset += CHUNK) {
    const bytes = new Uint8Array(await blob.slice(offset, offset + CHUNK).arrayBuffer());
    inFlight.push(call("cos.write.chunk", { upload_id, offset, data: bytes.toBase64() }));
    if (inFlight.length >= depth) await inFlight.shift();
  }
  for (const sent of inFlight) await sent;
  await call("cos.write.commit", { upload_id });
  return performance.now() - t;
}"""

# (chunks in flight, MiB per chunk) through native messaging: the service worker's
# fallback, the relay's, and 2017abe's loop (one 8 MiB chunk at a time).
WAYS = {"bridge": (0, 0), "native": (3, 16), "native-relay": (3, 16), "native-1": (1, 8)}
KIB = 1024  # the page's loop takes KiB per chunk; WAYS give MiB
# --sweep: KiB per chunk x chunks in flight, the page's own loop ("page": chunks from
# the page's world, as before the Blob went to the service worker) and the relay's
# whole-Blob request ("blob"; Firefox only).
SWEEP_CHUNKS, SWEEP_DEPTHS = (256, 512, 1024, 2048, 4096, 8192, 16384), (1, 2, 3)  # KiB
SWEEP = [(way, c, d) for way in ("page", "blob") for c in SWEEP_CHUNKS for d in SWEEP_DEPTHS]
Setting = tuple[str, int, int]


Times = dict[str, list[float]]  # seconds per way, every round


def as_json(results: dict[str, dict[int, Times]], rounds: int) -> dict[str, Any]:
    """Every round's seconds per browser, size and way, for scripts/bench/report."""
    sizes = [
        {"browser": browser, "mib": mib, "bytes": mib << 20, "seconds": times}
        for browser, by_size in results.items()
        for mib, times in by_size.items()
    ]
    return {"bench": "page_write", "browsers": list(results), "rounds": rounds, "sizes": sizes}


def measure(evaluate: Evaluate, sizes_mb: list[int], rounds: int, port: int) -> dict[int, Times]:
    """Each way in alternating order, `rounds` times per size."""
    results: dict[int, Times] = {}
    worker: Evaluate | None = getattr(evaluate, "worker", None)  # Chromium's service worker
    for mib in sizes_mb:
        hex_digest = evaluate(PREPARE, mib)
        if worker is not None:
            worker(SW_PREPARE, [mib, port])
        times: Times = {way: [] for way in WAYS}
        for n in range(rounds):
            for way in list(WAYS)[:: 1 if n % 2 == 0 else -1]:
                if way == "bridge":
                    ms = evaluate(BRIDGE, hex_digest)
                elif way == "native" and worker is not None:
                    ms = worker(SW_NATIVE, [hex_digest, *WAYS[way]])
                elif way == "native":  # Firefox: the relay's whole-Blob request, its defaults
                    ms = evaluate(BLOB, [hex_digest, None, None])
                else:
                    depth, chunk_mib = WAYS[way]
                    ms = evaluate(NATIVE, [hex_digest, depth, chunk_mib * KIB])
                times[way].append(ms / 1000)
        results[mib] = times
    return results


def sweep(evaluate: Evaluate, mib: int, rounds: int, blob: bool) -> dict[Setting, list[float]]:
    """Native messaging, every setting of SWEEP in alternating order, `rounds` times:
    seconds per setting."""
    hex_digest = evaluate(PREPARE, mib)
    settings = [s for s in SWEEP if blob or s[0] == "page"]
    times: dict[Setting, list[float]] = {s: [] for s in settings}
    for n in range(rounds):
        for way, chunk, depth in settings[:: 1 if n % 2 == 0 else -1]:
            ms = evaluate(NATIVE if way == "page" else BLOB, [hex_digest, depth, chunk])
            times[(way, chunk, depth)].append(ms / 1000)
    return times


def report_sweep(browser: str, mib: int, times: dict[Setting, list[float]]) -> None:
    mb = (mib << 20) / 1e6
    base = mb / statistics.median(times[("page", 8192, 1)])
    print(f"{browser}: {mib} MiB through native messaging, MB/s (x of the page's 8 MiB x 1)")
    print("way   chunk KiB | " + " | ".join(f"{d} in flight   " for d in SWEEP_DEPTHS))
    for way in dict.fromkeys(s[0] for s in times):
        for chunk in SWEEP_CHUNKS:
            speeds = [mb / statistics.median(times[(way, chunk, d)]) for d in SWEEP_DEPTHS]
            cells = " | ".join(f"{v:5.1f} ({v / base:4.2f}x)" for v in speeds)
            print(f"{way:5s} {chunk:9d} | {cells}")


def report(browser: str, results: dict[int, Times]) -> None:
    for mib, times in results.items():
        mb = (mib << 20) / 1e6
        speed = {way: mb / statistics.median(t) for way, t in times.items()}
        for way, t in times.items():
            median_ms = statistics.median(t) * 1000
            print(
                f"{browser:8s} {mib:4d} MiB {way:12s} median {median_ms:7.0f} ms  "
                f"{speed[way]:7.1f} MB/s"
            )
        ratio = speed["bridge"] / speed["native"]
        print(f"{browser:8s} {mib:4d} MiB bridge / native messaging: {ratio:.1f}x")
        for way in ("native", "native-relay"):
            ratio = speed[way] / speed["native-1"]
            print(f"{browser:8s} {mib:4d} MiB {way} / 8 MiB one at a time (2017abe): {ratio:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[64, 200])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--browser", choices=CHOICES, help="default: both when Firefox is here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--sweep", action="store_true", help="native messaging only: chunk size x in flight"
    )
    args = parser.parse_args()
    results: dict[str, dict[int, Times]] = {}
    for browser in chosen(args.browser):
        with tempfile.TemporaryDirectory() as tmp, ModelServer() as pages:
            serve_pages(pages)
            with page_in(browser, Path(tmp), pages) as evaluate:
                if args.sweep:
                    mib = args.sizes_mb[0]
                    times = sweep(evaluate, mib, args.rounds, browser == "firefox")
                    report_sweep(browser, mib, times)
                    continue
                results[browser] = measure(evaluate, args.sizes_mb, args.rounds, pages.port)
        report(browser, results[browser])
    if args.json:
        args.json.write_text(json.dumps(as_json(results, args.rounds), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
