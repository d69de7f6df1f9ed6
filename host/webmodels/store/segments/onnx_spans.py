"""Where an ONNX model keeps its tensors' bytes: a scan of the protobuf wire format.

Scans the model's bytes (memory-mapped) in one pass, never ``onnx.load``: a model may
be gigabytes and a page chooses its bytes. It records the payload of every tensor's
``raw_data`` (and the packed typed arrays older exporters write) wherever a tensor
can sit: the graph's initializers and sparse initializers, ``Constant``-style node
attributes (``t``, ``tensors``, sparse ones), the graphs of ``If`` / ``Loop`` /
``Scan`` attributes, functions, and training-info graphs. Tensors kept in
external-data files are listed per file with their offset and length, so the data
file can be cut at the same boundaries. Field numbers are those of onnx/onnx.proto.

The scan works on the mapped bytes with one small function per field (tag, length,
bounds check) and one loop per message kind, rather than the general capped reader
of `store/protowire.py` that the metadata reader uses: that reader's per-field layers
(window refills, generators, a GIL hand-off every 1024 fields) made the tensor parse
most of what storing a file as segments cost. Bounds hold as there: a length may not
run past its message, nesting is capped, and a wall-clock cap backstops the work.
Anything malformed or past a cap raises `ContainerInvalid`, and the file is then cut
by content alone (`split`); where a scan cuts never affects the bytes stored.
"""

from __future__ import annotations

import mmap
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from webmodels.store.protowire import WireCaps
from webmodels.store.segments.spans import ContainerInvalid, Span

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_DATA_FIELDS = frozenset((4, 5, 7, 9, 10, 11))  # float/int32/int64/raw/double/uint64_data
_EXTERNAL_DATA, _DATA_LOCATION, _EXTERNAL = 13, 14, 1
_MAX_DEPTH = 32  # graphs in graphs, as store/onnx_wire.py caps them
_CHECK_EVERY = 1024  # messages between two looks at the clock
_YIELD_AFTER_S = 0.002  # hand the GIL to the host's request threads this often
# The first byte of the tag of every AttributeProto field that holds a tensor or a
# graph (t 5, g 6, tensors 10, graphs 11, sparse_tensor 22, sparse_tensors 23; all
# length-delimited). An attribute whose bytes hold none of them holds neither, and is
# passed over in one search (most attributes are an axis, a shape, a name).
_TENSOR_OR_GRAPH_TAG = re.compile(rb"[\x2a\x32\x52\x5a\xb2\xba]")


@dataclass(slots=True)
class OnnxSpans:
    inline: list[Span] = field(default_factory=list)  # in the model file itself
    external: dict[str, list[Span]] = field(default_factory=dict)  # location -> spans


