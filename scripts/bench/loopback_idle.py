"""A page's read through the loopback fast path with and without 500 idle connections
held open against the host's loopback server, side by side in one run: a real host
process, `models.open` over native messaging, then the extension's GET of the one-time
URL (what the bridge frame does for `arrayBuffer()`), alternating rounds, printing the
medians and the ratio (the issue's bound: within 2x). Also prints the host's threads.

Usage: .venv/bin/python scripts/bench/loopback_idle.py [--size-mb 16] [--rounds 7] [--idle 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.host import HostProcess  # noqa: E402
from support.idle import (  # noqa: E402
    loopback_port,
    open_and_read,
    open_idle,
    store_for_page,
    thread_count,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--idle", type=int, default=500)
    args = parser.parse_args()
    size = args.size_mb << 20
    with tempfile.TemporaryDirectory() as tmp:
        host = HostProcess(Path(tmp))
        try:
            digest = store_for_page(host, os.urandom(size))
            port = loopback_port(host, digest)
            open_and_read(host, digest, size)  # warm: the server and the page cache
            times: dict[str, list[float]] = {"unloaded": [], "idle": []}
            threads = {"unloaded": thread_count(host.proc.pid), "idle": 0}
            for n in range(args.rounds):
                for way in ("unloaded", "idle") if n % 2 == 0 else ("idle", "unloaded"):
                    conns = open_idle(port, args.idle) if way == "idle" else []
                    if conns:
                        time.sleep(0.5)  # all accepted
                        threads["idle"] = max(threads["idle"], thread_count(host.proc.pid))
                    times[way].append(open_and_read(host, digest, size))
                    for conn in conns:
                        conn.close()
        finally:
            host.kill()
    median = {way: statistics.median(t) for way, t in times.items()}
    for way, t in median.items():
        print(f"{way:8s} median {t * 1000:8.1f} ms  host threads {threads[way]}")
    print(
        f"with {args.idle} idle connections / without: {median['idle'] / median['unloaded']:.2f}x "
        f"({args.size_mb} MiB, bound 2x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
