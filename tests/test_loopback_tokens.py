"""Live loopback tokens are bounded per partition (PRIVACY.md, hole 15): a site that
opens many models drops only its own oldest URLs, never one another site is about to
read; the host-wide ceiling answers like a partition's own byte bound."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from webmodels.config import CHROMIUM_EXTENSION_ID
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.loopback import GRANTS_FULL, MAX_LIVE_TOKENS, LoopbackServer, allowed_origins

EXTENSION = f"chrome-extension://{CHROMIUM_EXTENSION_ID}"
A = "https://a.example https://a.example"
B = "https://b.example https://b.example"


def get(url: str) -> requests.Response:
    return requests.get(url, headers={"Origin": EXTENSION}, timeout=10)


@pytest.fixture
def model(tmp_path: Path) -> tuple[Digest, Path]:
    path = tmp_path / "m"
    path.write_bytes(b"m" * 100)
    return Digest(hashlib.sha256(b"m" * 100).hexdigest()), path


def test_a_site_opening_many_models_never_drops_another_sites_url(
    model: tuple[Digest, Path],
) -> None:
    digest, path = model
    server = LoopbackServer(allowed_origins(None))
    try:
        b_url = server.issue(digest, path, 100, owner=B).url
        a_urls = [server.issue(digest, path, 100, owner=A).url for _ in range(MAX_LIVE_TOKENS * 4)]
        assert get(b_url).content == b"m" * 100  # B's URL outlived A's flood
        assert get(a_urls[0]).status_code == 404  # A dropped its own oldest
        assert get(a_urls[-1]).content == b"m" * 100
    finally:
        server.close()


def test_the_host_wide_ceiling_answers_like_the_byte_bound(
    model: tuple[Digest, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    digest, path = model
    monkeypatch.setattr("webmodels.loopback.MAX_TOTAL_TOKENS", 8)
    server = LoopbackServer(allowed_origins(None))
    try:
        for site in range(8):
            server.issue(digest, path, 100, owner=f"https://s{site}.example x")
        with pytest.raises(HostError) as refused:
            server.issue(digest, path, 100, owner=B)  # none of its own to give up
        assert (refused.value.code, refused.value.message) == ("busy", GRANTS_FULL)
        assert refused.value.details == {}
        # A partition that holds tokens gives up its own oldest instead.
        again = server.issue(digest, path, 100, owner="https://s0.example x").url
        assert get(again).content == b"m" * 100
    finally:
        server.close()
