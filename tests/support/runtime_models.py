"""ONNX models for the runtime tests, built with onnx.helper: one per element type, and
models that misbehave on purpose (exhaust memory, run too long, point outside)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# ORT Web name -> (ONNX element type, numpy dtype of the wire bytes)
WIRE_TYPES: dict[str, tuple[int, str]] = {
    "float32": (TensorProto.FLOAT, "<f4"),
    "float64": (TensorProto.DOUBLE, "<f8"),
    "float16": (TensorProto.FLOAT16, "<f2"),
    "bfloat16": (TensorProto.BFLOAT16, "<u2"),
    "int8": (TensorProto.INT8, "i1"),
    "uint8": (TensorProto.UINT8, "u1"),
    "int16": (TensorProto.INT16, "<i2"),
    "uint16": (TensorProto.UINT16, "<u2"),
    "int32": (TensorProto.INT32, "<i4"),
    "uint32": (TensorProto.UINT32, "<u4"),
    "int64": (TensorProto.INT64, "<i8"),
    "uint64": (TensorProto.UINT64, "<u8"),
    "bool": (TensorProto.BOOL, "u1"),
    "string": (TensorProto.STRING, "object"),
}


def _model(graph: Any, *, opset: int = 21, ir: int = 10, **props: str) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="webmodels-tests"
    )
    model.ir_version = ir
    for key, value in props.items():
        model.metadata_props.add(key=key.replace("_", "."), value=value)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def identity_model(type_name: str) -> onnx.ModelProto:
    """``y = Identity(x)`` for one element type, any rank-3 shape."""
    element = WIRE_TYPES[type_name][0]
    x = helper.make_tensor_value_info("x", element, ["a", "b", "c"])
    y = helper.make_tensor_value_info("y", element, ["a", "b", "c"])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    return _model(graph)


def cast_model(source: str, target: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", WIRE_TYPES[source][0], ["a", "b"])
    y = helper.make_tensor_value_info("y", WIRE_TYPES[target][0], ["a", "b"])
    node = helper.make_node("Cast", ["x"], ["y"], to=WIRE_TYPES[target][0])
    return _model(helper.make_graph([node], "cast", [x], [y]))


def sample(type_name: str, dims: tuple[int, ...], seed: int = 0) -> np.ndarray[Any, Any]:
    """Values of every kind for the type (negatives, NaN and inf for floats)."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(dims))
    if type_name == "string":
        words = ["", "a", "héllo", "日本語", "x\u0000y", "tab\tnew\nline"]
        return np.array([words[i % len(words)] for i in range(count)], dtype=object).reshape(dims)
    if type_name == "bool":
        return rng.integers(0, 2, count).astype("u1").reshape(dims)
    dtype = np.dtype(WIRE_TYPES[type_name][1])
    if type_name in ("float32", "float64", "float16"):
        values = rng.normal(0, 1000, count).astype(dtype)
        values[: min(count, 3)] = [np.nan, np.inf, -0.0][: min(count, 3)]
        return values.reshape(dims)
    raw = rng.integers(0, 256, count * dtype.itemsize, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def wire(type_name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The page's JSON tensor for ``array``."""
    dims = list(array.shape)
    if type_name == "string":
        return {"type": "string", "dims": dims, "data": [str(s) for s in array.ravel()]}
    data = np.ascontiguousarray(array, dtype=WIRE_TYPES[type_name][1]).tobytes()
    return {"type": type_name, "dims": dims, "data": base64.b64encode(data).decode()}


def wire_bytes(tensor: dict[str, Any]) -> bytes | list[str]:
    data = tensor["data"]
    return list(data) if tensor["type"] == "string" else base64.b64decode(data)


def memory_hog_model() -> onnx.ModelProto:
    """``ConstantOfShape(shape)``: asks for as much memory as its input says."""
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [1.0])
    node = helper.make_node("ConstantOfShape", ["shape"], ["y"], value=value)
    return _model(helper.make_graph([node], "hog", [shape], [y]), opset=17, ir=8)


def slow_model() -> onnx.ModelProto:
    """A Loop of ``n`` iterations adding 1: runs as long as its input says."""
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1]),
        ],
        [numpy_helper.from_array(np.ones(1, np.float32), "one")],
    )
    nodes = [
        helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", 9, [], [True])),
        helper.make_node(
            "Constant", [], ["zero"], value=numpy_helper.from_array(np.zeros(1, np.float32))
        ),
        helper.make_node("Loop", ["n", "cond", "zero"], ["y"], body=body),
    ]
    return _model(helper.make_graph(nodes, "slow", [n], [y]), opset=17, ir=8)


def crashing_model() -> onnx.ModelProto:
    """A tiny model marked for the worker's test hook: with WEBMODELS_WORKER_TEST_HOOKS=1
    in the worker's environment, running it kills the worker with SIGSEGV (standing in
    for a model that crashes ONNX Runtime; no real one is known for this version)."""
    return _model(identity_model("float32").graph, webmodels_test="crash-on-run")


def external_data_model(location: str, *, sparse: bool = False) -> onnx.ModelProto:
    """``y = x + w`` where ``w`` keeps its bytes in an external file at ``location``
    (or, ``sparse``, a sparse initializer whose values do)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    weight = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "ext", [x], [y])
    if sparse:
        values = numpy_helper.from_array(np.ones(2, np.float32), "w")
        indices = numpy_helper.from_array(np.array([0, 2], np.int64), "w_indices")
        _external(values, location)
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    else:
        _external(weight, location)
        graph.initializer.append(weight)
    return _model(graph, opset=17, ir=8)


def _external(tensor: TensorProto, location: str) -> None:
    size = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        tensor.external_data.add(key=key, value=value)
