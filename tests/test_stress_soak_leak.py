"""The browser soak's thread bound (docs/reliability.md, scripts/stress_lib/soak.py
`THREAD_GROWTH_LIMIT`) catches a leak: with SOAK_PLANT_THREAD_LEAK=1 every request a
host dispatches starts a thread that never ends (stress_lib/soak_leak.py), and the
short soak must fail saying the host's threads grew. A second browser soak costs about
as much as the first (tests/test_stress_soak.py), so this runs with
``WEBMODELS_LONG=1``."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from e2e.conftest import require_chromium

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    os.environ.get("WEBMODELS_LONG") != "1", reason="the long run: WEBMODELS_LONG=1"
)
def test_a_thread_leaked_per_request_fails_the_soak() -> None:
    require_chromium()
    run = subprocess.run(
        [str(ROOT / "scripts" / "stress"), "--size", "short", "--only", "soak"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SOAK_PLANT_THREAD_LEAK": "1"},
    )
    print(run.stdout, run.stderr[-2000:])
    assert run.returncode == 1, run.stdout + run.stderr[-3000:]
    grew = re.findall(r"round \d+: host threads grew from (\d+) to (\d+)", run.stdout)
    assert grew and all(int(last) - int(first) > 8 for first, last in grew), run.stdout
