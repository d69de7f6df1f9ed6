"""The streaming ONNX reader (hole 3): the same metadata as ``onnx.load`` for real and
hand-built models, and a plain file, never an error, for anything malformed, anything
with external data, or anything past its caps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from support.flood import identity_flood
from support.models import REAL_MODELS, real_model, tiny_model
from webmodels.store.metadata import ModelMetadata, describe_file, read_onnx_metadata
from webmodels.store.onnx_wire import OnnxCaps, WireCapped, WireInvalid, read_wire_metadata
from webmodels.store.protowire import WireCaps

OPSET = [helper.make_opsetid("", 17)]


def save(model: Any, path: Path, *, ir_version: int = 8) -> Path:
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def shapes() -> Any:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])  # a scalar
    s = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, ["k"])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0),
        helper.make_node("SequenceLength", ["s"], ["n"]),
    ]
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    graph = helper.make_graph(nodes, "g", [x, s], [y, n])
    return helper.make_model(graph, opset_imports=OPSET, producer_name="shapes")


def element_types() -> Any:
    kinds = [TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.STRING, TensorProto.UINT64]
    inputs = [helper.make_tensor_value_info(f"i{k}", k, [2]) for k in kinds]
    outputs = [helper.make_tensor_value_info(f"o{k}", k, [2]) for k in kinds]
    nodes = [helper.make_node("Identity", [f"i{k}"], [f"o{k}"]) for k in kinds]
    return helper.make_model(helper.make_graph(nodes, "t", inputs, outputs), opset_imports=OPSET)


def initializers_as_inputs() -> Any:
    # IR < 4 lists every initializer among the graph inputs too.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    bias = numpy_helper.from_array(np.zeros(4, dtype=np.float32), name="b")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"])], "g", [x, b], [y], [bias]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])


def subgraphs() -> Any:
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])
    inner = helper.make_graph([helper.make_node("Relu", ["x"], ["o"])], "inner", [], [out])
    nested_if = helper.make_node("If", ["c"], ["o"], then_branch=inner, else_branch=inner)
    then_branch = helper.make_graph([nested_if], "then", [], [out])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["o"])], "else", [], [out])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    opsets = [*OPSET, helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(
        graph, opset_imports=opsets, producer_name="exporter", producer_version="9.1"
    )


BUILT = {"shapes": shapes, "types": element_types, "subgraphs": subgraphs}


@pytest.mark.parametrize("name", sorted(REAL_MODELS))
def test_real_models_read_as_onnx_reads_them(name: str) -> None:
    path = real_model(name)
    assert describe_file(path) == read_onnx_metadata(path)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_models_read_as_onnx_reads_them(tmp_path: Path, name: str) -> None:
    path = save(BUILT[name](), tmp_path / "m.onnx")
    assert describe_file(path) == read_onnx_metadata(path)


def test_a_value_without_a_shape_has_no_dims(tmp_path: Path) -> None:
    # The checker (so read_onnx_metadata) wants shapes on graph values; onnx.load not.
    u = helper.make_tensor_value_info("u", TensorProto.INT64, None)
    v = helper.make_tensor_value_info("v", TensorProto.INT64, None)
    graph = helper.make_graph([helper.make_node("Identity", ["u"], ["v"])], "g", [u], [v])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=OPSET), str(path))
    meta = read_wire_metadata(path)
    assert [(i.name, i.type, i.dims) for i in (*meta.inputs, *meta.outputs)] == [
        ("u", "int64", None),
        ("v", "int64", None),
    ]


def test_initializers_among_the_inputs_are_left_out_as_onnx_does(tmp_path: Path) -> None:
    path = save(initializers_as_inputs(), tmp_path / "ir3.onnx", ir_version=3)
    meta = describe_file(path)
    assert meta == read_onnx_metadata(path)
    assert [v.name for v in meta.inputs] == ["x"]


def test_weights_are_skipped_not_read(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "big.onnx", weight_bytes=50 << 20)
    # A 50 MB initializer is stepped over with one seek: the reader's field cap,
    # far below its byte count, is never reached.
    caps = OnnxCaps(wire=WireCaps(max_fields=100))
    assert read_wire_metadata(path, caps) == read_onnx_metadata(path)


def test_a_graph_past_the_node_cap_is_a_plain_file(tmp_path: Path) -> None:
    path = identity_flood(tmp_path / "flood.onnx", 1001)
    assert read_wire_metadata(path, OnnxCaps(max_nodes=1001)).node_count == 1001
    with pytest.raises(WireCapped):
        read_wire_metadata(path, OnnxCaps(max_nodes=1000))
    assert describe_file(identity_flood(tmp_path / "big.onnx", 600_000)) == ModelMetadata("binary")


def test_subgraphs_past_the_depth_cap_are_a_plain_file(tmp_path: Path) -> None:
    path = save(subgraphs(), tmp_path / "m.onnx")  # If in If: two levels below the graph
    assert read_wire_metadata(path, OnnxCaps(max_graph_depth=2)).node_count == 5
    with pytest.raises(WireCapped):
        read_wire_metadata(path, OnnxCaps(max_graph_depth=1))


@pytest.mark.parametrize(
    "caps",
    [
        OnnxCaps(max_kept=100),
        OnnxCaps(wire=WireCaps(max_text=4)),
        OnnxCaps(wire=WireCaps(max_seconds=0)),
    ],
    ids=["kept", "text", "time"],
)
def test_other_caps(tmp_path: Path, caps: OnnxCaps) -> None:
    path = identity_flood(tmp_path / "flood.onnx", 5000)
    with pytest.raises(WireCapped):
        read_wire_metadata(path, caps)


def external_initializer(location: str) -> Any:
    tensor = numpy_helper.from_array(np.ones(4, dtype=np.float32), name="w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])
    then_branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["o"])], "then", [], [out], [tensor]
    )
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "else", [], [out])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch)
    inputs = [
        helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])]
    return helper.make_model(helper.make_graph([node], "g", inputs, outputs), opset_imports=OPSET)


@pytest.mark.parametrize("location", ["weights.bin", "../../etc/passwd"])
def test_external_data_in_a_subgraph_makes_a_plain_file(tmp_path: Path, location: str) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(external_initializer(location), str(path))
    with pytest.raises(WireInvalid):
        read_wire_metadata(path)
    assert describe_file(path) == ModelMetadata("binary")


def test_malformed_bytes_make_a_plain_file(tmp_path: Path) -> None:
    whole = tiny_model(tmp_path / "m.onnx", weight_bytes=1000).read_bytes()
    cases = {
        "cut": whole[: len(whole) // 2],
        "cut-in-a-tag": whole[:3],
        "length-past-the-end": b"\x08\x08\x3a\xff\xff\x03\x0a",
        "group": b"\x08\x08\x3b\x3c",
        "no-graph": b"\x08\x08",
        "no-opset": b"\x08\x08\x3a\x00",
        "zero-field": b"\x08\x08\x00",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WireInvalid):
            read_wire_metadata(path)
        assert describe_file(path).format == "binary", name


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
)
def test_damaged_models_never_raise(tmp_path: Path, cut: int, flips: list[tuple[int, int]]) -> None:
    # describe_file stores whatever a page sends: it may only describe it or not.
    data = bytearray(real_model("ocr-cls").read_bytes())
    for at, value in flips:
        data[at % len(data)] = value
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(data[: len(data) - cut]))
    assert isinstance(describe_file(path), ModelMetadata)


@pytest.mark.parametrize(
    "field",
    [b"\x3a\x00", b"\x42\x05\x0a\x01x\x10\x01"],  # an empty graph; an opset import
    ids=["graphs", "opsets"],
)
def test_a_field_repeated_a_million_times_is_capped_not_kept(tmp_path: Path, field: bytes) -> None:
    # Protobuf merges repeated messages; keeping each occurrence would grow with the file.
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x08" + field * 1_000_000)
    with pytest.raises(WireCapped):
        read_wire_metadata(path)
