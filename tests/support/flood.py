"""Models a page could upload to exhaust a parser: a chain of millions of ``Identity``
nodes, written straight in the protobuf wire format (building that many NodeProtos
with onnx.helper takes minutes; joining their bytes takes a second or two)."""

from __future__ import annotations

from pathlib import Path

from onnx import TensorProto, helper

MODEL_GRAPH = 0x3A  # ModelProto field 7 (graph), length-delimited


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _node(i: int) -> bytes:
    """GraphProto.node: Identity(t<i>) -> t<i+1> (names stay under 128 bytes)."""
    a, b = b"t%d" % i, b"t%d" % (i + 1)
    body = b"\x0a%c%s\x12%c%s\x22\x08Identity" % (len(a), a, len(b), b)
    return b"\x0a%c%s" % (len(body), body)


def identity_flood(path: Path, nodes: int) -> Path:
    """A valid ONNX model (IR 8, opset 17): ``nodes`` Identity nodes, t0 -> t<nodes>,
    about 32 bytes a node."""
    x = helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info(f"t{nodes}", TensorProto.FLOAT, [1])
    head = helper.make_graph([], "flood", [x], [y]).SerializeToString()
    graph_bytes = b"".join(map(_node, range(nodes))) + head
    model = helper.make_model(
        helper.make_graph([], "", [], []), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    model.ClearField("graph")
    # ModelProto field 1 (ir_version) comes first, as every ONNX writer puts it.
    data = model.SerializeToString() + bytes([MODEL_GRAPH]) + varint(len(graph_bytes))
    with path.open("wb") as fh:
        fh.write(data)
        fh.write(graph_bytes)
    return path
