"""ONNX models whose weights live in external-data files, generated at test time:
a MatMul chain ``y = ((x @ W0) @ W1) …`` with every ``Wi`` in ``model.onnx_data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper, numpy_helper


def matmul_chain(
    folder: Path,
    *,
    width: int = 256,
    layers: int = 4,
    name: str = "model.onnx",
    data: str = "model.onnx_data",
) -> Path:
    """Writes ``folder/name`` and ``folder/data`` (width * width * layers * 4 bytes)."""
    rng = np.random.default_rng(7)
    weights = [
        numpy_helper.from_array(
            (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), f"w{i}"
        )
        for i in range(layers)
    ]
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
    external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location=data, size_threshold=0
    )
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / name))
    return folder / name


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
