"""Reading a stored model into a page: the fast byte path (the extension's bridge
frame fetching the host's one-time 127.0.0.1 URL) against native messaging (1 MiB
frames of base64), side by side in one run in real headless Chromium and Firefox ESR
with the real extension and host, alternating rounds, printing MB/s and the ratio per
browser.

`arrayBuffer()` and `stream()` take the fast path (whole, and chunk by chunk as it
arrives); the native-messaging figure reads the same model with the page's own
`models.read` requests (720 KiB each, 4 in flight, as the API's fallback does), so one
page compares all three on the same model.

Usage: .venv/bin/python scripts/bench/page_read.py [--size-mb 64] [--rounds 5]
       [--browser chromium|firefox|both  (default: both when Firefox ESR is here)]
       [--json PATH (the figures, for scripts/bench/report)]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from page_browsers import CHOICES, Evaluate, chosen, page_in, serve_pages

from support.httpserver import ModelServer

TIMED = (
    "async (sha) => { const t = performance.now(); const m = await webmodels.load("
    "{sha256: sha}); const b = await %s; return [b.byteLength, performance.now() - t]; }"
)
# The API's native-messaging fallback, spelt out (the API takes it only when the bridge
# is not there): `models.read` through the relay, 4 requests in flight.
NATIVE = """(async () => {
  const size = m.info.size, step = 720 * 1024, parts = [];
  const read = (offset) => window.webmodelsTest.raw({ id: `read-${offset}`, method: "models.read",
    params: { sha256: m.info.sha256, offset, length: Math.min(step, size - offset) } }, 600000);
  const queue = [];
  for (let offset = 0; offset < size || queue.length > 0;) {
    while (queue.length < 4 && offset < size) { queue.push(read(offset)); offset += step; }
    const reply = await queue.shift();
    if (Uint8Array.fromBase64) { parts.push(Uint8Array.fromBase64(reply.result.data)); continue; }
    const text = atob(reply.result.data), bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    parts.push(bytes);
  }
  return new Blob(parts).arrayBuffer();
})()"""
READ = {
    "bridge": TIMED % "m.arrayBuffer()",
    "stream": TIMED % "new Response(m.stream()).arrayBuffer()",
    "native": TIMED % NATIVE,
}


Times = dict[str, list[float]]  # seconds per way, every round


def measure(evaluate: Evaluate, query: dict[str, str], data: bytes, rounds: int) -> Times:
    """Every way in alternating order, `rounds` times, on the model `query` names."""
    evaluate("(q) => webmodels.load(q)", query)  # stored for this site
    sha = hashlib.sha256(data).hexdigest()
    times: Times = {way: [] for way in READ}
    for n in range(rounds):
        for way in list(READ) if n % 2 == 0 else reversed(READ):
            size, ms = evaluate(READ[way], sha)
            assert size == len(data), (way, size)
            times[way].append(ms / 1000)
    return times


def as_json(results: dict[str, Times], mib: int, rounds: int) -> dict[str, Any]:
    """Every round's seconds per browser and way, for scripts/bench/report."""
    rows = [
        {"browser": browser, "mib": mib, "bytes": mib << 20, "seconds": times}
        for browser, times in results.items()
    ]
    return {"bench": "page_read", "browsers": list(results), "rounds": rounds, "sizes": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--browser", choices=CHOICES, help="default: both when Firefox is here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    data = os.urandom(args.size_mb << 20)
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    results: dict[str, Times] = {}
    for browser in chosen(args.browser):
        with tempfile.TemporaryDirectory() as tmp, ModelServer() as pages, ModelServer() as models:
            serve_pages(pages)
            query = {"url": models.add("/model.bin", data), "integrity": integrity}
            with page_in(browser, Path(tmp), pages) as evaluate:
                results[browser] = measure(evaluate, query, data, args.rounds)
        mb = len(data) / 1e6
        speed = {way: mb / statistics.median(t) for way, t in results[browser].items()}
        for way, t in results[browser].items():
            median_ms = statistics.median(t) * 1000
            print(f"{browser:8s} {way:7s} median {median_ms:7.0f} ms  {speed[way]:7.1f} MB/s")
        for way in ("bridge", "stream"):
            ratio = speed[way] / speed["native"]
            print(f"{browser:8s} {way} / native messaging: {ratio:.1f}x ({args.size_mb} MiB)")
    if args.json:
        args.json.write_text(
            json.dumps(as_json(results, args.size_mb, args.rounds), indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
