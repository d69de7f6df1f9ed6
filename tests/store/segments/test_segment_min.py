"""The segment minimum (`split.SEGMENT_MIN`): a tensor under it is no segment of its
own and joins the bytes around it, one at or over it still is, and the file still
rebuilds byte for byte; a minimum under the inline limit acts as the inline limit."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import numpy as np
import pytest

from support.containers import write_onnx
from webmodels.store.segments import SegmentStore, reconstruct, split
from webmodels.store.segments.recipe import INLINE_MAX

# the module (the package exports the function `split` under the same name)
split_module = importlib.import_module("webmodels.store.segments.split")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("minimum", [64 << 10, 1024])
def test_tensors_under_the_minimum_join_the_bytes_around_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minimum: int
) -> None:
    rng = np.random.default_rng(7)
    small = [rng.standard_normal(4 << 10).astype(np.float32) for _ in range(6)]  # 16 KiB
    large = [rng.standard_normal(32 << 10).astype(np.float32) for _ in range(3)]  # 128 KiB
    source = tmp_path / "m.onnx"
    write_onnx(source, [*small, *large])
    monkeypatch.setattr(split_module, "SEGMENT_MIN", minimum)
    store = SegmentStore(tmp_path / "store")
    recipe = store.ingest(source)
    held = {s.digest.hex for s in recipe.segments}
    assert {_sha(t.tobytes()) for t in large} <= held
    small_held = {_sha(t.tobytes()) for t in small} & held
    assert small_held == (set() if minimum > INLINE_MAX else {_sha(t.tobytes()) for t in small})
    assert b"".join(reconstruct(store, recipe)) == source.read_bytes()
    assert split(source) == recipe
