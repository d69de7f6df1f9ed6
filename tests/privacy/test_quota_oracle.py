"""What quotas may tell a page (issue 11, holes 4 and 13): nothing about what other
sites hold, and no more room than its own quota, however many transfers it starts."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from support.host import HostProcess
from support.httpserver import Fault, ModelServer
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.store.quotas import (
    DiskFigures,
    InFlight,
    PageLimits,
    RoomQuestion,
    page_room,
)
from webmodels.store.store import Store

A_MODEL = 1_234_567  # the size the review measured in 30 probes
GiB = 1 << 30


def page(site: str) -> dict[str, Any]:
    origin = f"http://{site}.localhost:8000"
    return {
        "partition": {"top_site": origin, "origin": origin},
        "user_activation": False,  # no gesture: what a page can do unseen
        "trusted": False,
    }


def load(url: str, data: bytes, **extra: Any) -> dict[str, Any]:
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"query": {"url": url, "integrity": integrity, **extra}}


def bisect(host: HostProcess, site: str, probes: int = 30) -> list[Any]:
    """The largest `cos.write.begin` size that is accepted, found as an attacker would;
    every answer on the way (each accepted upload is aborted at once)."""
    low, high, answers = 0, 1 << 34, []
    for _ in range(probes):
        size = (low + high) // 2
        params = {"sha256": "ab" * 32, "size": size}
        reply = host.call("cos.write.begin", params, context=page(site))
        if reply["ok"]:
            host.result("cos.write.abort", reply["result"], context=page(site))
            answers.append("ok")
            low = size
        else:
            answers.append(reply["error"])
            high = size
    answers.append(low)
    return answers


def test_bisecting_sizes_tells_nothing_of_what_other_sites_store(
    home: Path, model_server: ModelServer
) -> None:
    config = home / "config.toml"
    config.write_text("quota_total_bytes = 5000000\n")
    data = os.urandom(A_MODEL)
    url = model_server.add("/a.bin", data)
    host = HostProcess(home, WEBMODELS_CONFIG=str(config))
    try:
        before = bisect(host, "b")
        assert host.call("models.load", load(url, data), context=page("a"))["ok"]
        after = bisect(host, "b")
        print(f"b's bisection finds {before[-1]} before and {after[-1]} after a stores")
        assert before == after
    finally:
        host.kill()


def three_slow_models(model_server: ModelServer, size: int) -> list[tuple[str, bytes]]:
    models = []
    for n in range(3):
        data = os.urandom(size)
        path = f"/slow{n}.bin"
        url = model_server.add(path, data)
        # Half the bytes (more than one 256 KiB read, so progress shows), then silence.
        model_server.fault(path, Fault("stall", after_bytes=size // 2, seconds=30, times=None))
        models.append((url, data))
    return models


def wait_for_progress(host: HostProcess, request_id: int) -> None:
    while True:
        message = host.recv(timeout=30)
        if message.get("id") == request_id:
            assert "event" in message, message  # a progress event: the job runs
            return


def reply_to(host: HostProcess, request_id: int) -> Any:
    while True:
        message = host.recv(timeout=20)
        if message.get("id") == request_id and "event" not in message:
            return message


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "content-length"])
def test_downloads_in_flight_count_toward_the_quota(
    home: Path, model_server: ModelServer, declared: bool
) -> None:
    """Three slow downloads at once by one site whose quota is 2.5 models: the third is
    refused (before any request when its size is declared, on the server's
    Content-Length otherwise), instead of each taking the whole quota."""
    size = 1 << 20
    config = home / "config.toml"
    config.write_text(f"quota_per_partition_bytes = {size * 5 // 2}\n")
    models = three_slow_models(model_server, size)
    host = HostProcess(home, WEBMODELS_CONFIG=str(config))
    try:
        for n, (url, data) in enumerate(models[:2], start=1):
            params = load(url, data, size=size)  # the first two declare their size
            host.send({"id": n, "method": "models.load", "params": params, "context": page("a")})
            wait_for_progress(host, n)
        url, data = models[2]
        extra = {"size": size} if declared else {}
        model_server.reset_stats()
        params = load(url, data, **extra)
        host.send({"id": 3, "method": "models.load", "params": params, "context": page("a")})
        third = reply_to(host, 3)
        assert third["error"]["code"] == "quota_exceeded", third
        if declared:
            assert model_server.requests == []  # refused before any request
    finally:
        host.kill()


def test_uploads_in_flight_count_toward_the_quota(home: Path, model_server: ModelServer) -> None:
    config = home / "config.toml"
    config.write_text("quota_per_partition_bytes = 1000000\n")
    data = os.urandom(600_000)
    url = model_server.add("/m.bin", data)
    host = HostProcess(home, WEBMODELS_CONFIG=str(config))
    try:
        begin = {"sha256": "cd" * 32, "size": 600_000}
        first = host.result("cos.write.begin", begin, context=page("a"))
        second = host.call("cos.write.begin", begin, context=page("a"))
        assert second["error"]["code"] == "quota_exceeded", second
        download = host.call("models.load", load(url, data, size=len(data)), context=page("a"))
        assert download["error"]["code"] == "quota_exceeded", download
        assert host.result("cos.write.begin", begin, context=page("b"))  # b's own quota
        host.result("cos.write.abort", first, context=page("a"))
        assert host.result("cos.write.begin", begin, context=page("a"))
    finally:
        host.kill()


def test_pages_keep_a_share_of_the_disk_free(home: Path) -> None:
    """Without `quota_total_bytes`, pages get `quota_exceeded` while less than
    `quota_keep_free_fraction` of the disk's size is free (here: a share no real disk
    has free), the same reply as a site over its own quota; the user is not limited."""
    config = home / "config.toml"
    config.write_text("quota_keep_free_fraction = 0.999999\nquota_per_partition_bytes = 10\n")
    host = HostProcess(home, WEBMODELS_CONFIG=str(config))
    try:
        full = host.call("cos.write.begin", {"sha256": "ab" * 32, "size": 1}, context=page("a"))
        assert full["error"]["code"] == "quota_exceeded", full
        own_config = home / "own.toml"
        own_config.write_text("quota_keep_free_fraction = 0\nquota_per_partition_bytes = 10\n")
        other = HostProcess(home, WEBMODELS_CONFIG=str(own_config))
        try:  # no share kept free: only a's own quota refuses
            small, big = ({"sha256": "ab" * 32, "size": n} for n in (1, 11))
            assert other.call("cos.write.begin", small, context=page("a"))["ok"]
            own = other.call("cos.write.begin", big, context=page("a"))
        finally:
            other.kill()
        assert full["error"] == own["error"]
        # The user (CLI, popup) has no such rule.
        assert host.result("cos.write.begin", {"sha256": "ab" * 32, "size": 1000})
    finally:
        host.kill()


# -- the rules as pure functions, with the disk's figures given (no disk is filled) ------


def test_the_store_wide_state_does_not_depend_on_the_size() -> None:
    limits = PageLimits(per_partition=10 * GiB, total=None, keep_free_fraction=0.1)
    disk = DiskFigures(size=500 * GiB, free=60 * GiB)
    assert not limits.store_full(stored=0, in_flight=InFlight(), disk=disk)
    # Transfers in flight count with what they have still to write.
    assert limits.store_full(stored=0, in_flight=InFlight(20 * GiB, 5 * GiB), disk=disk)
    assert not limits.store_full(stored=0, in_flight=InFlight(20 * GiB, 15 * GiB), disk=disk)
    assert limits.store_full(stored=0, in_flight=InFlight(), disk=DiskFigures(500 * GiB, 49 * GiB))
    ceiling = PageLimits(per_partition=10 * GiB, total=20 * GiB)
    assert not ceiling.store_full(stored=15 * GiB, in_flight=InFlight(4 * GiB), disk=disk)
    assert ceiling.store_full(stored=15 * GiB, in_flight=InFlight(5 * GiB), disk=disk)


def test_a_partitions_cap_is_fixed_figures_only() -> None:
    """The cap tells a page no more than its own quota, the ceiling, or the disk's size
    class (a power of two): never the free space, never what others hold."""
    limits = PageLimits(per_partition=10 * GiB, keep_free_fraction=0.1)
    small = DiskFigures(size=64 * 10**9, free=1)
    assert limits.partition_cap(small) == 4 * GiB  # 6.4 GB of the 64 GB disk, rounded down
    assert limits.partition_cap(DiskFigures(size=60 * 10**9, free=59 * 10**9)) == 4 * GiB
    assert limits.partition_cap(DiskFigures(size=2000 * GiB, free=1)) == 10 * GiB
    assert PageLimits(per_partition=10 * GiB, total=3 * GiB).partition_cap(small) == 3 * GiB
    off = PageLimits(per_partition=10 * GiB, keep_free_fraction=0)
    assert off.partition_cap(small) == 10 * GiB


def test_page_room_with_given_disk_figures(tmp_path: Path) -> None:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    try:
        limits = PageLimits(per_partition=1000, keep_free_fraction=0.1)
        mine = RoomQuestion(
            partition_key="p", size=None, uploads_mine=InFlight(300), uploads_all=InFlight(300)
        )
        roomy = DiskFigures(size=10**12, free=5 * 10**11)
        assert page_room(store.index, limits, mine, roomy) == 700
        errors = []
        for disk, size in ((roomy, 701), (DiskFigures(10**12, 10**11 - 1), 1)):
            question = RoomQuestion(
                partition_key="p", size=size, uploads_mine=InFlight(300), uploads_all=InFlight(300)
            )
            with pytest.raises(HostError) as caught:
                page_room(store.index, limits, question, disk)
            errors.append(caught.value.to_wire())
        assert errors[0] == errors[1] and errors[0]["code"] == "quota_exceeded"
    finally:
        store.close()
