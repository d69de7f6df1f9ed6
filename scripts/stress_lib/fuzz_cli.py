"""`scripts/fuzz --inputs N [--target NAME]...`: N inputs in all, shared out among the
targets (or those named; `methods`, the real handlers, only when named);
prints one line per target and exits 1 on any crash, hang or undocumented
error code, with libFuzzer's report (the input that did it is saved as crash-*,
timeout-* or oom-* in the working folder)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from stress_lib.fuzzing import EXTRA_TARGETS, TARGET_NAMES, run_fuzz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs in all")
    parser.add_argument("--target", choices=TARGET_NAMES + EXTRA_TARGETS, action="append")
    parser.add_argument("--jobs", type=int, default=2, help="targets run at once")
    parser.add_argument("--keep", type=Path, help="folder for corpora and crash inputs")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wm-fuzz-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = run_fuzz(args.inputs, work, tuple(args.target or TARGET_NAMES), jobs=args.jobs)
    for row in rows:
        verdict = "FAILED" if row.failed else "ok"
        print(f"fuzz {row.target:<14} {row.inputs:>9} inputs {row.seconds:7.1f} s  {verdict}")
        if row.report:
            print(row.report)
    total = sum(r.inputs for r in rows)
    failed = sum(r.failed for r in rows)
    print(f"fuzz: {total} inputs, {failed} targets failed, {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
