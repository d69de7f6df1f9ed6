"""Publishing segments: one flush per batch, and a held segment costs what a new one
costs without freeing the held file on the writer's time (segment_store.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from webmodels.store.segments import SegmentStore, reconstruct
from webmodels.store.segments.reaper import drain


def test_storing_held_segments_again_keeps_them_and_leaves_no_temp_files(
    tmp_path: Path,
) -> None:
    source = tmp_path / "opaque.bin"
    source.write_bytes(np.random.default_rng(3).bytes(1 << 20))
    store = SegmentStore(tmp_path / "store")
    first = store.ingest(source)
    inodes = {d: p.stat().st_ino for d, p in store.iter_segments()}
    second = store.ingest(source)
    assert drain()
    assert second == first
    # The held files stay (a reader holding one open is unaffected, and nothing was
    # freed while the writer waited); the new copies went aside and were removed.
    assert {d: p.stat().st_ino for d, p in store.iter_segments()} == inodes
    assert list(store.tmp_dir.iterdir()) == []
    assert b"".join(reconstruct(store, second)) == source.read_bytes()
