"""Model containers built in tests: ONNX (embedded or external data, with tensors in
subgraphs and Constant nodes), safetensors and GGUF-shaped files, from given tensors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GGUF_ALIGN = 32


def onnx_model(tensors: list[np.ndarray]) -> onnx.ModelProto:
    """A model whose tensors sit as initializers, in a Constant node and in both
    branches of an If (a subgraph), in turn."""
    inits, nodes, then_nodes, else_nodes = [], [], [], []
    for i, array in enumerate(tensors):
        tensor = numpy_helper.from_array(array, f"t{i}")
        where = i % 4
        if where in (0, 1):
            inits.append(tensor)
        elif where == 2:
            nodes.append(helper.make_node("Constant", [], [f"c{i}"], value=tensor))
        else:
            target = then_nodes if i % 8 == 3 else else_nodes
            target.append(helper.make_node("Constant", [], [f"s{i}"], value=tensor))
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    branch_out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    then_graph = helper.make_graph(
        [*then_nodes, helper.make_node("Constant", [], ["z"], value=one)], "then", [], [branch_out]
    )
    else_graph = helper.make_graph(
        [*else_nodes, helper.make_node("Constant", [], ["z"], value=one)], "else", [], [branch_out]
    )
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    nodes.append(
        helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)
    )
    graph = helper.make_graph(nodes, "g", [cond], [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def write_onnx(path: Path, tensors: list[np.ndarray], *, external: bool = False) -> None:
    model = onnx_model(tensors)
    if external:
        onnx.save(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=0,
        )
    else:
        onnx.save(model, str(path))


def write_safetensors(path: Path, tensors: list[np.ndarray]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset, blobs = 0, []
    for i, array in enumerate(tensors):
        data = array.tobytes()
        header[f"t{i}"] = {
            "dtype": "F32" if array.dtype == np.float32 else "U8",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, tensors: list[np.ndarray]) -> None:
    """GGUF v3: a few key-values (a string array among them), F32 / I8 tensors."""
    kv = _gguf_string("general.name") + struct.pack("<I", 8) + _gguf_string("test")
    kv += _gguf_string("tokenizer.tokens") + struct.pack("<IIQ", 9, 8, 3)
    kv += b"".join(_gguf_string(t) for t in ("a", "bb", "ccc"))
    kv += _gguf_string("general.alignment") + struct.pack("<II", 4, GGUF_ALIGN)
    infos, data, offset = b"", b"", 0
    for i, array in enumerate(tensors):
        kind = 0 if array.dtype == np.float32 else 24  # F32, I8
        flat = array.reshape(-1)
        infos += _gguf_string(f"t{i}") + struct.pack("<IQIQ", 1, flat.size, kind, offset)
        blob = flat.tobytes()
        blob += b"\0" * (-len(blob) % GGUF_ALIGN)
        data += blob
        offset += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 3) + kv + infos
    head += b"\0" * (-len(head) % GGUF_ALIGN)
    path.write_bytes(head + data)
