"""An ONNX graph rewritten to load its weights straight from segment files.

`link_graph` turns every main-graph initializer whose bytes are exactly one segment
into external data naming where that segment lies: its own file (``location`` the
segment's hex name, ``offset`` 0) or the pack file holding it (``location`` the pack's
name, ``offset`` the segment's offset there, 4 KiB-aligned), after moving
``Constant`` tensors and subgraph initializers to main-graph initializers: ONNX
Runtime runs the onnx checker on those, which refuses an external-data file with more
than one hard link ("potential hardlink attack"), and segment files are hard-linked
into the session's private folder. A subgraph still sees the lifted tensors (outer
scope). Runs in the runtime worker (it parses the model); used by the bench too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Set
from typing import Any

from webmodels.store.segments.recipe import INLINE_MAX

_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL
_FLOAT = 1  # onnx.TensorProto.FLOAT


def link_graph(model: Any, segments: Mapping[str, tuple[str, int]] | Set[str]) -> dict[str, int]:
    """Rewrite ``model`` (an onnx ModelProto) in place; ``segments`` are the hex
    digests the caller can link, each with the file name (location) and offset where
    its bytes lie (a set: each in its own file). Returns {segment hex: size} of those
    it now names."""
    places = segments if isinstance(segments, Mapping) else {h: (h, 0) for h in segments}
    graph = model.graph
    _lift(graph, graph, _names(graph))
    linked: dict[str, int] = {}
    for tensor in graph.initializer:
        data = _payload(tensor)
        if data is None or len(data) < INLINE_MAX:
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest not in places:
            continue
        location, offset = places[digest]
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        name_external(tensor, location, offset, len(data))
        linked[digest] = len(data)
    return linked


def name_external(tensor: Any, location: str, offset: int, length: int) -> None:
    """Make ``tensor`` read its bytes from ``location`` at ``offset``."""
    tensor.data_location = _EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def _payload(tensor: Any) -> bytes | None:
    """The bytes a segment of this tensor holds: ``raw_data``, or packed ``float_data``
    (byte for byte what ``raw_data`` would hold); None for external or other data."""
    if tensor.data_location == _EXTERNAL:
        return None
    if tensor.raw_data:
        return bytes(tensor.raw_data)
    if tensor.data_type == _FLOAT and len(tensor.float_data):
        import numpy as np

        return np.asarray(tensor.float_data, dtype="<f4").tobytes()
    return None


def _lift(graph: Any, into: Any, names: set[str]) -> None:
    """Move ``graph``'s ``Constant`` tensors and initializers (subgraphs' included) to
    ``into``'s initializers; a name already taken stays where it is."""
    kept = []
    for node in graph.node:
        value = [a for a in node.attribute if a.name == "value" and a.HasField("t")]
        constant = node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value
        if constant and (graph is into or node.output[0] not in names):
            tensor = into.initializer.add()
            tensor.CopyFrom(value[0].t)
            tensor.name = node.output[0]
            names.add(tensor.name)
            continue
        kept.append(node)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else attr.graphs:
                _lift(sub, into, names)
    del graph.node[:]
    graph.node.extend(kept)
    if graph is not into:
        moved = [t for t in graph.initializer if t.name not in names]
        for tensor in moved:
            into.initializer.add().CopyFrom(tensor)
            names.add(tensor.name)
            graph.initializer.remove(tensor)


def _names(graph: Any) -> set[str]:
    """Every value name of the main graph (inputs, outputs, initializers, node outputs)."""
    names = {v.name for v in (*graph.input, *graph.output)}
    names.update(t.name for t in graph.initializer)
    names.update(out for node in graph.node for out in node.output)
    return names
