"""The CI size of `scripts/fuzz` (docs/reliability.md): every fuzz target (frame
decoder, request envelope and dispatch, catalog and commons documents, the ONNX
metadata readers, the worker's safety check) run under atheris, coverage-guided, for
2,000 inputs each (12,000 in all): no crash, no input over the per-input time bound,
every rejection a documented error code."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fuzzed_parsers_only_reject_with_documented_codes() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [str(ROOT / "scripts" / "fuzz"), "--inputs", "10000"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout[-6000:], run.stderr[-2000:])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "fuzz: 10000 inputs, 0 targets failed" in run.stdout
