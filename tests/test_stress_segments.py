"""Faults injected into the segment store (docs/reliability.md,
scripts/stress_lib/segment_faults.py): with WEBMODELS_STORE_SEGMENTS=1, imports of
files sharing segments (ONNX, a variant, safetensors, a file of no known format),
delete, gc, `store convert` and verify, every 4th I/O call failed with EIO and with
ENOSPC. After each: a clear error, integrity, every indexed file rebuilds from its
segments and re-hashes, every segment count right, no segment no recipe names and no
temp file after the next start. Before the fixes, a failed gc or delete COMMIT left
recipes naming deleted segments (lost files), failed imports and conversions left
unnamed segments, and conversion and verify answered disk errors with bare
exceptions."""

from __future__ import annotations

import re

from support.stress import run_stress

OPERATIONS = (
    "seg_import_onnx",
    "seg_import_shared",
    "seg_import_st",
    "seg_import_other",
    "seg_delete",
    "seg_gc",
    "seg_convert",
    "seg_verify",
)


def test_no_fault_in_the_segment_store_loses_a_file_or_leaves_a_segment() -> None:
    stdout = run_stress("segments")
    rows = re.findall(r"^(seg_\w+) +(EIO|ENOSPC) +(\d+) +(\d+) +(\d+) +(\d+)$", stdout, re.M)
    assert {(op, fault) for op, fault, *_ in rows} == {
        (op, fault) for op in OPERATIONS for fault in ("EIO", "ENOSPC")
    }, stdout
    for operation, fault, tried, unclear, lost, corrupted in rows:
        assert int(tried) >= 1 and unclear == lost == corrupted == "0", (operation, fault)
    assert re.search(r"segment store injections: \d+ .*, 0 bad", stdout), stdout
