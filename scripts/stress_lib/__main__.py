"""`scripts/stress --size short|long`: the fault-injection table (stress_lib/injection.py)
and the crash loop (stress_lib/crashes.py).

short (what CI runs, tests/test_stress_short.py): a 256 KiB model, 20 kills; long: a
6 MiB model, so every write of a multi-chunk file is a fault point, and 1,000 kills.
Exit status 1 when any injection or kill lost or corrupted anything, or a fault was
answered with an unclear error.
"""

from __future__ import annotations

import argparse
import sys
import time

from stress_lib.crashes import run_crashes
from stress_lib.injection import run_injection, table

SIZES = {"short": 256 * 1024, "long": 6 * 1024 * 1024}
KILLS = {"short": 20, "long": 1000}
CRASH_MODEL = {"short": 512 * 1024, "long": 4 * 1024 * 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stress", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="short")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = run_injection(weight_bytes=SIZES[args.size])
    print(table(rows))
    total = sum(r.injections for r in rows)
    bad = sum(r.lost + r.corrupted + r.unclear for r in rows)
    print(f"{total} injections, {bad} bad, {time.monotonic() - started:.1f} s ({args.size})")
    started = time.monotonic()
    crash = run_crashes(kills=KILLS[args.size], weight_bytes=CRASH_MODEL[args.size], window_s=1.5)
    print(
        f"crash loop: {crash.kills} kills, {crash.committed} writes/imports completed, "
        f"{crash.retransferred} bytes re-transferred, {crash.lost} lost, "
        f"{crash.corrupted} corrupted, {time.monotonic() - started:.1f} s"
    )
    if crash.example:
        print(f"    {crash.example}")
    return 1 if bad or crash.lost or crash.corrupted else 0


if __name__ == "__main__":
    sys.exit(main())
