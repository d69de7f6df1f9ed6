"""Running a part of `scripts/stress` the way CI's stress tests do: one subprocess,
its output and wall time printed (`pytest -s` shows the figures), a non-zero exit a
failure that shows what the part printed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_stress(*parts: str, size: str = "short", timeout: float = 300) -> str:
    """Run ``scripts/stress --size SIZE --only PART…``; its stdout once it passed."""
    only = [arg for part in parts for arg in ("--only", part)]
    started = time.monotonic()
    run = subprocess.run(
        [str(ROOT / "scripts" / "stress"), "--size", size, *only],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(run.stdout, run.stderr[-2000:])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    return run.stdout
