"""`scripts/stress --size short|long`: the fault-injection table (stress_lib/injection.py).

short: a 256 KiB model (what CI runs, tests/test_stress_short.py); long: a 6 MiB one,
so every write of a multi-chunk file is a fault point. Exit status 1 when any
injection left the store lost, corrupted or answered with an unclear error.
"""

from __future__ import annotations

import argparse
import sys
import time

from stress_lib.injection import run_injection, table

SIZES = {"short": 256 * 1024, "long": 6 * 1024 * 1024}


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
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
