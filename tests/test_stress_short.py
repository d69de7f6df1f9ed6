"""The short run of `scripts/stress` (docs/reliability.md): every I/O call of the
store's operations (import, COS write, download publish, delete, gc, index writes,
first open with its migrations) failed in turn with EIO and with ENOSPC; after each,
a clear error, an intact index, every indexed blob re-hashing, and nothing unindexed
or left in tmp/ after the next start. Then 20 SIGKILLs of a real host taking COS
writes and of the CLI importing, each followed by the same checks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["--only", "injection", "--only", "crashes"]


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
    assert "crash loop: 20 kills" in run.stdout and ", 0 lost, 0 corrupted" in run.stdout
