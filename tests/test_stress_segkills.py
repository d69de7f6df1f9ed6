"""The kill loop through the segment store (docs/reliability.md,
scripts/stress_lib/kill_segments.py): with WEBMODELS_STORE_SEGMENTS=1, hosts and CLI
commands forked from the harness are SIGKILLed at random moments of an import of an
ONNX file sharing its weights' segment with a file already stored, a COS write of
those bytes, a `pull` of them, `rm`, `gc` and `store convert` — at least 100 kills.
After each kill the store is opened as a new process opens it and checked in full:
integrity, every indexed file rebuilds from its segments and re-hashes, no segment a
recipe names is missing, every segment's count equals the recipes naming it, no
unindexed blob or temp file (but a killed pull's partial, kept for its resume), and
every file the operation must keep still indexed; after the run that completes, its
result and, after an unkilled `gc`, no segment no recipe names."""

from __future__ import annotations

import re

from support.stress import run_stress

POINTS = {"import", "COS write", "download", "delete", "gc", "convert"}


def test_kills_through_the_segment_store_lose_nothing() -> None:
    stdout = run_stress("segkills")
    rows = re.findall(
        r"kills, segments ([\w ]+): (\d+) kills, (\d+) completed, .* (\d+) checks, .* "
        r"(\d+) failed, (\d+) lost, (\d+) corrupted",
        stdout,
    )
    assert {r[0] for r in rows} == POINTS, stdout
    for point, kills, completed, checks, failed, lost, corrupted in rows:
        assert int(kills) >= 6 and int(completed) >= 1, point
        # One check after every kill, and one after each cycle's unkilled last run. A
        # run the kill reached only after its work was done counts as a kill and as
        # completed but is checked once (as a kill): so not kills + completed.
        assert int(checks) >= int(kills) + 1, point
        assert failed == lost == corrupted == "0", point
    total = re.search(r"segment kill loop: (\d+) kills, .*, 0 lost, 0 corrupted", stdout)
    assert total and int(total.group(1)) >= 100, stdout
