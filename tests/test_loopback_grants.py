"""Memory held by loopback grants is bounded (host/webmodels/loopback.py; PRIVACY.md,
hole 15): a grant of a session output keeps its bytes alive after the output store
dropped them, so a page re-opening outputs could hold up to 256 of them beyond the
output store's bound. Real server, real HTTP requests."""

from __future__ import annotations

import gc
import os
import tracemalloc

import pytest
import requests

from support.idle import EXTENSION
from webmodels.errors import HostError
from webmodels.loopback import LoopbackServer, allowed_origins
from webmodels.runtime.outputs import OutputStore

MiB = 1 << 20


def test_grants_of_dropped_outputs_hold_bounded_memory() -> None:
    """A page runs and opens output after output; the store keeps 4 MiB of outputs
    and the grants at most 4 MiB more for the page, whatever it does."""
    outputs = OutputStore(max_bytes=4 * MiB)
    server = LoopbackServer(
        allowed_origins(None), max_grant_bytes=4 * MiB, max_total_grant_bytes=8 * MiB
    )
    tracemalloc.start()
    try:
        granted = refused = 0
        for _ in range(40):
            ref = outputs.put("site-a", os.urandom(MiB))
            try:
                server.issue_bytes(outputs.get(ref, "site-a"), owner="site-a")
                granted += 1
            except HostError as exc:
                assert exc.code == "busy"
                refused += 1
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
    print(f"\n40 outputs of 1 MiB: {granted} granted, {refused} busy, {held / MiB:.1f} MiB held")
    assert held < 10 * MiB  # 4 in the output store + 4 behind grants, and change
    assert granted == 4 and refused == 36


def test_the_bound_is_per_partition_and_the_ceiling_answers_alike() -> None:
    server = LoopbackServer(allowed_origins(None), max_grant_bytes=1000, max_total_grant_bytes=1400)
    try:
        a1, a2, b1 = os.urandom(600), os.urandom(600), os.urandom(600)
        first = server.issue_bytes(a1, owner="a").url
        second = server.issue_bytes(a1, owner="a").url  # the same output: nothing more
        with pytest.raises(HostError) as own_limit:
            server.issue_bytes(a2, owner="a")
        server.issue_bytes(os.urandom(300), owner="b")  # b's room is b's own
        with pytest.raises(HostError) as ceiling:
            server.issue_bytes(b1, owner="b")  # b is within its bound, the host is not
        assert (own_limit.value.code, own_limit.value.message) == (
            ceiling.value.code,
            ceiling.value.message,
        )
        assert "b" not in ceiling.value.message.split() and ceiling.value.details == {}
        # Reading its grants frees their room.
        for url in (first, second):
            assert requests.get(url, headers={"Origin": EXTENSION}, timeout=10).content == a1
        server.issue_bytes(a2, owner="a")
    finally:
        server.close()
