"""The worker's side of a compile-cache hit kept as segments (runtime/compile_segments.py).

The host sends the optimized graph's parts and its weights file's parts instead of
paths. `load_graph` rebuilds the graph (small: its weights are external) and checks
it against the SHA-256 the host indexed; `relink` points each tensor the graph keeps in
the weights file at the segment holding exactly its bytes where it lies (its own file:
``location`` the segment's hex name, ``offset`` 0; a pack file: the pack's name and the
segment's offset there); that file is then hard-linked into the session's private
folder, as for a model loaded from its segments. It embeds a tensor whose bytes are
not one whole segment (inline parts, a tensor cut by content) as ``raw_data``, read
from the parts. No copy of the weights file is made.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from webmodels.errors import HostError
from webmodels.runtime.safety import graphs
from webmodels.runtime.segment_link import assemble, wire_part
from webmodels.store.segments.onnx_link import name_external

_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL
_DEFAULT = 0  # onnx.TensorProto.DEFAULT


def load_graph(cached: Mapping[str, Any]) -> bytes:
    """The cached graph from its parts, checked against its size and SHA-256."""
    ref = cached["graph"]
    return assemble(cached["graph_parts"], int(ref["size"]), str(ref["sha256"]))


def relink(model: Any, weights_name: str, parts: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Rewrite the tensors of ``model`` (main graph and subgraphs) stored in
    ``weights_name`` in place (see the module doc); the segment files the graph now
    names, as ``files`` refs."""
    starts, pos = [], 0
    for each in parts:
        starts.append(pos)
        pos += len(each) if isinstance(each, bytes) else int(each[2])
    files: dict[str, dict[str, Any]] = {}
    for graph in graphs(model):
        main = graph is model.graph
        for tensor in graph.initializer:
            _relink_tensor(tensor, weights_name, parts, starts, pos, main, files)
    return files


def _relink_tensor(
    tensor: Any,
    weights_name: str,
    parts: Sequence[Any],
    starts: Sequence[int],
    total: int,
    main: bool,
    files: dict[str, dict[str, Any]],
) -> None:
    """One tensor: a main-graph tensor that is exactly one segment names it; any other
    (a subgraph's: ONNX Runtime refuses hard-linked files there) is embedded."""
    if tensor.data_location != _EXTERNAL:
        return
    entries = {e.key: e.value for e in tensor.external_data}
    if entries.get("location") != weights_name:
        return
    offset, length = int(entries.get("offset", "0")), int(entries.get("length", "-1"))
    if offset < 0 or length < 0 or offset + length > total:
        raise HostError("model_unsafe", f"tensor {tensor.name!r} lies outside its weights")
    index = bisect.bisect_right(starts, offset) - 1
    part: Any = parts[index] if index >= 0 else b""
    whole = not isinstance(part, bytes) and starts[index] == offset and int(part[2]) == length
    if main and whole:
        segment = wire_part(part)
        name_external(tensor, segment.location, segment.offset, length)
        if segment.location not in files:  # a pack holding several: stat it once
            files[segment.location] = segment.file_ref()
    else:
        _embed(tensor, _read(parts, starts, offset, length))


def _embed(tensor: Any, data: bytes) -> None:
    del tensor.external_data[:]
    tensor.data_location = _DEFAULT
    tensor.raw_data = data


def _read(parts: Sequence[Any], starts: Sequence[int], offset: int, length: int) -> bytes:
    out = bytearray()
    index = max(0, bisect.bisect_right(starts, offset) - 1)
    end = offset + length
    while len(out) < length and index < len(parts):
        part, start = parts[index], starts[index]
        size = len(part) if isinstance(part, bytes) else int(part[2])
        lo, hi = max(offset, start) - start, min(end, start + size) - start
        if hi > lo:
            got = part[lo:hi] if isinstance(part, bytes) else wire_part(part).read(lo, hi - lo)
            if len(got) != hi - lo:
                break
            out += got
        index += 1
    if len(out) != length:
        raise HostError("not_found", "a segment of the compiled graph's weights is short")
    return bytes(out)
