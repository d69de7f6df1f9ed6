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
