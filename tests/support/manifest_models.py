"""ONNX models whose weights live in external-data files, generated at test time:
a MatMul chain ``y = ((x @ W0) @ W1) …`` with every ``Wi`` in ``model.onnx_data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper


def matmul_chain(
    folder: Path,
    *,
    width: int = 256,
    layers: int = 4,
    name: str = "model.onnx",
    data: str = "model.onnx_data",
    seed: int = 7,
) -> Path:
    """Writes ``folder/name`` and ``folder/data`` (width * width * layers * 4 bytes).
    The weights go straight to the data file, one layer at a time, so a large model
    costs the test one layer of memory."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = []
    (folder / data).parent.mkdir(parents=True, exist_ok=True)
    with (folder / data).open("wb") as fh:
        for i in range(layers):
            layer = rng.standard_normal((width, width), dtype=np.float32)
            layer /= np.float32(np.sqrt(width))
            offset = fh.tell()
            fh.write(layer.tobytes())
            weights.append(_external(f"w{i}", width, data, offset, layer.nbytes))
    nodes = [
        helper.make_node(
            "MatMul",
            ["x" if i == 0 else f"h{i}", f"w{i}"],
            ["y" if i == layers - 1 else f"h{i + 1}"],
        )
        for i in range(layers)
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (folder / name).write_bytes(model.SerializeToString())
    return folder / name


def _external(name: str, width: int, location: str, offset: int, length: int) -> TensorProto:
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[width, width])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def with_location(graph: Path, location: str) -> None:
    """Rewrites every external tensor of ``graph`` to name ``location`` (an attack)."""
    model = onnx.load(str(graph), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    graph.write_bytes(model.SerializeToString())


def reference_run(graph: Path, x: np.ndarray) -> np.ndarray:
    """What in-process ONNX Runtime computes (it reads the data beside the graph)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])