def onnx_spans(path: Path, caps: WireCaps | None = None) -> OnnxSpans:
    """The tensor spans of the ONNX model at ``path``; `ContainerInvalid` if it is not
    one (no IR version, no graph, malformed or past a cap)."""
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise ContainerInvalid("an empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return scan_model(view, caps or WireCaps())
            finally:
                view.release()


def scan_model(data: memoryview | bytes, caps: WireCaps) -> OnnxSpans:
    """The tensor spans of the serialized ModelProto ``data`` (see `onnx_spans`)."""
    scan = _Scan(data, caps)
    try:
        found_graph = scan.model(len(data))
    except (IndexError, RecursionError) as exc:  # a tag or length cut off by the end
        raise ContainerInvalid("not a readable ONNX model: truncated") from exc
    if not found_graph:
        raise ContainerInvalid("no IR version or no graph")
    return scan.spans


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


def _varint(buf: memoryview | bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos + 1
        shift += 7
        if shift >= 70:
            raise ContainerInvalid("a varint longer than 10 bytes")


def _field(buf: memoryview | bytes, pos: int, end: int) -> tuple[int, int, int, int]:
    """The field at ``pos`` in a message ending at ``end``: its number, wire type, and
    where its value starts and ends (a length-delimited value: its payload)."""
    key = buf[pos]  # one-byte tags and lengths, the usual case, without a call
    if key < 0x80:
        pos += 1
    else:
        key, pos = _varint(buf, pos)
    number, wire = key >> 3, key & 7
    if wire == _LEN:
        length = buf[pos]
        if length < 0x80:
            pos += 1
        else:
            length, pos = _varint(buf, pos)
        stop = pos + length
    elif wire == _VARINT:
        stop = pos + 1 if buf[pos] < 0x80 else _varint(buf, pos)[1]
    elif wire == _I64:
        stop = pos + 8
    elif wire == _I32:
        stop = pos + 4
    else:  # groups (3, 4) are long deprecated; no ONNX writer emits them
        raise ContainerInvalid(f"bad field key {key} at {pos}")
    if number == 0 or stop > end:
        raise ContainerInvalid(f"a field runs past the end of its message at {end}")
    return number, wire, pos, stop


class _Scan:
    def __init__(self, data: memoryview | bytes, caps: WireCaps) -> None:
        self.buf = data
        self.spans = OnnxSpans()
        self._messages = 0
        now = time.monotonic()
        self._deadline = now + caps.max_seconds
        self._yielded = now
        self._max_text = caps.max_text

    def model(self, end: int) -> bool:
        buf, pos, ir_version, graphs = self.buf, 0, False, False
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if number == 1 and wire == _VARINT:
                value = _varint(buf, start)[0]
                ir_version = 1 <= value < 1 << 63  # an int64 of at least 1
            elif wire != _LEN:
                continue
            elif number == 7:
                self._graph(start, pos, depth=0)
                graphs = True
            elif number == 20:  # TrainingInfoProto: two graphs
                self._graphs_in(start, pos, (1, 2), depth=0)
            elif number == 25:  # FunctionProto.node
                self._nodes_in(start, pos, 7, depth=1)
        return ir_version and graphs

    def _graph(self, pos: int, end: int, *, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ContainerInvalid(f"subgraphs nested more than {_MAX_DEPTH} deep")
        self._tick()
        buf = self.buf
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire != _LEN:
                continue
            if number == 1:  # node
                self._attributes_in(start, pos, depth=depth)
            elif number == 5:  # initializer
                self._tensor(start, pos)
            elif number == 15:  # sparse_initializer
                self._sparse(start, pos)

    def _graphs_in(self, pos: int, end: int, numbers: tuple[int, ...], *, depth: int) -> None:
        buf = self.buf
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire == _LEN and number in numbers:
                self._graph(start, pos, depth=depth + 1)

    def _nodes_in(self, pos: int, end: int, wanted: int, *, depth: int) -> None:
        buf = self.buf
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire == _LEN and number == wanted:
                self._attributes_in(start, pos, depth=depth)

    def _attributes_in(self, pos: int, end: int, *, depth: int) -> None:
        """A NodeProto: the tensors and graphs of its attributes (field 5)."""
        self._tick()
        buf = self.buf
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire != _LEN or number != 5 or not _TENSOR_OR_GRAPH_TAG.search(buf, start, pos):
                continue
            inner = start
            while inner < pos:  # AttributeProto
                kind, inner_wire, value, inner = _field(buf, inner, pos)
                if inner_wire != _LEN:
                    continue
                if kind in (6, 11):  # g, graphs
                    self._graph(value, inner, depth=depth + 1)
                elif kind in (5, 10):  # t, tensors
                    self._tensor(value, inner)
                elif kind in (22, 23):  # sparse_tensor, sparse_tensors
                    self._sparse(value, inner)

    def _sparse(self, pos: int, end: int) -> None:
        buf = self.buf
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire == _LEN and number in (1, 2):  # values, indices
                self._tensor(start, pos)

    def _tensor(self, pos: int, end: int) -> None:
        self._tick()
        buf, external = self.buf, False
        data: list[Span] = []
        entries: dict[str, str] = {}
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire == _LEN and number in _DATA_FIELDS:
                data.append(Span(start, pos - start))
            elif wire == _LEN and number == _EXTERNAL_DATA:
                key, value = self._entry(start, pos)
                entries[key] = value
            elif wire == _VARINT and number == _DATA_LOCATION:
                external = _varint(buf, start)[0] == _EXTERNAL
        if external:
            self._external(entries)
        else:
            self.spans.inline.extend(data)

    def _entry(self, pos: int, end: int) -> tuple[str, str]:
        buf, key, value = self.buf, "", ""
        while pos < end:
            number, wire, start, pos = _field(buf, pos, end)
            if wire == _LEN and number in (1, 2):
                if pos - start > self._max_text:
                    raise ContainerInvalid(f"a string of {pos - start} bytes")
                text = bytes(buf[start:pos]).decode("utf-8", errors="replace")
                key, value = (text, value) if number == 1 else (key, text)
        return key, value

    def _external(self, entries: dict[str, str]) -> None:
        location, offset = entries.get("location"), entries.get("offset", "0")
        length = entries.get("length")
        if not location or length is None or not offset.isdigit() or not length.isdigit():
            return  # a tensor to the end of the file, or a bad entry: no cut for it
        spans = self.spans.external.setdefault(location, [])
        spans.append(Span(int(offset), int(length)))

    def _tick(self) -> None:
        """Every so many messages: the wall-clock cap, and a moment for other threads
        (a pure-Python loop otherwise keeps the GIL a whole switch interval)."""
        self._messages += 1
        if self._messages % _CHECK_EVERY:
            return
        now = time.monotonic()
        if now > self._deadline:
            raise ContainerInvalid("reading the model took too long")
        if now - self._yielded > _YIELD_AFTER_S:
            time.sleep(0)
            self._yielded = time.monotonic()
