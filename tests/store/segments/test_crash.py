"""An ingest killed at any moment (SIGKILL) leaves only whole, correctly named segments:
nothing is published before its bytes were hashed and fsynced, and what the dead writer
left in tmp/ is recognised as stale."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from webmodels.store.segments import SegmentStore, reconstruct

INGEST = (
    "import sys; from pathlib import Path; "
    "from webmodels.store.segments import SegmentStore; "
    "SegmentStore(Path(sys.argv[1])).ingest(Path(sys.argv[2]))"
)


def _start(store: SegmentStore, source: Path) -> tuple[subprocess.Popen[bytes], float]:
    """An ingest in a child process, and when its first temp file appeared."""
    child = subprocess.Popen([sys.executable, "-c", INGEST, str(store.root), str(source)])
    deadline = time.monotonic() + 30
    while not any(store.tmp_dir.iterdir()) and child.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    return child, time.monotonic()


def test_an_ingest_killed_anywhere_publishes_no_bad_segment(tmp_path: Path) -> None:
    began = time.monotonic()
    source = tmp_path / "big.bin"  # opaque bytes: about 130 chunks of 64 KiB
    source.write_bytes(np.random.default_rng(9).bytes(8 << 20))
    probe = SegmentStore(tmp_path / "probe")
    probe.ensure()
    child, started = _start(probe, source)
    child.wait()
    span = time.monotonic() - started  # writing, fsyncing, renaming: where to kill
    store = SegmentStore(tmp_path / "store")
    store.ensure()
    for fraction in (None, 0.2, 0.6):  # None: as the first segment is renamed
        child, started = _start(store, source)
        if fraction is not None:
            time.sleep(max(0.0, started + fraction * span - time.monotonic()))
        while fraction is None and child.poll() is None and not any(store.iter_segments()):
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        published = list(store.iter_segments())
        for digest, path in published:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest.hex
        stale = store.stale_temps()
        assert set(stale) == set(store.tmp_dir.iterdir())  # the dead writer's, all
        when = "at the first rename" if fraction is None else f"at {fraction:.0%}"
        print(f"killed {when}: {len(published)} published, {len(stale)} stale")
        for path in stale:
            path.unlink()
    recipe = store.ingest(source)
    assert b"".join(reconstruct(store, recipe)) == source.read_bytes()
    assert store.stale_temps() == []
    print(f"wall time {time.monotonic() - began:.1f} s")
