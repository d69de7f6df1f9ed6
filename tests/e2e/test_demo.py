"""`scripts/demo`, the README's first command, works end to end: a real model through
a page, the extension, the host and the popup, with screenshots; and again on a
second run, leaving no temporary profile or store behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.png import distinct_colours

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 300


def run_demo(command: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S
    )
    assert done.returncode == 0, (
        f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    return done


def assert_screenshot(path: Path) -> None:
    assert path.is_file(), f"{path} is missing"
    colours = distinct_colours(path)
    assert colours > 50, f"{path} looks blank ({colours} colours)"


def sandbox(log: str) -> Path:
    """The temporary folder the demo says it used (its store is inside)."""
    found = re.search(r"^\s+store (\S+)/store$", log, re.MULTILINE)
    assert found, log
    return Path(found.group(1))


@pytest.mark.usefixtures("playwright_session")  # skips (or in CI fails) without Chromium
def test_demo_runs_end_to_end_twice(tmp_path: Path) -> None:
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()

    first = run_demo([str(ROOT / "scripts" / "demo"), "--out", str(out)], cwd=cwd)

    log = first.stdout
    assert "magika" in log
    assert "progress" in log and "100%" in log, log
    assert "SHA-256 matches" in log, log
    assert "the popup" in log and "saved" in log, log
    assert "all checks passed" in log, log
    assert "already stored by another site (common model) — no download" in log, log
    for name in ("page.png", "popup.png"):
        assert_screenshot(out / name)
        assert str(out / name) in log
    assert not sandbox(log).exists(), "the demo left its temporary profile/store behind"

    # Again, straight through the venv's Python, without the throttle.
    demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out)]
    second = run_demo([*demo, "--rate-mbps", "0"], cwd=cwd)
    assert "all checks passed" in second.stdout, second.stdout
    assert not sandbox(second.stdout).exists()
