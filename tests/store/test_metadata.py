"""What a stored file is: ONNX metadata read from real model files, external-data
refusal, and the format sniffed from an opaque blob's first bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.models import real_model, tiny_model
from webmodels.errors import HostError
from webmodels.store.metadata import ModelMetadata, read_onnx_metadata, sniff_format

OPSET = [helper.make_opsetid("", 17)]


def save(model: Any, path: Path, *, ir_version: int = 8) -> Path:
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_dims_keep_names_sizes_and_unknowns(tmp_path: Path) -> None:
    shape = ["batch", 3, None]  # dim_param, dim_value, neither
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])  # a scalar
    nodes = [helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [x], [y])
    path = save(helper.make_model(graph, opset_imports=OPSET), tmp_path / "m.onnx")

    meta = read_onnx_metadata(path)

    assert meta.inputs[0].dims == ("batch", 3, None)
    assert meta.outputs[0].dims == ()
    wire = meta.to_json()
    assert wire["inputs"] == [{"name": "x", "type": "float32", "dims": ["batch", 3, None]}]
    assert ModelMetadata.from_json(json.loads(json.dumps(wire))) == meta


def test_element_types_have_their_web_names(tmp_path: Path) -> None:
    types = {
        "f32": TensorProto.FLOAT,
        "i64": TensorProto.INT64,
        "flag": TensorProto.BOOL,
        "half": TensorProto.FLOAT16,
        "text": TensorProto.STRING,
    }
    inputs = [helper.make_tensor_value_info(n, t, [2]) for n, t in types.items()]
    outputs = [helper.make_tensor_value_info(f"{n}_out", t, [2]) for n, t in types.items()]
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n in types]
    graph = helper.make_graph(nodes, "types", inputs, outputs)
    path = save(helper.make_model(graph, opset_imports=OPSET), tmp_path / "m.onnx")

    meta = read_onnx_metadata(path)

    assert [(v.name, v.type) for v in meta.inputs] == [
        ("f32", "float32"),
        ("i64", "int64"),
        ("flag", "bool"),
        ("half", "float16"),
        ("text", "string"),
    ]
    assert [v.type for v in meta.outputs] == [v.type for v in meta.inputs]


def test_initializers_listed_as_graph_inputs_are_not_inputs(tmp_path: Path) -> None:
    # IR < 4 required every initializer to appear among the graph inputs too.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    bias = numpy_helper.from_array(np.zeros(4, dtype=np.float32), name="b")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"])], "g", [x, b], [y], [bias]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    path = save(model, tmp_path / "ir3.onnx", ir_version=3)

    meta = read_onnx_metadata(path)

    assert [v.name for v in meta.inputs] == ["x"]
    assert meta.ir_version == 3


def test_opsets_producer_and_nodes_in_subgraphs(tmp_path: Path) -> None:
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])
    then_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["o"])], "then", [], [out])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["o"])], "else", [], [out])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch)
    graph = helper.make_graph([node], "g", [cond, x], [y])
    model = helper.make_model(
        graph,
        opset_imports=[*OPSET, helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="exporter",
        producer_version="9.1",
    )

    meta = read_onnx_metadata(save(model, tmp_path / "if.onnx"))

    assert meta.opsets == {"ai.onnx": 17, "ai.onnx.ml": 3}
    assert meta.producer == "exporter 9.1"
    assert meta.node_count == 3


def test_the_real_magika_model(tmp_path: Path) -> None:
    meta = read_onnx_metadata(real_model("magika"))

    assert meta.format == "onnx"
    assert [(v.name, v.type, v.dims and v.dims[-1]) for v in meta.inputs] == [
        ("bytes", "int32", 2048)
    ]
    assert [(v.name, v.type) for v in meta.outputs] == [("target_label", "float32")]
    assert set(meta.opsets) == {"ai.onnx", "ai.onnx.ml"}


@pytest.mark.parametrize(
    "content", [b"", b"\x00" * 64, b"hello world\n", b"PK\x03\x04 a zip file"], ids=repr
)
def test_files_that_are_not_onnx_are_invalid(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(content)

    with pytest.raises(HostError) as caught:
        read_onnx_metadata(path)

    assert caught.value.code == "model_invalid"


# -- external data anywhere in the model -------------------------------------------------


def external(name: str, location: str) -> TensorProto:
    tensor = numpy_helper.from_array(np.ones(4, dtype=np.float32), name=name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def in_subgraph(location: str) -> Any:
    """An If whose then-branch reads an initializer kept in another file."""
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])
    then_branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["o"])], "then", [], [out], [external("w", location)]
    )
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "else", [], [out])
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
    return helper.make_model(graph, opset_imports=OPSET)


def in_function(location: str) -> Any:
    """A model-local function whose Constant is kept in another file."""
    body = [
        helper.make_node("Constant", [], ["k"], value=external("k", location)),
        helper.make_node("Add", ["a", "k"], ["r"]),
    ]
    function = helper.make_function("local", "AddK", ["a"], ["r"], body, OPSET)
    graph = helper.make_graph(
        [helper.make_node("AddK", ["x"], ["y"], domain="local")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    return helper.make_model(
        graph, opset_imports=[*OPSET, helper.make_opsetid("local", 1)], functions=[function]
    )


@pytest.mark.parametrize("build", [in_subgraph, in_function])
def test_external_data_in_subgraphs_and_functions_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    # The onnx checker resolves external data against the current folder: with a file
    # of that name there, only our own scan stands between the model and the store.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    beside = tmp_path / "beside.onnx"
    outside = tmp_path / "outside.onnx"
    onnx.save(build("weights.bin"), str(beside))
    onnx.save(build("../../etc/passwd"), str(outside))

    with pytest.raises(HostError) as split:
        read_onnx_metadata(beside)
    with pytest.raises(HostError) as unsafe:
        read_onnx_metadata(outside)

    assert split.value.code == "model_invalid"
    assert "separate file" in split.value.message
    assert unsafe.value.code == "model_unsafe"


def test_a_model_without_external_data_passes_the_scan(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "m.onnx", weight_bytes=100)
    assert read_onnx_metadata(path).inputs[0].name == "x"


# -- formats of opaque blobs ---------------------------------------------------------------


def safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"GGUF\x03\x00\x00\x00" + b"\x00" * 32, "gguf"),
        (b"\x1c\x00\x00\x00TFL3\x00\x00" + b"\x00" * 32, "tflite"),
        (safetensors_bytes(), "safetensors"),
        (b"\x00asm\x01\x00\x00\x00", "wasm"),
        (b'  \n{"vocab": {}}', "json"),
        (b"[1, 2, 3]", "json"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "binary"),
        (b"", "binary"),
    ],
    ids=["gguf", "tflite", "safetensors", "wasm", "json-object", "json-array", "png", "empty"],
)
def test_sniff_format(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "blob"
    path.write_bytes(content)
    assert sniff_format(path) == expected
