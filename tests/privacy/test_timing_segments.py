"""Timing of sessions from segments: site B cannot tell, from how long its first
session of a model takes, that site A made a session of the same bytes before.

A session of a model kept as segments loads a graph rewritten to name the segment
files (runtime/segment_sessions.py). Made at the model's first session, that rewrite
made the first session slower than the later ones, whoever's they were; it is now made
when the file is published (runtime/segment_publish.py), by every publish.

Interleaved pairs through a real host and runtime worker, as in test_timing.py: in each
pair a fresh site B stored two tiny models of the same shape; site A stored one of them
too and made a session of it ("held"), nobody made one of the other ("never"). Each
side is B's ``sessions.create``. The statistic and margins are test_timing_forms.py's:
the Wilcoxon check twice, and a median difference under a median request (at least
10 ms). Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from methods.test_sessions import configure, upload
from privacy import test_timing
from privacy.test_timing import PAGE_A, check, page, paired
from privacy.test_timing_forms import MAX_MEDIAN_S, MAX_MEDIAN_SHARE
from support.host import HostProcess
from support.models import tiny_model

PAIRS = int(os.environ.get("WEBMODELS_TIMING_SEGMENT_PAIRS", "24"))
WARM_UP = 3
WEIGHT = 2 << 20  # one initializer of its own segment: the rewrite names it
DRAINED_S = 60.0  # how long the set-up waits for the graphs published to be linked


@pytest.fixture
def host(home: Path) -> Iterator[HostProcess]:
    configure(home, background_compile=False, background_idle_s=1.0)
    proc = HostProcess(home, WEBMODELS_STORE_SEGMENTS="1")
    yield proc
    proc.kill()


def load(host: HostProcess, digest: str, context: dict[str, Any]) -> None:
    host.result("models.load", {"query": {"sha256": digest}}, context=context)


def session(host: HostProcess, digest: str, context: dict[str, Any]) -> None:
    created = host.result("sessions.create", {"sha256": digest}, context=context)
    host.result("sessions.release", {"session_id": created["session_id"]}, context=context)


def wait_until_linked(home: Path, digest: str) -> None:
    """Wait (a generous deadline, no assertion) for the graph of the last file B
    published to be linked: the host links published graphs one at a time, in order,
    so the earlier ones are then done too. The old code never links at publish: the
    wait runs out and the timing check finds the difference."""
    graph = home / "store-v2" / "linked" / f"{digest}.json"
    started = time.monotonic()
    while not graph.exists() and time.monotonic() < started + DRAINED_S:
        time.sleep(0.05)
    print(f"\nlinked after {time.monotonic() - started:.1f} s: {graph.exists()}")


def test_a_first_session_takes_as_long_when_another_site_made_one(
    host: HostProcess, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(test_timing, "WARM_UP", WARM_UP)  # paired's

    def model(seed: int) -> bytes:
        path = tmp_path / f"{seed}.onnx"
        return tiny_model(path, weight_bytes=WEIGHT, seed=seed).read_bytes()

    def measure(attempt: int) -> list[float]:
        digests: dict[tuple[str, int], str] = {}
        for n in range(-WARM_UP, PAIRS):
            site = page(attempt * 100_000 + n)
            seed = 4 * (n + WARM_UP) + attempt  # fresh models in each round
            held, never = model(seed), model(seed + 2)
            digests["held", n] = upload(host, held, PAGE_A)
            load(host, digests["held", n], PAGE_A)
            session(host, digests["held", n], PAGE_A)  # A made a session of it
            upload(host, held, site)
            digests["never", n] = upload(host, never, site)
            for which in ("held", "never"):
                load(host, digests[which, n], site)
        wait_until_linked(home, digests["never", PAIRS - 1])

        took: list[float] = []

        def side(which: str) -> Any:
            def call(n: int) -> None:
                started = time.perf_counter()  # what `paired` measures: create, release
                session(host, digests[which, n], page(attempt * 100_000 + n))
                took.append(time.perf_counter() - started)

            return call

        diffs = paired(PAIRS, side("held"), side("never"), seed=50 + attempt)
        bound = max(MAX_MEDIAN_S, MAX_MEDIAN_SHARE * statistics.median(took))
        print(
            f"\nmedian session {statistics.median(took) * 1e3:.1f} ms, bound {bound * 1e3:.1f} ms"
        )
        monkeypatch.setattr(test_timing, "MAX_MEDIAN_S", bound)  # check's, this round
        return diffs

    check("first session of a model another site made one of", measure)
