"""The worker's rewrite of a compiled graph kept as segments (runtime/compiled_relink.py):
a main-graph tensor that is exactly one segment names that segment's file; a tensor in
a subgraph (ONNX Runtime refuses hard-linked files there) or one that is not a whole
segment is embedded from the parts; a tensor placed outside the weights is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from webmodels.errors import HostError
from webmodels.runtime.compiled_relink import relink

WEIGHTS = "weights.bin"


def external(name: str, data: bytes, offset: int) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(np.frombuffer(data, np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", WEIGHTS), ("offset", str(offset)), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def weights_model(big: bytes, small: bytes, inner: bytes) -> onnx.ModelProto:
    """A graph whose weights file holds [big][small][inner]: ``big`` and ``small``
    main-graph tensors, ``inner`` an initializer of an ``If`` branch."""
    branch = helper.make_graph(
        [helper.make_node("Identity", ["inner"], ["out"])],
        "branch",
        [],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2048])],
        [external("inner", inner, len(big) + len(small))],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
        "main",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2048])],
        [external("big", big, 0), external("small", small, len(big))],
    )
    return helper.make_model(graph)


def test_main_graph_segments_are_named_and_the_rest_embedded(tmp_path: Path) -> None:
    big, small, inner = (
        np.full(n, v, np.float32).tobytes() for n, v in ((4096, 1), (8, 2), (2048, 3))
    )
    segment_hex = hashlib.sha256(big).hexdigest()
    inner_hex = hashlib.sha256(inner).hexdigest()
    (tmp_path / segment_hex).write_bytes(big)
    (tmp_path / inner_hex).write_bytes(inner)
    # weights.bin as a recipe: [big: a segment][small: inline][inner: a segment]
    parts = [
        [segment_hex, str(tmp_path / segment_hex), len(big)],
        small,
        [inner_hex, str(tmp_path / inner_hex), len(inner)],
    ]
    model = weights_model(big, small, inner)
    files = relink(model, WEIGHTS, parts)
    assert files == {
        segment_hex: {"path": str(tmp_path / segment_hex), "sha256": segment_hex, "size": len(big)}
    }
    by_name = {t.name: t for t in model.graph.initializer}
    entries = {e.key: e.value for e in by_name["big"].external_data}
    assert entries == {"location": segment_hex, "offset": "0", "length": str(len(big))}
    assert by_name["small"].raw_data == small
    assert by_name["small"].data_location == TensorProto.DEFAULT
    [sub] = model.graph.node[0].attribute[0].g.initializer
    assert sub.raw_data == inner and not sub.external_data

    model.graph.initializer.append(external("beyond", small, len(big) + len(small) + len(inner)))
    with pytest.raises(HostError) as refused:
        relink(model, WEIGHTS, parts)
    assert refused.value.code == "model_unsafe"


def test_segments_in_a_pack_are_named_at_their_offset_and_read_from_it(tmp_path: Path) -> None:
    """Parts ``[hex, pack path, size, offset]``: a whole segment names the pack (its
    name, the segment's offset; the ref has the pack's size and no SHA-256 of its
    own); an embedded tensor is read from its offset in the pack."""
    big, small, inner = (
        np.full(n, v, np.float32).tobytes() for n, v in ((4096, 1), (8, 2), (2048, 3))
    )
    pack = tmp_path / "p1.pack"
    layout = b"\xee" * 8192 + big + b"\xee" * (4096 - len(big) % 4096) + inner + b"\xee" * 100
    pack.write_bytes(layout)
    inner_at = 8192 + len(big) + 4096 - len(big) % 4096
    parts = [
        [hashlib.sha256(big).hexdigest(), str(pack), len(big), 8192],
        small,
        [hashlib.sha256(inner).hexdigest(), str(pack), len(inner), inner_at],
    ]
    model = weights_model(big, small, inner)
    files = relink(model, WEIGHTS, parts)
    assert files == {"p1.pack": {"path": str(pack), "sha256": None, "size": len(layout)}}
    [big_tensor] = [t for t in model.graph.initializer if t.name == "big"]
    entries = {e.key: e.value for e in big_tensor.external_data}
    assert entries == {"location": "p1.pack", "offset": "8192", "length": str(len(big))}
    [sub] = model.graph.node[0].attribute[0].g.initializer
    assert sub.raw_data == inner
