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
