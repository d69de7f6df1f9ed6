"""What the segment store's tests share: a session manager over a store that keeps its
files as segments, with a real runtime worker (the CPU provider only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from webmodels.config import Config
from webmodels.runtime.probe import ProbeResult, ProviderProbe
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[SessionManager, Store]]:
    config = Config(home=tmp_path / "home", log_dir=tmp_path / "logs", store_segments=True)
    store = Store.open(config)
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    settings = SessionSettings(background_compile=False)
    sessions = SessionManager(store, probe, settings, log_path=tmp_path / "worker.log").start()
    yield sessions, store
    sessions.close()
    store.close()
