"""How many uploads a page may have open (issue 11, hole 15): a few sites cannot shut
the others out, and the host-wide ceiling answers exactly like the site's own limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.host import HostProcess
from webmodels.uploads import MAX_OPEN, MAX_PER_PARTITION


def page(site: str) -> dict[str, Any]:
    origin = f"https://{site}.example"
    return {"partition": {"top_site": origin, "origin": origin}, "trusted": False}


def begin(host: HostProcess, site: str) -> Any:
    return host.call("cos.write.begin", {"sha256": "ab" * 32, "size": 10}, context=page(site))


def fill(host: HostProcess, sites: list[str], count: int) -> list[tuple[str, str]]:
    opened = []
    for n in range(count):
        site = sites[n // MAX_PER_PARTITION]
        reply = begin(host, site)
        assert reply["ok"], reply
        opened.append((site, reply["result"]["upload_id"]))
    return opened


def test_the_host_wide_upload_ceiling_answers_like_the_sites_own_limit(home: Path) -> None:
    others = [f"other{n}" for n in range(MAX_OPEN // MAX_PER_PARTITION + 1)]
    host = HostProcess(home)
    try:
        # Four sites with their uploads all open do not shut a fifth out.
        opened = fill(host, others, 4 * MAX_PER_PARTITION)
        assert begin(host, "b")["ok"]
        opened += fill(host, others[4:], MAX_OPEN - len(opened) - 1)
        ceiling = begin(host, "b")  # the host holds its ceiling; b has one open
        for site, upload_id in opened[:MAX_PER_PARTITION]:
            host.result("cos.write.abort", {"upload_id": upload_id}, context=page(site))
        for _ in range(MAX_PER_PARTITION - 1):
            assert begin(host, "b")["ok"]
        own = begin(host, "b")  # b's own limit, with room left in the host
        assert own["error"]["code"] == "busy", own
        assert ceiling["error"] == own["error"]
    finally:
        host.kill()
