"""The short run of `scripts/stress` (docs/reliability.md): every I/O call of the
store's operations (import, COS write, download publish, delete, gc, index writes,
first open with its migrations) failed in turn with EIO and with ENOSPC; after each,
a clear error, an intact index, every indexed blob re-hashing, and nothing unindexed
or left in tmp/ after the next start. Then the kill loop: at least 100 SIGKILLs of
hosts and CLI commands forked from the harness (a restart costs a fork, not an
interpreter start) during COS writes, imports, downloads, gc and a migration, with the
same checks every 10 kills and after the last, and every write or import answered as
done still there."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["--only", "injection", "--only", "kills"]
POINTS = {"COS write", "import", "download", "gc", "migration"}


def test_no_injected_fault_loses_or_corrupts_anything() -> None:
    started = time.monotonic()
    run = subprocess.run(
        # The other parts have their own tests (tests/test_stress_*.py).
        [str(ROOT / "scripts" / "stress"), "--size", "short", *PARTS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(run.stdout, run.stderr[-2000:])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert " 0 bad" in run.stdout
    # Every operation was reached by faults of both kinds.
    rows = [line.split() for line in run.stdout.splitlines() if line[:1].isalpha()]
    injected = {(r[0], r[1]): int(r[2]) for r in rows if len(r) == 6 and r[2].isdigit()}
    assert len(injected) == 14 and all(n > 0 for n in injected.values()), injected
    points = re.findall(r"kills, ([\w ]+): (\d+) kills, .* (\d+) lost, (\d+) corrupted", run.stdout)
    assert {p[0] for p in points} == POINTS, run.stdout
    assert all(int(kills) >= 20 and lost == bad == "0" for _, kills, lost, bad in points)
    total = re.search(
        r"kill loop: (\d+) kills, \d+ bytes re-transferred, 0 lost, 0 corrupted", run.stdout
    )
    assert total and int(total.group(1)) >= 100, run.stdout
