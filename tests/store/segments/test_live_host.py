"""A real host process with the segments switch on: a Cross-Origin Storage write is
kept as segments, and a page reads it back byte for byte through `models.read` and the
loopback fast path (one-time URL on 127.0.0.1)."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

import requests

from support.host import HostProcess
from test_loopback import EXTENSION, PAGE, stored


def test_a_file_kept_as_segments_reads_back_through_read_and_the_fast_path(home: Path) -> None:
    data = os.urandom(3 << 20)  # opaque bytes: content-defined chunks of ~64 KiB
    host = HostProcess(home, WEBMODELS_STORE_SEGMENTS="1")
    try:
        digest = stored(host, data)
        url = host.result("models.open", {"sha256": digest}, context=PAGE)["url"]
        reply = requests.get(url, headers={"Origin": EXTENSION}, timeout=30)
        assert reply.status_code == 200 and reply.content == data
        offset = 1_000_003
        part = host.result(
            "models.read", {"sha256": digest, "offset": offset, "length": 70_000}, context=PAGE
        )
        assert base64.b64decode(part["data"]) == data[offset : offset + 70_000]
    finally:
        host.close()
    with sqlite3.connect(home / "store-v2" / "index.sqlite3") as db:
        (held,) = db.execute("SELECT COUNT(*) FROM recipes WHERE sha256 = ?", (digest,)).fetchone()
    assert held == 1
    assert not (home / "store-v2" / "blobs" / "sha256" / digest[:2] / digest).exists()
