"""`scripts/stress --size short|long [--only PART]`: the fault-injection table
(stress_lib/injection.py), the crash loop (stress_lib/crashes.py), the concurrency
rounds (stress_lib/concurrency.py) and the kills during downloads, gc and a migration
(stress_lib/crash_points.py) and the hostile model corpus (stress_lib/corpus.py); the
faults injected into imports and pulls of models made of several files
(stress_lib/manifest_faults.py: every 4th I/O call in the short run, each in the long);
the same into the segment store with WEBMODELS_STORE_SEGMENTS=1 (stress_lib/segment_faults.py:
imports sharing segments, delete, gc, `store convert`, verify; every 4th call, each in the long);
the cheap kill loop (stress_lib/kill_points.py: forked hosts and commands killed at five
points, 22 kills each in the short run, 250 in the long); the same through the segment
store (stress_lib/kill_segments.py: import sharing a segment, COS write, pull, rm, gc,
`store convert`; 100 kills in the short run, 1,200 in the long); the browser soak
(stress_lib/soak.py: real Chromium, four tabs on three sites, 6 rounds in the short run,
30 minutes in the long, `--minutes` to change it).

short (what CI runs, tests/test_stress_*.py): a 256 KiB model, 110 forked kills, 16
processes for 2 rounds (the exec-based kills and 2 kills each of a download, gc and
a migration run with WEBMODELS_LONG=1); long: a 6 MiB model, so every write of a
multi-chunk file is a fault point, 1,250 forked kills, 1,000 exec-based kills, 16
processes for 50 rounds and 200 kills each of a download, gc and a migration.
Exit status 1 when any injection, kill or round lost or corrupted anything, or a fault
was answered with an unclear error, or SQLite's own error text reached a user.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from stress_lib.concurrency import run_concurrency
from stress_lib.corpus import print_corpus
from stress_lib.corpus_runtime import print_sessions
from stress_lib.crash_points import run_points
from stress_lib.crashes import run_crashes
from stress_lib.injection import run_injection, table
from stress_lib.kill_points import KillFigures, run_kills
from stress_lib.kill_segments import run_segment_kills
from stress_lib.manifest_faults import run_manifest_injection
from stress_lib.segment_faults import run_segment_injection
from stress_lib.soak import run_soak
from stress_lib.soak_report import report

SIZES = {"short": 256 * 1024, "long": 6 * 1024 * 1024}
KILLS = {"short": 20, "long": 1000}
CRASH_MODEL = {"short": 512 * 1024, "long": 4 * 1024 * 1024}
ROUNDS = {"short": 2, "long": 50}
POINT_KILLS = {"short": 2, "long": 200}  # of each kind: downloads, gc, migration
# The cheap kill loop (forked processes): per point, and the size of its models.
FORK_KILLS = {"short": 22, "long": 250}
FORK_MODEL = {"short": 32 * 1024, "long": 512 * 1024}
# The same through the segment store: kills per point, and of COS writes and pulls (a
# host's start, a paced transfer each).
SEG_KILLS = {"short": (22, 6), "long": (200, 200)}
MANIFEST_STRIDE = {"short": 4, "long": 1}  # every Nth I/O call of a set's import failed
# The browser soak: rounds (short) or minutes (long), and a host SIGKILL every K rounds.
SOAK_ROUNDS = {"short": 6, "long": None}
SOAK_MINUTES = {"short": None, "long": 30.0}
SOAK_KILL_EVERY = {"short": 3, "long": 10}
SEGMENT_STRIDE = {"short": 4, "long": 1}  # every Nth I/O call of the segment store failed
PARTS = (
    "injection",
    "manifests",
    "segments",
    "kills",
    "segkills",
    "crashes",
    "concurrency",
    "points",
    "corpus",
    "soak",
)


def injection(size: str) -> int:
    started = time.monotonic()
    rows = run_injection(weight_bytes=SIZES[size])
    print(table(rows))
    total = sum(r.injections for r in rows)
    bad = sum(r.lost + r.corrupted + r.unclear for r in rows)
    print(f"{total} injections, {bad} bad, {time.monotonic() - started:.1f} s ({size})")
    return bad


def crashes(size: str) -> int:
    started = time.monotonic()
    crash = run_crashes(kills=KILLS[size], weight_bytes=CRASH_MODEL[size], window_s=1.5)
    print(
        f"crash loop: {crash.kills} kills, {crash.committed} writes/imports completed, "
        f"{crash.retransferred} bytes re-transferred, {crash.lost} lost, "
        f"{crash.corrupted} corrupted, {time.monotonic() - started:.1f} s"
    )
    if crash.example:
        print(f"    {crash.example}")
    return crash.lost + crash.corrupted


def manifests(size: str) -> int:
    started = time.monotonic()
    rows = run_manifest_injection(weight_bytes=SIZES["short"], stride=MANIFEST_STRIDE[size])
    print(table(rows))
    total = sum(r.injections for r in rows)
    bad = sum(r.lost + r.corrupted + r.unclear for r in rows)
    print(
        f"manifest injections: {total} ({'every' if size == 'long' else 'every 4th'} I/O "
        f"call), {bad} bad, {time.monotonic() - started:.1f} s ({size})"
    )
    return bad


def segments(size: str) -> int:
    started = time.monotonic()
    rows = run_segment_injection(weight_bytes=SIZES["short"], stride=SEGMENT_STRIDE[size])
    print(table(rows))
    total = sum(r.injections for r in rows)
    bad = sum(r.lost + r.corrupted + r.unclear for r in rows)
    print(
        f"segment store injections: {total} "
        f"({'every' if size == 'long' else 'every 4th'} I/O call), {bad} bad, "
        f"{time.monotonic() - started:.1f} s ({size})"
    )
    return bad


def kills(size: str) -> int:
    started = time.monotonic()
    return print_kills(run_kills(FORK_KILLS[size], FORK_MODEL[size]), "kill loop", size, started)


def segkills(size: str) -> int:
    started = time.monotonic()
    per_point, slow = SEG_KILLS[size]
    rows = run_segment_kills(per_point, FORK_MODEL[size], slow_kills=slow)
    return print_kills(rows, "segment kill loop", size, started)


def print_kills(rows: list[KillFigures], title: str, size: str, started: float) -> int:
    for row in rows:
        print(
            f"kills, {row.point}: {row.kills} kills, {row.completed} completed, "
            f"{row.retransferred} bytes re-transferred, {row.checks} checks, "
            f"{len(row.orphaned)} orphaned {'segments' if 'segment' in title else 'blobs'}, "
            f"{row.failed} failed, "
            f"{row.lost} lost, {row.corrupted} corrupted, {row.seconds:.1f} s "
            f"({row.kills / max(row.seconds, 0.001):.1f} kills/s)"
        )
        if row.example:
            print(f"    {row.example}")
    total = sum(r.kills for r in rows)
    bad = sum(r.lost + r.corrupted + r.failed for r in rows)
    print(
        f"{title}: {total} kills, {sum(r.retransferred for r in rows)} bytes re-transferred, "
        f"{sum(r.lost for r in rows)} lost, {sum(r.corrupted for r in rows)} corrupted, "
        f"{time.monotonic() - started:.1f} s ({size})"
    )
    return bad


def concurrency(size: str) -> int:
    started = time.monotonic()
    conc = run_concurrency(processes=16, rounds=ROUNDS[size], weight_bytes=SIZES["short"])
    codes = ", ".join(f"{code} {n}" for code, n in sorted(conc.codes.items())) or "none"
    print(
        f"concurrency: {conc.processes} processes x {conc.rounds} rounds, "
        f"{conc.operations} operations, refusals: {codes}; {len(conc.leaked)} leaked "
        f"errors, {conc.lost} lost, {conc.corrupted} corrupted, "
        f"{time.monotonic() - started:.1f} s"
    )
    if conc.example:
        print(f"    {conc.example}")
    return len(conc.leaked) + conc.lost + conc.corrupted


def points(size: str) -> int:
    bad = 0
    for row in run_points(POINT_KILLS[size], CRASH_MODEL[size]):
        print(
            f"crash points, {row.kind}: {row.kills} kills, {row.completed} completed, "
            f"{row.midway} midway, {row.retransferred} bytes re-transferred, {row.lost} lost, "
            f"{row.corrupted} corrupted, {row.seconds:.1f} s "
            f"({row.kills / max(row.seconds, 0.001):.2f} kills/s)"
        )
        if row.example:
            print(f"    {row.example}")
        bad += row.lost + row.corrupted
    return bad


def soak(size: str, minutes: float | None = None) -> int:
    soaked = run_soak(
        rounds=None if minutes else SOAK_ROUNDS[size],
        minutes=minutes or SOAK_MINUTES[size],
        kill_every=SOAK_KILL_EVERY[size],
        seed=int.from_bytes(os.urandom(4), "big"),
    )
    return report(soaked, f"{size}, {minutes} min" if minutes else size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stress", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="short")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part")
    parser.add_argument("--minutes", type=float, help="the soak runs this long instead")
    args = parser.parse_args(argv)
    parts = {
        "injection": injection,
        "manifests": manifests,
        "segments": segments,
        "kills": kills,
        "segkills": segkills,
        "crashes": crashes,
        "concurrency": concurrency,
        "points": points,
        "corpus": lambda size: print_corpus(size) + print_sessions(size),
        "soak": lambda size: soak(size, args.minutes),
    }
    bad = 0
    for name in args.only or PARTS:
        bad += parts[name](args.size)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
