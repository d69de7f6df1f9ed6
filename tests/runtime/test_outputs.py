"""Kept session outputs (runtime/outputs.py): only their partition reads them, they
expire, and the total held is bounded (the oldest go first)."""

from __future__ import annotations

import pytest

from webmodels.errors import HostError
from webmodels.runtime.outputs import OutputStore


def test_outputs_belong_to_their_partition_expire_and_are_bounded() -> None:
    now = [0.0]
    store = OutputStore(ttl_s=10.0, max_bytes=100, clock=lambda: now[0])
    first = store.put("a", b"x" * 60)
    assert store.get(first, "a") == b"x" * 60
    with pytest.raises(HostError) as other:
        store.get(first, "b")
    with pytest.raises(HostError) as never:
        store.get("0" * 32, "b")
    assert other.value.code == never.value.code == "not_found"
    assert other.value.message == never.value.message
    second = store.put("a", b"y" * 60)  # 120 > 100: the oldest is dropped
    with pytest.raises(HostError):
        store.get(first, "a")
    assert store.get(second, "a") == b"y" * 60
    now[0] = 11.0
    with pytest.raises(HostError):
        store.get(second, "a")  # expired
    with pytest.raises(HostError) as big:
        store.put("a", b"z" * 101)
    assert big.value.code == "too_large"


def test_a_partition_evicts_only_its_own_outputs() -> None:
    """Issue 11, hole 15: one site filling its outputs drops its own oldest, never
    another site's; at the host-wide ceiling a site gets the reply it gets over its own
    limit."""
    store = OutputStore(ttl_s=100.0, max_bytes=300, max_partition_bytes=100)
    theirs = store.put("b", b"b" * 60)
    mine = [store.put("a", bytes([n]) * 60) for n in range(5)]
    assert store.get(theirs, "b") == b"b" * 60
    assert store.get(mine[-1], "a") == bytes([4]) * 60
    with pytest.raises(HostError):
        store.get(mine[0], "a")  # a's own oldest made room
    with pytest.raises(HostError) as own:
        store.put("b", b"x" * 101)  # over b's own limit
    store.put("c", b"c" * 100)
    store.put("d", b"d" * 80)  # the host now holds 300 (b 60, a 60, c 100, d 80)
    with pytest.raises(HostError) as ceiling:
        store.put("e", b"e" * 10)
    assert (ceiling.value.code, ceiling.value.message) == (own.value.code, own.value.message)
    assert ceiling.value.details == own.value.details == {}
    assert store.get(theirs, "b") == b"b" * 60


def test_forgetting_a_site_drops_the_outputs_of_its_partitions() -> None:
    store = OutputStore()
    mine = store.put("https://s.example https://s.example", b"a")
    framed = store.put("https://s.example https://w.example", b"b")
    other = store.put("https://t.example https://s.example", b"c")  # s embedded by t
    assert store.forget_site("https://s.example") == 2
    for ref, owner in ((mine, "https://s.example https://s.example"),
                       (framed, "https://s.example https://w.example")):  # fmt: skip
        with pytest.raises(HostError) as gone:
            store.get(ref, owner)
        assert gone.value.code == "not_found"
    assert store.get(other, "https://t.example https://s.example") == b"c"
