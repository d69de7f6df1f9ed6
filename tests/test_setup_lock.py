"""`scripts/setup`'s browser step when another process holds the dpkg lock: it waits
(bounded, and says so), then goes on without the optional Firefox and says why —
the demo, which needs only Chromium, is never stopped by it.

The real dpkg lock of this machine is never touched and apt-get never runs: the script
is pointed at a lock file of the test's own (`WEBMODELS_DPKG_LOCK`), held with the
same fcntl lock dpkg takes, and `apt-get` is a stand-in on PATH that only records how
it was called (installing packages cannot happen in a test). Firefox is hidden by a
PATH that holds every other command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "setup-browsers"
HOLDER = """
import fcntl, sys, time
with open(sys.argv[1], "w") as lock:
    fcntl.lockf(lock, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""
FAKE_APT = """#!/bin/sh
echo "$@" >> "$APT_CALLS"
[ "$2" = "install" ] || [ "$3" = "install" ] || exit 0
exit "${APT_EXIT:-0}"
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or sys.platform != "linux", reason="the apt step runs only as root"
)


@pytest.fixture
def path_without_firefox(tmp_path: Path) -> Path:
    """A bin folder with every command on PATH but Firefox, and a recording apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if entry.name.startswith("firefox") or target.exists() or target.is_symlink():
                continue
            target.symlink_to(entry.path)
    (bin_dir / "apt-get").unlink(missing_ok=True)
    (bin_dir / "apt-get").write_text(FAKE_APT)
    (bin_dir / "apt-get").chmod(0o755)
    if not (bin_dir / "chromium").exists():
        (bin_dir / "chromium").symlink_to("/bin/true")  # the demo's browser is present
    return bin_dir


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    path = tmp_path / "lock-frontend"
    path.touch()
    return path


def hold(lock: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the lock, as dpkg would, for `seconds`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@dataclass(frozen=True)
class Setup:
    calls: Path  # what the stand-in apt-get was asked, one call a line
    run: Callable[..., subprocess.CompletedProcess[str]]
    start: Callable[..., subprocess.Popen[str]]

    def apt_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def setup(path_without_firefox: Path, lock_file: Path, tmp_path: Path) -> Setup:
    calls = tmp_path / "apt-calls"

    def environment(wait_s: float, **env: str) -> dict[str, str]:
        environment = {
            **os.environ,
            "PATH": str(path_without_firefox),
            "WEBMODELS_DPKG_LOCK": str(lock_file),
            "WEBMODELS_APT_WAIT_S": str(wait_s),
            "APT_CALLS": str(calls),
            **env,
        }
        environment.pop("WEBMODELS_SKIP_BROWSER", None)
        return environment

    def run(wait_s: float, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT)],
            env=environment(wait_s, **env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(wait_s: float) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(SCRIPT)],
            env=environment(wait_s),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return Setup(calls, run, start)


def test_lock_held_throughout_waits_then_skips_firefox(setup: Setup, lock_file: Path) -> None:
    holder = hold(lock_file, 60)
    try:
        started = time.monotonic()
        done = setup.run(2)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    print(f"waited {took:.1f} s for a lock held throughout (bound 2 s)")
    assert done.returncode == 0, done.stderr
    assert "waiting up to 2 s" in done.stderr
    assert "skipped Firefox: another process still holds the dpkg lock" in done.stderr
    assert took >= 2  # it did wait for the lock before giving up
    assert setup.apt_calls() == []  # nothing ran apt-get under another's lock


def test_lock_released_during_the_wait_installs_firefox(setup: Setup, lock_file: Path) -> None:
    holder = hold(lock_file, 60)
    script = setup.start(60)
    try:
        assert script.stderr is not None
        said = script.stderr.readline()  # the lock is released only once it waits
        assert "waiting up to 60 s" in said, said
    finally:
        holder.kill()
        holder.wait()
    _, err = script.communicate(timeout=120)
    assert script.returncode == 0, said + err
    installs = [c for c in setup.apt_calls() if "install" in c.split()]
    assert installs == ["-o DPkg::Lock::Timeout=60 install -y -qq firefox-esr"]
    assert "skipped" not in err


def test_failed_firefox_install_is_skipped_not_fatal(setup: Setup) -> None:
    done = setup.run(5, APT_EXIT="100")
    assert done.returncode == 0, done.stderr
    assert "skipped Firefox: apt-get install firefox-esr failed (exit 100)" in done.stderr
