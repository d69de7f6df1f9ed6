"""The loopback server serves this extension's origin only (PRIVACY.md, hole 5).

Firefox starts the host with the manifest path and the add-on id; the extension's
origin, ``moz-extension://<per-profile UUID>``, is in neither. The extension's service
worker tells the host its exact origin in a trusted ``hello`` (only it can write a
trusted context), and from then on no other extension origin is served; before it,
nothing is. A real host started as Firefox starts it, and real HTTP requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from support.host import HostProcess
from test_loopback import PAGE, stored
from webmodels.loopback import allowed_origins, caller_allowed, pinned

OURS = "moz-extension://0b6b3c5e-1111-2222-3333-444455556666"
OTHER = "moz-extension://9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"
FIREFOX_ARGV = (
    "/home/u/.mozilla/native-messaging-hosts/org.webmodels.host.json",
    "webmodels@webmodels.org",
)
TRUSTED = {"partition": None, "user_activation": True, "trusted": True}


def fetch_status(host: HostProcess, digest: str, origin: str) -> int:
    url = host.result("models.open", {"sha256": digest}, context=PAGE)["url"]
    return requests.get(url, headers={"Origin": origin}, timeout=10).status_code


def test_a_firefox_host_serves_only_the_origin_its_extension_announced(home: Path) -> None:
    host = HostProcess(home, *FIREFOX_ARGV, trusted=False)
    try:
        digest = stored(host, b"m" * 200_000)
        # Before the extension introduced itself: nothing is served, not even to it.
        assert fetch_status(host, digest, OURS) == 403
        # A page's hello reaches the host with the page's (untrusted) context: ignored.
        page_hello: dict[str, Any] = host.result("hello", {"extension_origin": OTHER}, context=PAGE)
        assert page_hello["trusted"] is False
        assert fetch_status(host, digest, OTHER) == 403

        host.result("hello", {"extension_origin": OURS}, context=TRUSTED)
        assert fetch_status(host, digest, OTHER) == 403  # another extension
        assert fetch_status(host, digest, OURS) == 200
        # The first announcement wins: a later one changes nothing.
        host.result("hello", {"extension_origin": OTHER}, context=TRUSTED)
        assert fetch_status(host, digest, OTHER) == 403
        assert fetch_status(host, digest, OURS) == 200
    finally:
        host.kill()


def test_pinning_takes_one_firefox_origin_once_and_never_replaces_the_argv() -> None:
    firefox = allowed_origins(" ".join(FIREFOX_ARGV))
    assert firefox == ()
    assert not caller_allowed(None, "same-origin", firefox)  # nothing before the pin
    assert not caller_allowed(OURS, None, firefox)
    assert pinned(firefox, OURS) == (OURS,)
    assert pinned((OURS,), OTHER) == (OURS,)
    for bad in ("moz-extension://x", OURS + "/evil", OURS + ".evil.example", "https://a.example"):
        assert pinned(firefox, bad) == ()
    chromium = allowed_origins("chrome-extension://abcdefghijklmnopabcdefghijklmnop/")
    assert pinned(chromium, OURS) == chromium
    assert caller_allowed(None, "same-origin", pinned(firefox, OURS))
