"""ONNX metadata read straight from the protobuf wire format, with caps.

Why not ``onnx.load``: it materialises the whole ``ModelProto`` in the host process,
and a page chooses those bytes (``cos.write``, or a URL it names). A 62 MB upload of
2M ``Identity`` nodes took the host to 1.6 GB and 10 s, holding the GIL, so every
other request waited. The alternative, ``onnx.load`` in a memory- and time-limited
child, costs a process and an ``onnx`` import per stored file and still burns up to
the child's memory limit (half the machine) on such a file; and the metadata needs
almost nothing of the model. So this reader walks the file with `protowire`, decodes
only what `ModelMetadata` holds (IR version, opset imports, producer, the graph's
inputs and outputs with their types and shapes, the node count) and whether any tensor
keeps its data in another file, and skips every other payload (weights, node fields)
by its length. Its memory does not grow with the file; caps on nodes, graph depth,
values kept, fields and time bound its work. A file past a cap, or one that is not
well-formed, raises `WireCapped` / `WireInvalid`: the caller stores it as an opaque
file without metadata.

It does not run ``onnx.checker``: only structure is checked here (an IR version, a
graph, opset imports from IR 3). Whatever ONNX Runtime is handed is checked again, on
its exact bytes, in the runtime worker (`runtime/safety.py`), under that process's
memory and time limits. The user's own ``webmodels import`` keeps the full onnx check.

Protobuf semantics kept: a singular field seen twice keeps the last value, a message
seen twice is merged (repeated fields concatenate), a oneof keeps its last member.
Field numbers are those of onnx/onnx.proto.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from webmodels.store.metadata import ELEMENT_TYPES, ModelMetadata, ValueInfo
from webmodels.store.protowire import LEN, VARINT, WireCapped, WireCaps, WireInvalid, WireReader

__all__ = ["OnnxCaps", "WireCapped", "WireInvalid", "read_wire_metadata"]

_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# TypeProto's oneof "value": field number -> the name protobuf's WhichOneof gives.
_TYPE_KINDS = {
    1: "tensor_type",
    4: "sequence_type",
    5: "map_type",
    7: "opaque_type",
    8: "sparse_tensor_type",
    9: "optional_type",
}
_GRAPH_ATTRS = (6, 11)  # AttributeProto.g, .graphs
_TENSOR_ATTRS = (5, 10)  # AttributeProto.t, .tensors
_SPARSE_ATTRS = (22, 23)  # AttributeProto.sparse_tensor, .sparse_tensors
# Writers emit one graph; protobuf would merge more, each walked twice by `main_graph`.
_MAX_GRAPH_FIELDS = 16
_ATTR_FIELDS = frozenset((*_GRAPH_ATTRS, *_TENSOR_ATTRS, *_SPARSE_ATTRS))


@dataclass(frozen=True, slots=True)
class OnnxCaps:
    # ONNX Runtime is never handed more nodes (sessions.max_nodes' default): a larger
    # graph could not run here anyway, so describing it is not worth the time.
    max_nodes: int = 500_000
    max_graph_depth: int = 32  # subgraphs in subgraphs (protobuf stops at 100 messages)
    max_kept: int = 4 << 20  # about the bytes kept: inputs, outputs, dims, opsets
    wire: WireCaps = field(default_factory=WireCaps)


@dataclass(slots=True)
class _Type:
    kind: str = "unknown"
    elem_type: int = 0
    has_shape: bool = False
    dims: list[int | str | None] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Signature:
    inputs: tuple[ValueInfo, ...]
    outputs: tuple[ValueInfo, ...]


@dataclass(slots=True)
class _Model:
    ir_version: int | None = None
    producer_name: str = ""
    producer_version: str = ""
    opsets: dict[str, int] = field(default_factory=dict)
    graphs: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each


def read_wire_metadata(
    path: Path, caps: OnnxCaps | None = None, *, locations: set[str] | None = None
) -> ModelMetadata:
    """The metadata of the ONNX model at ``path``; `WireInvalid` if it is not a
    well-formed single-file model, `WireCapped` if reading it would pass a cap.

    With ``locations``, a tensor may keep its data in another file (the graph of a
    model manifest): the ``location`` each such tensor names is added to the set ("" for
    none), and the other file is never opened."""
    caps = caps or OnnxCaps()
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        walk = _Walk(WireReader(fh, size, caps.wire), caps, locations)
        model = walk.model(size)
        if model.ir_version is None or model.ir_version < 1 or not model.graphs:
            raise WireInvalid("no IR version or no graph")
        if model.ir_version >= 3 and not model.opsets:
            raise WireInvalid("a model of IR version 3 or later must import an opset")
        signature = walk.main_graph(model.graphs)
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return ModelMetadata(
        format="onnx",
        inputs=signature.inputs,
        outputs=signature.outputs,
        opsets=model.opsets,
        ir_version=model.ir_version,
        producer=producer or None,
        node_count=walk.graph_nodes,
    )


class _Walk:
    def __init__(self, reader: WireReader, caps: OnnxCaps, locations: set[str] | None) -> None:
        self.r = reader
        self.caps = caps
        self.locations = locations
        self.graph_nodes = 0  # nodes of the main graph and its subgraphs (the metadata)
        self._visited = 0  # every node read, functions' too (the cap)
        self._kept = 0

    # -- ModelProto ----------------------------------------------------------------

    def model(self, end: int) -> _Model:
        r, model = self.r, _Model()
        for number, wire in r.fields(end, (1, 2, 3, 7, 8, 25)):
            if number == 1 and wire == VARINT:
                model.ir_version = r.signed()
            elif number == 2 and wire == LEN:
                model.producer_name = r.text()
            elif number == 3 and wire == LEN:
                model.producer_version = r.text()
            elif number == 8 and wire == LEN:
                domain, version = self._opset(r.message())
                self._keep(64 + len(domain))
                model.opsets[domain or "ai.onnx"] = version
            elif number == 7 and wire == LEN:
                end_of_graph = r.message()
                if len(model.graphs) >= _MAX_GRAPH_FIELDS:
                    raise WireCapped(f"the graph field occurs over {_MAX_GRAPH_FIELDS} times")
                model.graphs.append((r.pos, end_of_graph))
                r.seek(end_of_graph)  # walked later, by `main_graph`
            elif number == 25 and wire == LEN:  # FunctionProto
                self._function(r.message())
            else:
                r.skip(wire)
        return model

    def _opset(self, end: int) -> tuple[str, int]:
        r, domain, version = self.r, "", 0
        for number, wire in r.fields(end, (1, 2)):
            if number == 1 and wire == LEN:
                domain = r.text()
            elif number == 2 and wire == VARINT:
                version = r.signed()
            else:
                r.skip(wire)
        return domain, version

    def _function(self, end: int) -> None:
        for number, wire in self.r.fields(end, (7,)):
            if number == 7 and wire == LEN:  # FunctionProto.node
                self._node(self.r.message(), depth=1, counted=False)
            else:
                self.r.skip(wire)

    # -- GraphProto ----------------------------------------------------------------

    def main_graph(self, spans: list[tuple[int, int]]) -> _Signature:
        """Inputs (less initializers, as IR < 4 lists those among the inputs too) and
        outputs of the main graph, which protobuf merges from every occurrence."""
        inputs: list[ValueInfo] = []
        outputs: list[ValueInfo] = []
        for start, end in spans:
            self.r.seek(start)
            self._graph(end, depth=0, counted=True, inputs=inputs, outputs=outputs)
        names = {v.name for v in inputs}
        initialized: set[str] = set()
        for start, end in spans:  # a second pass: keeps only names that are inputs
            self.r.seek(start)
            self._initializer_names(end, names, initialized)
        kept = tuple(v for v in inputs if v.name not in initialized)
        return _Signature(kept, tuple(outputs))

    def _graph(
        self,
        end: int,
        *,
        depth: int,
        counted: bool,
        inputs: list[ValueInfo] | None = None,
        outputs: list[ValueInfo] | None = None,
    ) -> None:
        if depth > self.caps.max_graph_depth:
            raise WireCapped(f"subgraphs nested more than {self.caps.max_graph_depth} deep")
        r = self.r
        for number, wire in r.fields(end, (1, 5, 11, 12, 15)):
            if wire != LEN:
                r.skip(wire)
            elif number == 1:  # node
                self._node(r.message(), depth=depth, counted=counted)
            elif number == 5:  # initializer
                self._tensor(r.message())
            elif number == 15:  # sparse_initializer
                self._sparse(r.message())
            elif number == 11 and inputs is not None:
                inputs.append(self._value_info(r.message()))
            elif number == 12 and outputs is not None:
                outputs.append(self._value_info(r.message()))
            else:
                r.skip(wire)

    def _initializer_names(self, end: int, wanted: set[str], found: set[str]) -> None:
        r = self.r
        for number, wire in r.fields(end, (5,)):
            if number == 5 and wire == LEN:
                for inner, inner_wire in r.fields(r.message(), (8,)):
                    if inner == 8 and inner_wire == LEN:  # TensorProto.name
                        name = r.text()
                        if name in wanted:
                            found.add(name)
                    else:
                        r.skip(inner_wire)
            else:
                r.skip(wire)

    # -- NodeProto, AttributeProto ---------------------------------------------------

    def _node(self, end: int, *, depth: int, counted: bool) -> None:
        self._visited += 1
        if self._visited > self.caps.max_nodes:
            raise WireCapped(f"more than {self.caps.max_nodes} nodes")
        self.graph_nodes += counted
        r = self.r
        for number, wire in r.fields(end, (5,)):
            if number == 5 and wire == LEN:  # attribute
                self._attribute(r.message(), depth=depth, counted=counted)
            else:
                r.skip(wire)

    def _attribute(self, end: int, *, depth: int, counted: bool) -> None:
        r = self.r
        for number, wire in r.fields(end, _ATTR_FIELDS):
            if wire != LEN:
                r.skip(wire)
            elif number in _GRAPH_ATTRS:
                self._graph(r.message(), depth=depth + 1, counted=counted)
            elif number in _TENSOR_ATTRS:
                self._tensor(r.message())
            elif number in _SPARSE_ATTRS:
                self._sparse(r.message())
            else:
                r.skip(wire)

    # -- TensorProto: only where its data lives ------------------------------------

    def _tensor(self, end: int) -> None:
        r, location, names = self.r, 0, []
        for number, wire in r.fields(end, (13, 14)):
            if number == 14 and wire == VARINT:  # data_location
                value = r.varint()
                location = value if value in (0, _EXTERNAL) else location
            elif number == 13 and wire == LEN and self.locations is not None:
                names += self._location(r.message())  # external_data
            else:
                r.skip(wire)  # raw_data and the typed arrays: skipped by length
        if location == _EXTERNAL:
            if self.locations is None:
                # A single file cannot carry the file it names (see metadata.py).
                raise WireInvalid("a tensor keeps its data in a separate file")
            self._keep(64 + sum(len(n) for n in names))
            self.locations.add(names[-1] if names else "")  # protobuf: the last one wins

    def _location(self, end: int) -> list[str]:
        """The value of a StringStringEntryProto whose key is ``location``."""
        r, key, value = self.r, "", ""
        for number, wire in r.fields(end, (1, 2)):
            if number in (1, 2) and wire == LEN:
                text = r.text()
                key, value = (text, value) if number == 1 else (key, text)
            else:
                r.skip(wire)
        return [value] if key == "location" else []

    def _sparse(self, end: int) -> None:
        for number, wire in self.r.fields(end, (1, 2)):
            if number in (1, 2) and wire == LEN:  # values, indices
                self._tensor(self.r.message())
            else:
                self.r.skip(wire)

    # -- ValueInfoProto, TypeProto ---------------------------------------------------

    def _value_info(self, end: int) -> ValueInfo:
        r, name, kind = self.r, "", _Type()
        for number, wire in r.fields(end, (1, 2)):
            if number == 1 and wire == LEN:
                name = r.text()
            elif number == 2 and wire == LEN:
                self._type(r.message(), kind)
            else:
                r.skip(wire)
        self._keep(64 + len(name))
        if kind.kind != "tensor_type":
            return ValueInfo(name, kind.kind, None)
        type_name = ELEMENT_TYPES.get(kind.elem_type, f"type{kind.elem_type}")
        return ValueInfo(name, type_name, tuple(kind.dims) if kind.has_shape else None)

    def _type(self, end: int, into: _Type) -> None:
        r = self.r
        for number, wire in r.fields(end, _TYPE_KINDS):
            kind = _TYPE_KINDS.get(number) if wire == LEN else None
            if kind is None:
                r.skip(wire)
                continue
            if kind != into.kind:  # another member of the oneof: it starts afresh
                into.kind, into.elem_type, into.has_shape, into.dims = kind, 0, False, []
            if kind == "tensor_type":
                self._tensor_type(r.message(), into)
            else:
                r.skip(wire)

    def _tensor_type(self, end: int, into: _Type) -> None:
        r = self.r
        for number, wire in r.fields(end, (1, 2)):
            if number == 1 and wire == VARINT:
                into.elem_type = r.signed(32)
            elif number == 2 and wire == LEN:  # shape
                into.has_shape = True
                for dim, dim_wire in r.fields(r.message(), (1,)):
                    if dim == 1 and dim_wire == LEN:
                        into.dims.append(self._dimension(r.message()))
                    else:
                        r.skip(dim_wire)
            else:
                r.skip(wire)

    def _dimension(self, end: int) -> int | str | None:
        r = self.r
        value: int | str | None = None
        for number, wire in r.fields(end, (1, 2)):
            if number == 1 and wire == VARINT:
                value = r.signed()
            elif number == 2 and wire == LEN:
                value = r.text() or None
            else:
                r.skip(wire)
        self._keep(16 + (len(value) if isinstance(value, str) else 0))
        return value

    def _keep(self, cost: int) -> None:
        self._kept += cost
        if self._kept > self.caps.max_kept:
            raise WireCapped(f"more than {self.caps.max_kept} bytes of metadata")
