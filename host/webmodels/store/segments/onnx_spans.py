"""Where an ONNX model keeps its tensors' bytes: read from the protobuf wire format.

Walks the model with the project's capped wire reader (`store/protowire.py`), never
``onnx.load``: a model may be gigabytes and a page chooses its bytes. It records the
payload of every tensor's ``raw_data`` (and the packed typed arrays older exporters
write) wherever a tensor can sit: the graph's initializers and sparse initializers,
``Constant``-style node attributes (``t``, ``tensors``, sparse ones), the graphs of
``If`` / ``Loop`` / ``Scan`` attributes, functions, and training-info graphs. Tensors
kept in external-data files are listed per file with their offset and length, so the
data file can be cut at the same boundaries. Field numbers are those of
onnx/onnx.proto.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from webmodels.store.protowire import LEN, VARINT, WireCapped, WireCaps, WireInvalid, WireReader
from webmodels.store.segments.spans import ContainerInvalid, Span

_DATA_FIELDS = frozenset((4, 5, 7, 9, 10, 11))  # float/int32/int64/raw/double/uint64_data
_EXTERNAL_DATA, _DATA_LOCATION, _EXTERNAL = 13, 14, 1
_MAX_DEPTH = 32  # graphs in graphs, as store/onnx_wire.py caps them


@dataclass(slots=True)
class OnnxSpans:
    inline: list[Span] = field(default_factory=list)  # in the model file itself
    external: dict[str, list[Span]] = field(default_factory=dict)  # location -> spans


def onnx_spans(path: Path, caps: WireCaps | None = None) -> OnnxSpans:
    """The tensor spans of the ONNX model at ``path``; `ContainerInvalid` if it is not
    one (no IR version, no graph, malformed or past a cap)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        walk = _Walk(WireReader(fh, size, caps or WireCaps()))
        try:
            found_graph = walk.model(size)
        except (WireInvalid, WireCapped) as exc:
            raise ContainerInvalid(f"not a readable ONNX model: {exc}") from exc
    if not found_graph:
        raise ContainerInvalid("no IR version or no graph")
    return walk.spans


def external_spans(graph: Path, data_file: Path) -> list[Span]:
    """The spans that the model ``graph`` places in ``data_file`` (its external data)."""
    spans = onnx_spans(graph).external
    target = os.path.normpath(data_file)
    return [
        span
        for location, found in spans.items()
        if os.path.normpath(graph.parent / location) == target
        for span in found
    ]


class _Walk:
    def __init__(self, reader: WireReader) -> None:
        self.r = reader
        self.spans = OnnxSpans()

    def model(self, end: int) -> bool:
        r, ir_version, graphs = self.r, False, False
        for number, wire in r.fields(end, (1, 7, 20, 25)):
            if number == 1 and wire == VARINT:
                ir_version = r.signed() >= 1
            elif number == 7 and wire == LEN:
                self._graph(r.message(), depth=0)
                graphs = True
            elif number == 20 and wire == LEN:  # TrainingInfoProto: two graphs
                self._graphs_in(r.message(), (1, 2), depth=0)
            elif number == 25 and wire == LEN:  # FunctionProto.node
                self._nodes_in(r.message(), 7, depth=1)
            else:
                r.skip(wire)
        return ir_version and graphs

    def _graph(self, end: int, *, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise WireCapped(f"subgraphs nested more than {_MAX_DEPTH} deep")
        r = self.r
        for number, wire in r.fields(end, (1, 5, 15)):
            if wire != LEN:
                r.skip(wire)
            elif number == 1:  # node
                self._attributes_in(r.message(), depth=depth)
            elif number == 5:  # initializer
                self._tensor(r.message())
            else:  # sparse_initializer
                self._sparse(r.message())

    def _graphs_in(self, end: int, numbers: tuple[int, ...], *, depth: int) -> None:
        for _number, wire in self.r.fields(end, numbers):
            if wire == LEN:
                self._graph(self.r.message(), depth=depth + 1)
            else:
                self.r.skip(wire)

    def _nodes_in(self, end: int, number: int, *, depth: int) -> None:
        for _found, wire in self.r.fields(end, (number,)):
            if wire == LEN:
                self._attributes_in(self.r.message(), depth=depth)
            else:
                self.r.skip(wire)

    def _attributes_in(self, end: int, *, depth: int) -> None:
        r = self.r
        for _number, wire in r.fields(end, (5,)):  # NodeProto.attribute
            if wire != LEN:
                r.skip(wire)
                continue
            for inner, inner_wire in r.fields(r.message(), (5, 6, 10, 11, 22, 23)):
                if inner_wire != LEN:
                    r.skip(inner_wire)
                elif inner in (6, 11):  # g, graphs
                    self._graph(r.message(), depth=depth + 1)
                elif inner in (5, 10):  # t, tensors
                    self._tensor(r.message())
                else:  # sparse_tensor, sparse_tensors
                    self._sparse(r.message())

    def _sparse(self, end: int) -> None:
        for _number, wire in self.r.fields(end, (1, 2)):  # values, indices
            if wire == LEN:
                self._tensor(self.r.message())
            else:
                self.r.skip(wire)

    def _tensor(self, end: int) -> None:
        r, external = self.r, False
        data: list[Span] = []
        entries: dict[str, str] = {}
        for number, wire in r.fields(end, (*_DATA_FIELDS, _EXTERNAL_DATA, _DATA_LOCATION)):
            if number in _DATA_FIELDS and wire == LEN:
                payload_end = r.message()
                data.append(Span(r.pos, payload_end - r.pos))
                r.seek(payload_end)
            elif number == _EXTERNAL_DATA and wire == LEN:
                key, value = self._entry(r.message())
                entries[key] = value
            elif number == _DATA_LOCATION and wire == VARINT:
                external = r.varint() == _EXTERNAL
            else:
                r.skip(wire)
        if external:
            self._external(entries)
        else:
            self.spans.inline.extend(data)

    def _entry(self, end: int) -> tuple[str, str]:
        r, key, value = self.r, "", ""
        for number, wire in r.fields(end, (1, 2)):
            if wire == LEN and number == 1:
                key = r.text()
            elif wire == LEN:
                value = r.text()
            else:
                r.skip(wire)
        return key, value

    def _external(self, entries: dict[str, str]) -> None:
        location, offset = entries.get("location"), entries.get("offset", "0")
        length = entries.get("length")
        if not location or length is None or not offset.isdigit() or not length.isdigit():
            return  # a tensor to the end of the file, or a bad entry: no cut for it
        spans = self.spans.external.setdefault(location, [])
        spans.append(Span(int(offset), int(length)))
