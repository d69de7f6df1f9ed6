"""The ONNX tensor scan (`onnx_spans`) against onnx's own parse: on random models
(initializers raw and packed, sparse initializers, Constant tensors, If subgraphs
nested, functions, external data) the bytes at the spans it finds are exactly the
tensors onnx reads, and a cut or corrupted model is refused as `ContainerInvalid`
(the file is then chunked by content), never another error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from webmodels.store.protowire import WireCaps
from webmodels.store.segments.onnx_spans import external_spans, onnx_spans, scan_model
from webmodels.store.segments.spans import ContainerInvalid

KINDS = ("raw", "float_data", "double_data", "external", "external-no-length")
PLACES = ("initializer", "sparse", "constant", "constants", "if", "function")


def make_tensor(rng: np.random.Generator, name: str, kind: str) -> TensorProto:
    count = int(rng.integers(1, 40))
    if kind == "float_data":
        return helper.make_tensor(name, TensorProto.FLOAT, [count], rng.random(count).tolist())
    if kind == "double_data":
        return helper.make_tensor(name, TensorProto.DOUBLE, [count], rng.random(count).tolist())
    tensor = helper.make_tensor(name, TensorProto.UINT8, [count], rng.bytes(count), raw=True)
    if kind.startswith("external"):
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        entries = {"location": "weights.bin", "offset": str(int(rng.integers(0, 1 << 40)))}
        if kind == "external":
            entries["length"] = str(count)
        for key, value in entries.items():
            tensor.external_data.add(key=key, value=value)
    return tensor


def make_model(seed: int, tensors: list[tuple[str, str]], depth: int) -> onnx.ModelProto:
    """Tensors of the given kinds placed where given; If branches nested ``depth`` deep."""
    rng = np.random.default_rng(seed)
    inits: list[TensorProto] = []
    sparse: list[onnx.SparseTensorProto] = []
    nodes: list[onnx.NodeProto] = []
    branch: list[onnx.NodeProto] = []
    fn_nodes: list[onnx.NodeProto] = []
    for i, (kind, place) in enumerate(tensors):
        tensor = make_tensor(rng, f"t{i}", kind)
        if place == "initializer":
            inits.append(tensor)
        elif place == "sparse":
            indices = helper.make_tensor(f"i{i}", TensorProto.INT64, [1], bytes(8), raw=True)
            sparse.append(helper.make_sparse_tensor(tensor, indices, [64]))
        elif place in ("constant", "if", "function"):
            node = helper.make_node("Constant", [], [f"c{i}"], value=tensor, name=f"n{i}")
            {"constant": nodes, "if": branch, "function": fn_nodes}[place].append(node)
        else:  # a list of tensors in one attribute
            nodes.append(
                helper.make_node("Custom", [], [f"c{i}"], domain="x", values=[tensor, tensor])
            )
    flag = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    for level in range(depth):
        sub = helper.make_graph(branch, f"b{level}", [], [out])
        empty = helper.make_graph([], f"e{level}", [], [out])
        branch = [helper.make_node("If", ["cond"], ["y"], then_branch=sub, else_branch=empty)]
    graph = helper.make_graph([*nodes, *branch], "g", [flag], [out], inits)
    graph.sparse_initializer.extend(sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if fn_nodes:
        model.functions.append(
            helper.make_function("local", "f", [], [n.output[0] for n in fn_nodes], fn_nodes, [])
        )
    return model


def all_tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every tensor as onnx parsed it: graphs, subgraphs, sparse parts, functions."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield from (sparse.values, sparse.indices)
            nodes.extend(graph.node)
            continue
        for attr in nodes.pop().attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)


def expected(model: onnx.ModelProto) -> tuple[Counter[bytes], list[tuple[int, int]]]:
    """The payloads onnx reads (raw bytes; packed floats as little-endian bytes) and
    the (offset, length) of each external tensor with both given."""
    inline: Counter[bytes] = Counter()
    external = []
    for tensor in all_tensors(model):
        if tensor.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            if "length" in entries:
                external.append((int(entries["offset"]), int(entries["length"])))
            continue
        payloads = (
            tensor.raw_data,
            np.array(tensor.float_data, "<f4").tobytes(),
            np.array(tensor.double_data, "<f8").tobytes(),
        )
        inline.update(p for p in payloads if p)
    return inline, sorted(external)


tensor_lists = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(PLACES)), max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), tensors=tensor_lists, depth=st.integers(0, 3))
def test_spans_hold_exactly_the_tensors_onnx_reads(
    seed: int, tensors: list[tuple[str, str]], depth: int, tmp_path: Path
) -> None:
    model = make_model(seed, tensors, depth)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    data = path.read_bytes()
    found = onnx_spans(path)
    parsed = onnx.load_model_from_string(data)  # the graph alone
    inline, external = expected(parsed)
    assert Counter(data[s.offset : s.end] for s in found.inline if s.length) == inline
    assert set(found.external) <= {"weights.bin"}
    assert sorted((s.offset, s.length) for s in found.external.get("weights.bin", [])) == external
    assert sorted(external_spans(path, tmp_path / "weights.bin")) == sorted(
        found.external.get("weights.bin", [])
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), tensors=tensor_lists, cut=st.floats(0, 1), flip=st.booleans()
)
def test_a_cut_or_corrupted_model_is_refused_or_scanned_never_an_error(
    seed: int, tensors: list[tuple[str, str]], cut: float, flip: bool
) -> None:
    data = bytearray(make_model(seed, tensors, 2).SerializeToString())
    at = int(cut * (len(data) - 1))
    if flip:
        data[at] ^= 0xFF
    else:
        del data[at:]
    try:
        found = scan_model(bytes(data), WireCaps())
    except ContainerInvalid:
        return
    assert all(s.offset >= 0 and s.end <= len(data) for s in found.inline)


def test_nesting_past_the_cap_and_junk_are_refused() -> None:
    def field(number: int, payload: bytes) -> bytes:  # length-delimited, length < 2**14
        size = len(payload)
        length = bytes([size]) if size < 0x80 else bytes([size & 0x7F | 0x80, size >> 7])
        return bytes([number << 3 | 2]) + length + payload

    graph = b""
    for _ in range(40):  # a node whose attribute's graph holds a node whose ...
        graph = field(1, field(5, field(6, graph)))
    deep = b"\x08\x07" + field(7, graph)  # ir_version 7, the graph
    shallow = b"\x08\x07" + field(7, field(1, field(5, field(6, b""))))
    assert scan_model(shallow, WireCaps()).inline == []
    for junk in (deep, b"\x08\x07", b"\x0a\xff\xff\xff\xff\x0f", b"\x3a" + b"\xff" * 11):
        with pytest.raises(ContainerInvalid):
            scan_model(junk, WireCaps())
