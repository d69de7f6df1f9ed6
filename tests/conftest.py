from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.host import HostProcess

pytest_plugins = ["support.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-whole",
        action="store_true",
        help="keep new files whole, as before segments (WEBMODELS_STORE_SEGMENTS=0), in "
        "this process and in the hosts and CLIs the tests start (docs/segments.md)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--store-whole"):
        os.environ["WEBMODELS_STORE_SEGMENTS"] = "0"
    _warn_if_the_disk_is_nearly_full()


def _warn_if_the_disk_is_nearly_full() -> None:
    """Hosts keep a tenth of the disk free (`quota_keep_free_fraction`): below it every
    page write gets quota_exceeded, and dozens of tests fail for that alone."""
    import shutil
    import sys
    import tempfile

    usage = shutil.disk_usage(tempfile.gettempdir())
    if usage.free < usage.total * 0.12:
        sys.stderr.write(
            f"\nwarning: only {usage.free / usage.total:.0%} of the disk holding "
            f"{tempfile.gettempdir()} is free; below 10% the hosts these tests start refuse "
            "page writes with quota_exceeded (quota_keep_free_fraction) and many tests "
            "fail: free some space first\n"
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty webmodels data folder (WEBMODELS_HOME) for one test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def host(home: Path) -> Iterator[HostProcess]:
    """A real host subprocess in trusted-stdio mode on an empty store."""
    proc = HostProcess(home)
    yield proc
    proc.kill()
