"""The concurrency part of `scripts/stress --size short` (docs/reliability.md): 16
processes at once (12 hosts spoken to over the native-messaging protocol, 4 CLI
commands per round) writing, importing, deleting, pinning and collecting the same and
different hashes, for 2 rounds. After each round: the store's full check (integrity,
every blob re-hashes, one file per hash, nothing unindexed or in tmp/), the model
pinned before the run still there with every delete of it refused, and no reply or
CLI output carrying SQLite's own error text or an internal error."""

from __future__ import annotations

from support.stress import run_stress


def test_sixteen_processes_at_once_keep_one_valid_blob_per_hash() -> None:
    stdout = run_stress("concurrency", timeout=600)
    assert "concurrency: 16 processes x 2 rounds" in stdout
    assert "0 leaked errors, 0 lost, 0 corrupted" in stdout
    # The pinned model was attempted by every host in every round and always refused.
    assert "model_pinned 24" in stdout
