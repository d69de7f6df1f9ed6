"""Keep a compiled graph from holding a second copy of its model's weights.

ONNX Runtime saves an optimized graph with *every* initializer in one external-data
file of its own: for a model whose weights live in external-data files (a model
manifest) that is a second copy of gigabytes, most of it byte for byte the tensors
the model already keeps in its stored files. `share_source_weights` rewrites what ORT
saved so that each initializer whose bytes equal the source tensor of the same name
points at that tensor's place in the model's own file (its location, offset and
length), and the compiled weights file keeps only the tensors the optimizer made or
changed (none at all, often). The compile cache's key names every external-data file
by SHA-256, so the locations stay valid for exactly the files the entry was made from;
the worker checks them like any location when it loads the graph.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from webmodels.runtime.safety import graphs

CHUNK = 8 << 20
_EXTERNAL = 1  # TensorProto.EXTERNAL


@dataclass(frozen=True, slots=True)
class Place:
    """Where a tensor's bytes lie: a location of the model, an offset and a length."""

    location: str
    offset: int
    length: int


def external_places(model: Any) -> dict[str, Place]:
    """The external tensors of a model's graphs by name (the first of a name wins)."""
    found: dict[str, Place] = {}
    for graph in graphs(model):
        for tensor in graph.initializer:
            place = _place(tensor)
            if place is not None and tensor.name:
                found.setdefault(tensor.name, place)
    return found


def share_source_weights(
    graph_path: Path, weights_name: str, source: Mapping[str, Place], files: Mapping[str, Path]
) -> bool:
    """Rewrite the optimized graph at ``graph_path`` (its external data in
    ``weights_name`` beside it) to read unchanged tensors from the model's own files
    (``files``: location -> path); the weights file keeps the rest, or is removed when
    nothing is left. Returns whether the weights file is still there."""
    import onnx

    folder = graph_path.parent
    weights = folder / weights_name
    if weights_name in files or not weights.is_file():
        return weights.is_file()
    model = onnx.load_model(str(graph_path), load_external_data=False)
    rest = folder / (weights_name + ".rest")
    kept = 0
    with weights.open("rb") as compiled, rest.open("wb") as out:
        for graph in graphs(model):
            for tensor in graph.initializer:
                place = _place(tensor)
                if place is None or place.location != weights_name:
                    continue
                shared = source.get(tensor.name)
                if shared is not None and _unchanged(compiled, place, shared, files):
                    _point(tensor, shared)
                    continue
                moved = Place(weights_name, out.tell(), place.length)
                _copy(compiled, place.offset, out, place.length)
                _point(tensor, moved)
                kept += 1
    os.replace(rest, weights)
    if not kept:
        weights.unlink()
    graph_path.write_bytes(model.SerializeToString())
    return kept > 0


def _place(tensor: Any) -> Place | None:
    if tensor.data_location != _EXTERNAL:
        return None
    entries = {e.key: e.value for e in tensor.external_data}
    try:
        return Place(entries["location"], int(entries.get("offset", "0")), int(entries["length"]))
    except (KeyError, ValueError):
        return None


def _point(tensor: Any, place: Place) -> None:
    del tensor.external_data[:]
    for key, value in (("location", place.location), ("offset", place.offset)):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, str(value)
    entry = tensor.external_data.add()
    entry.key, entry.value = "length", str(place.length)


def _unchanged(compiled: BinaryIO, place: Place, shared: Place, files: Mapping[str, Path]) -> bool:
    """Whether the compiled tensor at ``place`` holds the bytes of the source's."""
    if shared.location not in files or shared.length != place.length:
        return False
    with files[shared.location].open("rb") as original:
        return _same(compiled, place.offset, original, shared.offset, place.length)


def _same(a: BinaryIO, a_at: int, b: BinaryIO, b_at: int, length: int) -> bool:
    a.seek(a_at)
    b.seek(b_at)
    left = length
    while left > 0:
        size = min(CHUNK, left)
        x, y = a.read(size), b.read(size)
        if len(x) != size or x != y:
            return False
        left -= size
    return True


def _copy(source: BinaryIO, at: int, out: BinaryIO, length: int) -> None:
    source.seek(at)
    left = length
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise OSError("the compiled weights file is shorter than its graph says")
        out.write(chunk)
        left -= len(chunk)
