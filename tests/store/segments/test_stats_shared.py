"""`manage.stats` (the popup's and `webmodels du`'s totals) says what files sharing
parts saved: each stored file once at its full size against what the store takes on
disk. A real host process with the segments switch on; the figures go to the popup
only (`manage.*` is refused to pages)."""

from __future__ import annotations

import os
from pathlib import Path

from support.host import HostProcess
from test_loopback import PAGE, stored


def test_stats_report_stored_against_on_disk_bytes_for_files_sharing_parts(home: Path) -> None:
    shared = os.urandom(2 << 20)  # content-defined chunks: the same ones in both files
    first, second = shared + os.urandom(100_000), os.urandom(50_000) + shared
    host = HostProcess(home, WEBMODELS_STORE_SEGMENTS="1")
    try:
        stored(host, first)
        stored(host, second)
        stats = host.result("manage.stats")
        refused = host.call("manage.stats", context=PAGE)
    finally:
        host.close()
    print(
        f"stored {stats['stored_bytes']} B, on disk {stats['physical_bytes']} B, "
        f"saved by shared parts {stats['shared_saved_bytes']} B"
    )
    assert stats["stored_bytes"] == len(first) + len(second)
    assert stats["physical_bytes"] < len(first) + len(second) - (1 << 20)
    assert stats["shared_saved_bytes"] == stats["stored_bytes"] - stats["physical_bytes"]
    assert not refused["ok"]
