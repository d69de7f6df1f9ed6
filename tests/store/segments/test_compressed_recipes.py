"""What is no tensor costs little: a parsed container's graph structure and headers
stay inline, compressed in the recipe (recipe-v2), so variants of one model (another
opset, external data, a re-export) cost their unique tensors and little more; an old
recipe-v1 still reads, and a recipe whose compressed bytes lie is refused."""

from __future__ import annotations

import hashlib
import random
import zlib
from pathlib import Path

import msgpack
import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from webmodels.digest import Digest
from webmodels.store.segments import (
    Inline,
    Recipe,
    Segment,
    SegmentStore,
    decode_recipe,
    encode_recipe,
    reconstruct,
)
from webmodels.store.segments.recipe import INLINE_TOTAL_MAX, RecipeInvalid

DIGEST = hashlib.sha256(b"segment").digest()
SEGMENT = Segment(Digest(DIGEST.hex()), 4)


def model_with_graph(tensors: list[np.ndarray], opset: int) -> onnx.ModelProto:
    """Weights and a graph of 1,000 nodes with exporter-style long names and
    metadata (about 0.2 MB of structure, as torch's dynamo exports write)."""
    inits = [numpy_helper.from_array(t, f"model.layers.{i}.weight") for i, t in enumerate(tensors)]
    nodes = []
    for i in range(1000):
        node = helper.make_node(
            "Identity",
            [f"/model/layers.{i}/mlp/act_fn/Mul_output_0" if i else "x"],
            [f"/model/layers.{i + 1}/mlp/act_fn/Mul_output_0"],
            name=f"/model/layers.{i + 1}/mlp/act_fn/Mul",
        )
        node.metadata_props.add(key="namespace", value=f"__main__.Model/layers.{i}: aten.mul")
        nodes.append(node)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("/model/layers.1000/mlp/act_fn/Mul_output_0", 1, [1])
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def variants(folder: Path) -> tuple[list[tuple[Path, Path | None]], int]:
    """Four variants of one model: embedded (opset 17 and 18), external data, and
    re-ordered weights; and the bytes of its distinct tensors."""
    rng = np.random.default_rng(7)
    tensors = [rng.random(n, dtype=np.float32) for n in (200_000, 100_000, 100_000, 4_000)]
    files: list[tuple[Path, Path | None]] = []
    for opset in (17, 18):
        path = folder / f"opset{opset}.onnx"
        onnx.save(model_with_graph(tensors, opset), str(path))
        files.append((path, None))
    external = folder / "external.onnx"
    onnx.save(
        model_with_graph(tensors, 17),
        str(external),
        save_as_external_data=True,
        location="external.onnx.data",
        size_threshold=0,
    )
    files += [(external, None), (folder / "external.onnx.data", external)]
    reordered = folder / "reordered.onnx"
    onnx.save(model_with_graph(tensors[::-1], 17), str(reordered))
    files.append((reordered, None))
    return files, sum(t.nbytes for t in tensors)


def test_variants_cost_their_tensors_and_little_more(tmp_path: Path) -> None:
    """Physical bytes (segment files + recipes) of the four variants stay within 1.05x
    their distinct tensors: each variant's 0.2 MB of graph structure, stored as it
    is, would have made it 1.4 times."""
    files, unique = variants(tmp_path)
    store = SegmentStore(tmp_path / "store")
    recipes = [store.ingest(path, graph=graph) for path, graph in files]
    for (path, _), recipe in zip(files, recipes, strict=True):
        assert b"".join(reconstruct(store, recipe)) == path.read_bytes()
        assert decode_recipe(encode_recipe(recipe)) == recipe
    physical = store.physical_bytes() + sum(len(encode_recipe(r)) for r in recipes)
    structure = sum(r.inline_bytes for r in recipes)
    print(f"unique tensors {unique}, graph structure {structure}, physical {physical}")
    print(f"physical / unique = {physical / unique:.3f}")
    assert store.physical_bytes() == unique  # every segment is a tensor, held once
    assert physical <= 1.05 * unique


