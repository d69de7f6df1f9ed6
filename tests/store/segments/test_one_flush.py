"""Storing segments flushes the file system once, not twice (segments/durable.py): each
segment's bytes are written to the device and waited for before any segment is
renamed into place, and one ``syncfs`` after the renames commits them all; where the
kernel refuses that write-back, the two-flush path is taken and the store stays
correct."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from webmodels.store.segments import SegmentStore, durable, reconstruct

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or durable._SYNCFS is None,
    reason="syncfs and sync_file_range are Linux calls",
)


def _source(folder: Path) -> Path:
    source = folder / "opaque.bin"  # about 16 content-defined chunks
    source.write_bytes(np.random.default_rng(3).bytes(1 << 20))
    return source


def _spy(monkeypatch: pytest.MonkeyPatch, events: list[str], range_result: int = 0) -> None:
    real_syncfs = durable._SYNCFS
    real_range = durable._SYNC_FILE_RANGE
    real_replace = os.replace
    assert real_syncfs is not None and real_range is not None

    def syncfs(fd: int) -> int:
        events.append("syncfs")
        return real_syncfs(fd)

    def sync_file_range(fd: int, offset: int, nbytes: int, flags: int) -> int:
        events.append(f"range {flags}")
        return real_range(fd, offset, nbytes, flags) if range_result == 0 else range_result

    def replace(src: str | Path, dst: str | Path) -> None:
        if str(src).endswith(".seg"):
            events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(durable, "_SYNCFS", syncfs)
    monkeypatch.setattr(durable, "_SYNC_FILE_RANGE", sync_file_range)
    monkeypatch.setattr(os, "replace", replace)


def _ingest(store: SegmentStore, source: Path) -> Callable[[], bytes]:
    recipe = store.ingest(source)
    assert len(recipe.segments) > 4
    return lambda: b"".join(reconstruct(store, recipe))


def test_every_segment_reaches_the_device_before_any_rename_and_one_flush_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(tmp_path)
    store = SegmentStore(tmp_path / "store")
    store.ensure()
    events: list[str] = []
    _spy(monkeypatch, events)
    rebuilt = _ingest(store, source)
    renames = events.count("rename")
    waited = [i for i, e in enumerate(events) if e.startswith("range")]
    assert renames > 4 and len(waited) == renames  # every segment written back
    assert all(events[i] == "range 7" for i in waited)  # WAIT_BEFORE | WRITE | WAIT_AFTER
    assert events.index("rename") > max(waited)  # all of them before the first rename
    assert events.count("syncfs") == 1 and events[-1] == "syncfs"  # after the renames
    assert rebuilt() == source.read_bytes()
    events.clear()
    _ingest(store, source)  # bytes already held: the same steps, one flush
    assert events.count("syncfs") == 1 and events.count("rename") == renames


def test_where_write_back_is_refused_the_data_is_flushed_before_the_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(tmp_path)
    store = SegmentStore(tmp_path / "store")
    store.ensure()
    events: list[str] = []
    _spy(monkeypatch, events, range_result=-1)
    rebuilt = _ingest(store, source)
    first_rename = events.index("rename")
    assert "syncfs" in events[:first_rename]  # the data flushed before any rename
    assert events[-1] == "syncfs" and events.count("syncfs") == 2
    assert rebuilt() == source.read_bytes()


def test_write_back_runs_on_this_kernel(tmp_path: Path) -> None:
    """The ctypes binding is right: a real call succeeds (else every store would
    silently take the two-flush path)."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 8192)
    assert durable.write_back([path])
