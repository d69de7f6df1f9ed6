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


def test_the_popup_list_says_per_model_what_it_holds_and_shares_on_disk(home: Path) -> None:
    """`manage.list` (the popup's model cards) gives each file kept as segments its
    bytes on disk alone and those it shares with other files, as `du --models` does."""
    import hashlib
    import json

    from support.host import run_cli

    shared = os.urandom(2 << 20)
    first, second, other = (
        shared + os.urandom(100_000),
        os.urandom(50_000) + shared,
        os.urandom(300_000),
    )
    host = HostProcess(home)  # segments: the default
    try:
        for data in (first, second, other):
            stored(host, data)
        models = {m["sha256"]: m for m in host.result("manage.list")["models"]}
    finally:
        host.close()
    du = {m["sha256"]: m for m in json.loads(run_cli(home, "--json", "du", "--models").stdout)}
    for data in (first, second, other):
        sha = hashlib.sha256(data).hexdigest()
        disk = models[sha]["disk"]
        print(f"{len(data)} B: own {disk['own_bytes']} B, shared {disk['shared_bytes']} B")
        assert disk["own_bytes"] + disk["shared_bytes"] == len(data)
        assert (disk["own_bytes"], disk["shared_bytes"]) == (du[sha]["own"], du[sha]["shared"])
    assert models[hashlib.sha256(other).hexdigest()]["disk"]["shared_bytes"] == 0
    for data in (first, second):
        assert models[hashlib.sha256(data).hexdigest()]["disk"]["shared_bytes"] > (3 << 20) // 2


def test_stats_and_du_say_what_gc_would_free_in_packs_after_a_delete(home: Path) -> None:
    """A deleted file's own segments stay in its pack, which still holds the parts
    another file shares: `manage.stats` (`reclaimable_bytes`, the popup's "more freed
    by gc") and `webmodels du` say how many bytes that is."""
    import hashlib
    import json

    from support.host import run_cli

    shared = os.urandom(2 << 20)
    first, second = shared + os.urandom(300_000), os.urandom(50_000) + shared
    host = HostProcess(home)  # segments in packs: the default
    try:
        stored(host, first)
        stored(host, second)
        before = host.result("manage.stats")["reclaimable_bytes"]
        digest = hashlib.sha256(first).hexdigest()
        host.result("manage.delete", {"sha256": digest, "force": True})
        after = host.result("manage.stats")["reclaimable_bytes"]
    finally:
        host.close()
    print(f"reclaimable in packs: {before} B before the delete, {after} B after")
    assert before == 0
    assert 250_000 <= after < len(first)  # its own tail, not the parts second holds
    assert json.loads(run_cli(home, "--json", "du").stdout)["reclaimable_bytes"] == after
    text = run_cli(home, "du").stdout
    assert "in packs, held by no file (`webmodels gc` frees them)" in text
