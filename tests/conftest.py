from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.host import HostProcess

pytest_plugins = ["support.fixtures"]


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
