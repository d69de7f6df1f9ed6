"""`webmodels jobs` after the pulling process was killed with SIGKILL: the job is shown
as interrupted, not as running."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.host import run_cli, webmodels_env
from support.httpserver import Fault, ModelServer


def jobs(home: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(run_cli(home, "--json", "jobs").stdout)
    return found


def test_a_killed_pull_is_shown_as_interrupted_and_will_resume(
    home: Path, model_server: ModelServer
) -> None:
    started = time.monotonic()
    data = os.urandom(4 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=256 << 10))  # ~16 s for the file
    sha = hashlib.sha256(data).hexdigest()
    pull = subprocess.Popen(
        [sys.executable, "-m", "webmodels", "pull", url, "--sha256", sha],
        env=webmodels_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(j["running"] and j["loaded"] > 0 for j in jobs(home)):
            assert pull.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        pull.kill()  # SIGKILL: no clean-up of its lease
        pull.wait()

    table = run_cli(home, "jobs").stdout
    assert "interrupted (will resume)" in table and "running" not in table
    [job] = jobs(home)
    assert job["state"] == "active"
    assert (job["running"], job["interrupted"]) == (False, True)
    print(f"wall time {time.monotonic() - started:.1f} s")
