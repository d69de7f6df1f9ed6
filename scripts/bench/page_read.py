"""Reading a stored model into a page: the fast byte path (the extension's bridge
frame fetching the host's one-time 127.0.0.1 URL) against native messaging (1 MiB
frames of base64), side by side in one run in real headless Chromium with the real
extension and host, alternating rounds, printing MB/s and the ratio.

`arrayBuffer()` takes the fast path; `stream()` always reads through native messaging,
so one page compares both on the same model.

Usage: .venv/bin/python scripts/bench/page_read.py [--size-mb 64] [--rounds 5]
       [--json PATH (the figures, for scripts/bench/report)]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.conftest import launch_chromium, require_chromium  # noqa: E402
from e2e.test_page_api import CONTENT_TYPES, EXTENSION, PAGES, site_args  # noqa: E402
from support.httpserver import ModelServer  # noqa: E402

TIMED = (
    "async (sha) => { const t = performance.now(); const m = await webmodels.load("
    "{sha256: sha}); const b = await %s; return [b.byteLength, performance.now() - t]; }"
)
READ = {
    "bridge": TIMED % "m.arrayBuffer()",
    "native": TIMED % "new Response(m.stream()).arrayBuffer()",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    require_chromium()
    from playwright.sync_api import sync_playwright

    data = os.urandom(args.size_mb << 20)
    digest = hashlib.sha256(data)
    with tempfile.TemporaryDirectory() as tmp, ModelServer() as pages, ModelServer() as models:
        work = Path(tmp)
        for file in sorted(PAGES.rglob("*")):
            if file.is_file():
                kind = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
                pages.add(file.relative_to(PAGES).as_posix(), file.read_bytes(), content_type=kind)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
        env |= {"HOME": str(work), "XDG_CONFIG_HOME": str(work / "xdg")}
        profile, store = work / "profile", work / "store"
        install = [sys.executable, "-m", "webmodels", "--store", str(store), "install"]
        install += ["--browser", "chromium", "--user-data-dir", str(profile)]
        subprocess.run(install, env=env, check=True, capture_output=True)
        query = {
            "url": models.add("/model.bin", data),
            "integrity": "sha256-" + base64.b64encode(digest.digest()).decode(),
        }
        with sync_playwright() as driver:
            context = launch_chromium(
                driver,
                user_data_dir=profile,
                config_home=work / "xdg",
                extension_dir=EXTENSION,
                extra_args=site_args(pages.port),
            )
            page = context.new_page()
            page.set_default_timeout(600_000)
            page.goto(f"http://a.localhost:{pages.port}/index.html")  # a loopback origin
            page.wait_for_function("() => window.webmodels")
            page.evaluate("(q) => webmodels.load(q)", query)  # stored for this site
            times: dict[str, list[float]] = {"bridge": [], "native": []}
            for n in range(args.rounds):
                for way in ("bridge", "native") if n % 2 == 0 else ("native", "bridge"):
                    size, ms = page.evaluate(READ[way], digest.hexdigest())
                    assert size == len(data), (way, size)
                    times[way].append(ms / 1000)
            context.close()
    mb = len(data) / 1e6
    speed = {way: mb / statistics.median(t) for way, t in times.items()}
    for way, t in times.items():
        print(f"{way:7s} median {statistics.median(t) * 1000:7.0f} ms  {speed[way]:7.1f} MB/s")
    print(
        f"bridge / native messaging: {speed['bridge'] / speed['native']:.1f}x ({args.size_mb} MiB)"
    )
    if args.json:  # every round's seconds per way, for scripts/bench/report
        found = {"bench": "page_read", "browser": "chromium", "rounds": args.rounds}
        found |= {"mib": args.size_mb, "bytes": len(data), "seconds": times}
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
