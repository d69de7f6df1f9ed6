"""The crash points of `scripts/stress --size short` beyond COS writes and imports
(docs/reliability.md): SIGKILL of `webmodels pull` during a transfer from a loopback
HTTP server, of `webmodels gc` while it collects, and of a host migrating a store of
the first schema version; after each, the next start's full check, and at the end
every model a killed pull left arrives on the next try with nothing left in tmp/.

Each kill here is of a process started from scratch (an interpreter start, about 0.5 s
of waiting per kill): CI's kills of these points are the forked ones of
tests/test_stress_short.py (`--only kills`), so this runs with ``WEBMODELS_LONG=1``."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    os.environ.get("WEBMODELS_LONG") != "1", reason="the long run: WEBMODELS_LONG=1"
)
def test_kills_during_downloads_gc_and_migration_lose_nothing() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [str(ROOT / "scripts" / "stress"), "--size", "short", "--only", "points"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout, run.stderr[-2000:])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    rows = re.findall(r"crash points, (\w+): (\d+) kills.* (\d+) lost, (\d+) corrupted", run.stdout)
    assert {r[0] for r in rows} == {"download", "gc", "migration"}, run.stdout
    assert all(int(kills) >= 2 and lost == corrupted == "0" for _, kills, lost, corrupted in rows)
