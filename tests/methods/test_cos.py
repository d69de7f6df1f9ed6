"""Cross-Origin Storage writes and look-ups through a real host: bytes are published
only when their hash and size match, and each site sees only what it stored."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

from support.contexts import PUBLIC_A, PUBLIC_B, PUBLIC_FRAME_IN_A
from support.held import held_in
from support.host import HostProcess

PAGE_A, PAGE_B, FRAME_IN_A = PUBLIC_A, PUBLIC_B, PUBLIC_FRAME_IN_A


def upload(
    host: HostProcess,
    data: bytes,
    context: dict[str, object],
    *,
    sha: str | None = None,
    chunk: int = 300_000,
) -> dict[str, object]:
    digest = sha or hashlib.sha256(data).hexdigest()
    begun = host.result("cos.write.begin", {"sha256": digest, "size": len(data)}, context=context)
    for offset in range(0, len(data), chunk):
        piece = base64.b64encode(data[offset : offset + chunk]).decode()
        host.result(
            "cos.write.chunk",
            {"upload_id": begun["upload_id"], "offset": offset, "data": piece},
            context=context,
        )
    return host.call("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)


def blobs(home: Path) -> list[str]:
    return sorted(held_in(home))


def test_write_then_lookup_and_read(host: HostProcess, home: Path) -> None:
    data = os.urandom(1_000_000)
    digest = hashlib.sha256(data).hexdigest()
    assert host.result("cos.lookup", {"sha256": digest}, context=PAGE_A) == {"found": False}
    reply = upload(host, data, PAGE_A)
    assert reply["ok"], reply
    assert reply["result"]["model"]["format"] == "binary"
    assert host.result("cos.lookup", {"sha256": digest}, context=PAGE_A) == {
        "found": True,
        "size": len(data),
    }
    # Another site, and even another frame origin in the same tab, does not see it.
    assert host.result("cos.lookup", {"sha256": digest}, context=PAGE_B) == {"found": False}
    assert host.result("cos.lookup", {"sha256": digest}, context=FRAME_IN_A) == {"found": False}
    read = host.result("models.read", {"sha256": digest, "length": 100}, context=PAGE_A)
    assert base64.b64decode(read["data"]) == data[:100]


def test_wrong_hash_publishes_nothing(host: HostProcess, home: Path) -> None:
    data = os.urandom(500_000)
    reply = upload(host, data, PAGE_A, sha="ab" * 32)
    assert reply["error"]["code"] == "integrity_mismatch"
    assert blobs(home) == []
    assert list((home / "store-v2" / "tmp").iterdir()) == []


def test_chunks_must_be_in_order_and_within_size(home: Path) -> None:
    # A chunk ahead of its turn waits for its predecessor (10 s in use), then is
    # refused; the test knob shortens the wait so the suite does not sit through it.
    host = HostProcess(home, WEBMODELS_TEST_AHEAD_WAIT_S="0.5")
    try:
        data = os.urandom(1000)
        digest = hashlib.sha256(data).hexdigest()
        begun = host.result("cos.write.begin", {"sha256": digest, "size": 1000}, context=PAGE_A)
        upload_id = begun["upload_id"]
        chunk = {"upload_id": upload_id, "offset": 10, "data": base64.b64encode(data).decode()}
        started = time.monotonic()
        ahead = host.call("cos.write.chunk", chunk, context=PAGE_A)
        assert ahead["error"]["code"] == "bad_request"
        assert time.monotonic() - started >= 0.4  # it waited its turn first
        chunk["offset"] = 0
        chunk["data"] = base64.b64encode(data + b"extra").decode()
        too_many = host.call("cos.write.chunk", chunk, context=PAGE_A)
        assert too_many["error"]["code"] == "integrity_mismatch"
        gone = host.call("cos.write.commit", {"upload_id": upload_id}, context=PAGE_A)
        assert gone["error"]["code"] == "not_found"
        assert list((home / "store-v2" / "tmp").iterdir()) == []
    finally:
        host.kill()


def test_an_upload_belongs_to_its_partition(host: HostProcess) -> None:
    data = os.urandom(100)
    digest = hashlib.sha256(data).hexdigest()
    upload_id = host.result("cos.write.begin", {"sha256": digest, "size": 100}, context=PAGE_A)[
        "upload_id"
    ]
    chunk = {"upload_id": upload_id, "offset": 0, "data": base64.b64encode(data).decode()}
    assert host.call("cos.write.chunk", chunk, context=PAGE_B)["error"]["code"] == "not_found"
    assert host.result("cos.write.abort", {"upload_id": upload_id}, context=PAGE_B) == {
        "aborted": False
    }
    assert host.result("cos.write.abort", {"upload_id": upload_id}, context=PAGE_A) == {
        "aborted": True
    }


def test_clear_site(host: HostProcess, home: Path) -> None:
    only_a, shared = os.urandom(2000), os.urandom(3000)
    assert upload(host, only_a, PAGE_A)["ok"]
    assert upload(host, shared, FRAME_IN_A)["ok"]
    assert upload(host, shared, PAGE_B)["ok"]
    assert len(blobs(home)) == 2
    cleared = host.result("manage.clear_site", {"top_site": "https://a.example"})
    assert cleared["references_dropped"] == 2
    assert cleared["freed_bytes"] == len(only_a)  # the shared one is still b.example's
    assert len(blobs(home)) == 1
    sha = hashlib.sha256(shared).hexdigest()
    assert host.result("cos.lookup", {"sha256": sha}, context=PAGE_B)["found"] is True
    assert host.result("cos.lookup", {"sha256": sha}, context=FRAME_IN_A)["found"] is False
    denied = host.call("manage.clear_site", {"top_site": "https://b.example"}, context=PAGE_A)
    assert denied["error"]["code"] == "access_denied"
