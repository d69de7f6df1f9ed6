"""Timing of writes: site B cannot tell from how long a Cross-Origin Storage write takes
that site A holds the same bytes.

Each pair is a fresh site B writing two blobs of the same size: one site A stored
before, one never stored. Both write paths are measured: native messaging
(`cos.write.begin`/`chunk` untimed, the timed part is `cos.write.commit`, where
publishing happens) and the fast path (`cos.write.open` untimed, the timed part is the
PUT of the bytes to the one-time loopback URL, which answers once they are
published). Same method as tests/privacy/test_timing.py: interleaved pairs in a random
order, Wilcoxon signed-rank, a low p confirmed by a second, independent round, and the
median difference under 1 ms. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from privacy.test_timing import LOAD_PAIRS, PAGE_A, SIZE, WARM_UP, check
from support.host import HostProcess
from webmodels.config import CHROMIUM_EXTENSION_ID

EXTENSION = f"chrome-extension://{CHROMIUM_EXTENSION_ID}"
Prepare = Callable[[bytes, dict[str, Any]], Callable[[], None]]


def site(n: int) -> dict[str, Any]:
    origin = f"http://s{n}.localhost:8000"
    return {"partition": {"top_site": origin, "origin": origin}, "user_activation": True}


def begin_and_send(host: HostProcess, data: bytes, context: dict[str, Any]) -> str:
    """An upload holding all of `data`, not yet committed; its id."""
    params = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    upload_id: str = host.result("cos.write.begin", params, context=context)["upload_id"]
    chunk = {"upload_id": upload_id, "offset": 0, "data": base64.b64encode(data).decode()}
    assert host.result("cos.write.chunk", chunk, context=context)["received"] == len(data)
    return upload_id


def committer(host: HostProcess) -> Prepare:
    """Native messaging: begin and send now; the returned call commits."""

    def prepare(data: bytes, context: dict[str, Any]) -> Callable[[], None]:
        upload_id = begin_and_send(host, data, context)

        def commit() -> None:
            reply = host.call("cos.write.commit", {"upload_id": upload_id}, context=context)
            assert reply["ok"], reply

        return commit

    return prepare


def putter(host: HostProcess) -> Prepare:
    """The fast path: open a write URL now; the returned call PUTs the bytes to it."""

    def prepare(data: bytes, context: dict[str, Any]) -> Callable[[], None]:
        params = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        url = host.result("cos.write.open", params, context=context)["url"]

        def send() -> None:
            reply = requests.put(url, data=data, headers={"Origin": EXTENSION}, timeout=30)
            assert reply.status_code == 200, reply.text

        return send

    return prepare


def store_for_a(host: HostProcess, data: bytes) -> None:
    upload_id = begin_and_send(host, data, PAGE_A)
    assert host.call("cos.write.commit", {"upload_id": upload_id}, context=PAGE_A)["ok"]


def found(host: HostProcess, data: bytes, context: dict[str, Any]) -> bool:
    sha256 = hashlib.sha256(data).hexdigest()
    return bool(host.result("cos.lookup", {"sha256": sha256}, context=context)["found"])


def measure_writes(
    host: HostProcess, prepare: Prepare, sites: Iterator[int], *, seed: int
) -> list[float]:
    """held - never, in seconds, for each pair of writes by a fresh site (in a random
    order within the pair), after a warm-up; only the publishing step is timed."""
    held = {n: os.urandom(SIZE) for n in range(-WARM_UP, LOAD_PAIRS)}
    for data in held.values():
        store_for_a(host, data)
    rng = random.Random(seed)
    diffs = []
    for n in range(-WARM_UP, LOAD_PAIRS):
        context = site(next(sites))
        writes = {"held": held[n], "never": os.urandom(SIZE)}
        order = rng.sample(sorted(writes), 2)
        calls = {which: prepare(writes[which], context) for which in order}
        times = {}
        for which in order:
            started = time.perf_counter()
            calls[which]()
            times[which] = time.perf_counter() - started
        if n >= 0:
            diffs.append(times["held"] - times["never"])
    # Not vacuous: A held the bytes first, and the last site now holds both.
    assert found(host, held[LOAD_PAIRS - 1], PAGE_A)
    assert found(host, held[LOAD_PAIRS - 1], context) and found(host, writes["never"], context)
    return diffs


def test_native_write_takes_as_long_for_bytes_another_site_holds(home: Path) -> None:
    host = HostProcess(home)
    sites = iter(range(10**6))
    try:
        check(
            "cos.write.commit (native messaging)",
            lambda attempt: measure_writes(host, committer(host), sites, seed=40 + attempt),
        )
    finally:
        host.kill()


def test_loopback_write_takes_as_long_for_bytes_another_site_holds(home: Path) -> None:
    host = HostProcess(home)
    sites = iter(range(10**6, 2 * 10**6))
    try:
        check(
            "cos.write.open PUT (loopback)",
            lambda attempt: measure_writes(host, putter(host), sites, seed=50 + attempt),
        )
    finally:
        host.kill()
