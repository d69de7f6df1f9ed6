"""Where files are cut: tensors at their boundaries, the rest by content; a broken
container still round-trips; a malformed recipe is refused."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import msgpack
import numpy as np
import pytest

from support.containers import write_onnx, write_safetensors
from webmodels.store.segments import SegmentStore, decode_recipe, plan, reconstruct, split
from webmodels.store.segments.recipe import RecipeInvalid


def test_a_truncated_onnx_or_a_lying_header_falls_back_to_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    tensors = [rng.random(30_000, dtype=np.float32) for _ in range(3)]
    write_onnx(tmp_path / "m.onnx", tensors)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((tmp_path / "m.onnx").read_bytes()[:-50_000])
    lying = tmp_path / "lying.safetensors"
    header = b'{"t": {"dtype": "F32", "shape": [9], "data_offsets": [0, 99999999]}}'
    lying.write_bytes(struct.pack("<Q", len(header)) + header + rng.bytes(200_000))
    store = SegmentStore(tmp_path / "store")
    for path in (cut, lying):
        assert plan(path).container == "chunks"
        recipe = store.ingest(path)
        assert b"".join(reconstruct(store, recipe)) == path.read_bytes()


def test_onnx_with_weights_in_if_branches_and_constants_is_cut_at_each_tensor(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(2)
    tensors = [rng.random(2000 + 100 * i, dtype=np.float32) for i in range(8)]
    write_onnx(tmp_path / "m.onnx", tensors)  # initializers, Constant, If branches
    digests = {s.digest.hex for s in split(tmp_path / "m.onnx").segments}
    assert {hashlib.sha256(t.tobytes()).hexdigest() for t in tensors} <= digests
    assert plan(tmp_path / "m.onnx").container == "onnx"


def test_an_insertion_changes_only_the_chunks_around_it(tmp_path: Path) -> None:
    data = np.random.default_rng(3).bytes(4 << 20)
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "b.bin").write_bytes(data[: 2 << 20] + b"inserted" * 100 + data[2 << 20 :])
    a, b = split(tmp_path / "a.bin"), split(tmp_path / "b.bin")
    assert plan(tmp_path / "a.bin").container == "chunks"
    shared = {s.digest for s in a.segments} & {s.digest for s in b.segments}
    shared_bytes = sum(s.size for s in a.segments if s.digest in shared)
    assert shared_bytes >= 0.9 * len(data)


def test_safetensors_variants_share_their_tensors(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    tensors = [rng.random(50_000, dtype=np.float32) for _ in range(4)]
    write_safetensors(tmp_path / "a.safetensors", tensors)
    write_safetensors(tmp_path / "b.safetensors", tensors[::-1])  # another order
    store = SegmentStore(tmp_path / "store")
    store.ingest(tmp_path / "a.safetensors")
    store.ingest(tmp_path / "b.safetensors")
    assert store.physical_bytes() == sum(t.nbytes for t in tensors)


@pytest.mark.parametrize(
    "value",
    [
        [2, 0, []],  # another version
        [1, 5, [b"abcd"]],  # parts do not add up
        [1, 5000, [b"x" * 5000]],  # inline past the limit
        [1, 4, [[b"short", 4]]],  # not a 32-byte digest
        [1, 0, [[b"\0" * 32, 0]]],  # an empty segment
    ],
)
def test_a_malformed_recipe_is_refused(value: object) -> None:
    with pytest.raises(RecipeInvalid):
        decode_recipe(msgpack.packb(value, use_bin_type=True))