def test_inline_bytes_are_compressed_in_the_recipe() -> None:
    graph = b"/model/layers.0/self_attn/q_proj/MatMul_output_0" * 2000
    recipe = Recipe((Inline(graph[:50_000]), SEGMENT, Inline(graph[50_000:])))
    encoded = encode_recipe(recipe)
    assert len(encoded) < len(graph) // 20
    assert decode_recipe(encoded) == recipe
    assert decode_recipe(bytearray(encoded)) == recipe  # not a cached copy: the same


part = st.one_of(
    st.binary(min_size=1, max_size=64).map(Inline),
    st.tuples(st.integers(1, 20_000), st.integers(0, 2**32 - 1)).map(
        lambda n: Inline(random.Random(n[1]).randbytes(n[0]) if n[1] % 2 else bytes(n[0]))
    ),
    st.tuples(st.binary(min_size=32, max_size=32), st.integers(1, 1 << 40)).map(
        lambda d: Segment(Digest(d[0].hex()), d[1])
    ),
)


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(part, max_size=40))
def test_any_recipe_decodes_to_itself(parts: list[Inline | Segment]) -> None:
    """Inline runs of any length (graph structure: not only under 4 KiB) and segments,
    in any order, come back as they were."""
    recipe = Recipe(tuple(parts))
    assert decode_recipe(encode_recipe(recipe)) == recipe


def test_a_recipe_v1_still_reads() -> None:
    """Recipes written before recipe-v2 (inline bytes as msgpack strings)."""
    old = msgpack.packb([1, 12, [b"header", [DIGEST, 4], b"ta"]], use_bin_type=True)
    assert decode_recipe(old) == Recipe((Inline(b"header"), SEGMENT, Inline(b"ta")))


@pytest.mark.parametrize(
    ("parts", "packed", "size"),
    [
        ([4], zlib.compress(b"abcdefgh"), 4),  # inflates past its parts
        ([8], zlib.compress(b"abcd"), 8),  # inflates short of its parts
        ([4], zlib.compress(b"abcd") + b"x", 4),  # bytes after the stream
        ([4], b"not zlib", 4),
        ([4], b"", 4),  # inline parts without bytes
        ([0], zlib.compress(b""), 0),  # an empty inline part
        ([True], zlib.compress(b"a"), 1),  # not a length
        ([INLINE_TOTAL_MAX + 1], zlib.compress(bytes(INLINE_TOTAL_MAX + 1)), INLINE_TOTAL_MAX + 1),
        ([4, [b"short", 4]], zlib.compress(b"abcd"), 8),
    ],
)
def test_a_lying_recipe_v2_is_refused(parts: list[object], packed: bytes, size: int) -> None:
    with pytest.raises(RecipeInvalid):
        decode_recipe(msgpack.packb([2, size, parts, packed], use_bin_type=True))


def test_recipes_kept_decoded_stay_within_their_memory_bound() -> None:
    """Recipes of a few KiB that inflate to 4 MiB each (a hostile or huge graph) are
    not all kept decoded: the cache holds at most 64 MiB of recipe bytes, and a
    recipe read again still decodes to the same parts."""
    from webmodels.store.segments import recipe as recipe_module

    encoded = [encode_recipe(Recipe((Inline(bytes([i]) * (4 << 20)), SEGMENT))) for i in range(40)]
    assert all(len(e) < 1 << 20 for e in encoded)  # small enough to be cached at all
    for data in encoded:
        assert decode_recipe(data).inline_bytes == 4 << 20
    kept = sum(r.inline_bytes for r in recipe_module._decoded.values())
    assert 0 < kept <= 64 << 20
    assert decode_recipe(encoded[0]) == Recipe((Inline(bytes([0]) * (4 << 20)), SEGMENT))
