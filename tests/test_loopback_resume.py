"""A loopback read that resumes part-way (`models.open` with `offset`): the one-time URL
serves exactly the model's bytes from there, under the same token rules as a whole read
(one use, this extension only, this partition only) — for a plain stored file and for
one kept as segments. Through a real host process and real HTTP requests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

from support.host import HostProcess
from test_loopback import EXTENSION, PAGE, stored

OTHER = {"partition": {"top_site": "https://b.example", "origin": "https://b.example"}}


@pytest.mark.parametrize("segments", ["0", "1"], ids=["file", "segments"])
def test_a_read_resumes_from_any_offset_with_the_same_token_rules(
    home: Path, segments: str
) -> None:
    data = os.urandom((3 << 20) + 12345)
    host = HostProcess(home, WEBMODELS_STORE_SEGMENTS=segments)
    try:
        digest = stored(host, data)
        blob = home / "store-v2" / "blobs" / "sha256" / digest[:2] / digest
        assert blob.exists() == (segments == "0")  # kept as segments, or as one file
        for offset in (0, 1, 65537, len(data) // 2 + 7, len(data) - 1):
            opened: dict[str, Any] = host.result(
                "models.open", {"sha256": digest, "offset": offset}, context=PAGE
            )
            assert opened["size"] == len(data) - offset
            assert requests.get(opened["url"], timeout=10).status_code == 403  # a page's fetch
            reply = requests.get(opened["url"], headers={"Origin": EXTENSION}, timeout=10)
            assert reply.status_code == 200 and reply.content == data[offset:], offset
            assert reply.headers["Content-Length"] == str(len(data) - offset)
            spent = requests.get(opened["url"], headers={"Origin": EXTENSION}, timeout=10)
            assert spent.status_code == 404
        past = host.call("models.open", {"sha256": digest, "offset": len(data)}, context=PAGE)
        assert past["error"]["code"] == "bad_request"
        negative = host.call("models.open", {"sha256": digest, "offset": -1}, context=PAGE)
        assert negative["error"]["code"] == "bad_request"
        # Another site learns nothing more from an offset than without one.
        held = host.call("models.open", {"sha256": digest, "offset": 5}, context=OTHER)
        absent = host.call("models.open", {"sha256": "ab" * 32, "offset": 5}, context=OTHER)
        assert held["error"] == absent["error"] and held["error"]["code"] == "not_found"
    finally:
        host.kill()
