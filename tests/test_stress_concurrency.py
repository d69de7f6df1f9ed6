"""The concurrency part of `scripts/stress --size short` (docs/reliability.md): 16
processes at once (12 hosts spoken to over the native-messaging protocol, 4 CLI
commands per round) writing, importing, deleting, pinning and collecting the same and
different hashes, for 2 rounds. After each round: the store's full check (integrity,
every blob re-hashes, one file per hash, nothing unindexed or in tmp/), the model
pinned before the run still there with every delete of it refused, and no reply or
CLI output carrying SQLite's own error text or an internal error."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sixteen_processes_at_once_keep_one_valid_blob_per_hash() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [str(ROOT / "scripts" / "stress"), "--size", "short", "--only", "concurrency"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout, run.stderr[-2000:])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert "concurrency: 16 processes x 2 rounds" in run.stdout
    assert "0 leaked errors, 0 lost, 0 corrupted" in run.stdout
    # The pinned model was attempted by every host in every round and always refused.
    assert "model_pinned 24" in run.stdout
