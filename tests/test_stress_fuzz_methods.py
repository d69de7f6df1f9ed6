"""Fuzzing the real method handlers (docs/reliability.md, scripts/stress_lib/fuzz_methods.py):
atheris, coverage-guided, 4,000 inputs, each one request with generated parameters to
a page-facing method (`cos.*`, `models.*`, `sessions.*`) of a real host built in the
fuzzing process, from site a or site b. Each request must get exactly one reply, every
error a documented code with its fixed text and page-safe details, no `internal`
error, no hang; and no reply to a page may hold a path, a hash the page did not send,
or the other site's data (a request naming only the other partition's model gets the
reply of a hash nobody holds)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fuzzed_requests_to_the_real_handlers_get_one_clean_private_reply() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [str(ROOT / "scripts" / "fuzz"), "--target", "methods", "--inputs", "4000"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout[-6000:], run.stderr[-2000:])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"fuzz methods +4000 inputs .* ok", run.stdout), run.stdout
    assert "fuzz: 4000 inputs, 0 targets failed" in run.stdout
