"""Cross-Origin Storage chunks in flight (the native-messaging fallback, page/cos.js
sends several before the first is answered): the host's request pool may start them
in any order, and each waits its turn, so the upload is stored whole; a chunk too far
ahead is refused at once. Through a real host process."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from support.host import HostProcess
from webmodels.uploads import MAX_AHEAD

SITE = {
    "partition": {"top_site": "http://a.localhost:8000", "origin": "http://a.localhost:8000"},
    "user_activation": True,
}
PIECE = 1 << 20


def chunk(upload_id: str, offset: int, data: bytes, request_id: str) -> dict[str, Any]:
    params = {"upload_id": upload_id, "offset": offset, "data": base64.b64encode(data).decode()}
    return {"id": request_id, "method": "cos.write.chunk", "params": params, "context": SITE}


def test_chunks_in_flight_arriving_out_of_order_are_stored_whole(home: Path) -> None:
    data = os.urandom(4 * PIECE)
    sha256 = hashlib.sha256(data).hexdigest()
    host = HostProcess(home)
    try:
        begun = host.result("cos.write.begin", {"sha256": sha256, "size": len(data)}, context=SITE)
        upload_id = begun["upload_id"]
        for n in (3, 1, 2, 0):  # the worst order a request pool could start them in
            host.send(chunk(upload_id, n * PIECE, data[n * PIECE : (n + 1) * PIECE], f"c{n}"))
        replies = {reply["id"]: reply for reply in (host.recv() for _ in range(4))}
        assert all(reply["ok"] for reply in replies.values()), replies
        assert replies["c3"]["result"]["received"] == len(data)
        committed = host.result("cos.write.commit", {"upload_id": upload_id}, context=SITE)
        assert committed["model"]["sha256"] == sha256
        looked = host.result("cos.lookup", {"sha256": sha256}, context=SITE)
        assert looked == {"found": True, "size": len(data)}
    finally:
        host.close()


def test_a_chunk_too_far_ahead_or_for_an_aborted_upload_does_not_wait(home: Path) -> None:
    size = MAX_AHEAD + 2 * PIECE
    host = HostProcess(home)
    try:
        params = {"sha256": "ab" * 32, "size": size}
        upload_id = host.result("cos.write.begin", params, context=SITE)["upload_id"]
        far = host.call(
            "cos.write.chunk",
            chunk(upload_id, MAX_AHEAD + PIECE, b"x", "")["params"],
            context=SITE,
        )
        assert not far["ok"] and far["error"]["code"] == "bad_request"
        host.send(chunk(upload_id, PIECE, b"y" * PIECE, "waiting"))
        aborted = host.result("cos.write.abort", {"upload_id": upload_id}, context=SITE)
        assert aborted == {"aborted": True}
        waited = host.recv()
        assert waited["id"] == "waiting" and waited["error"]["code"] == "not_found"
    finally:
        host.close()
