"""Faults injected into models made of several files (docs/reliability.md,
scripts/stress_lib/manifest_faults.py): `import DIR` of a model folder and `pull` of
its files from several loopback URLs, every 4th I/O call failed with EIO and with
ENOSPC. After each: a clear error (a disk error in a set's import or pull reached the
user as a bare exception before), no half manifest in the index, every indexed blob
re-hashing, nothing unindexed or left in tmp/ after the next start."""

from __future__ import annotations

import re

from support.stress import run_stress


def test_no_fault_in_a_sets_import_or_pull_leaves_half_a_manifest() -> None:
    stdout = run_stress("manifests")
    rows = re.findall(
        r"^(import_dir|pull_set) +(EIO|ENOSPC) +(\d+) +(\d+) +(\d+) +(\d+)$", stdout, re.M
    )
    assert len(rows) == 4, stdout
    for operation, fault, tried, unclear, lost, corrupted in rows:
        assert int(tried) > 10 and unclear == lost == corrupted == "0", (operation, fault)
    assert re.search(r"manifest injections: \d+ .*, 0 bad", stdout), stdout
