"""Session creation from segments, for scripts/bench/segments.py: can ONNX Runtime
load a stored model straight from its segment files, and how fast?

The graph is rewritten once with every tensor that is a whole segment turned into
external data (``location`` the segment's file name, ``offset`` 0), and the segment
files are hard-linked into one private folder beside it: ONNX Runtime (>= 1.32)
refuses external-data paths that leave the model's folder, symlinks included, and
accepts hard links. Creation from that folder is timed against creation from the
original file, alternating, in the same run; the outputs of one run are compared.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from webmodels.digest import Digest
from webmodels.store.segments import SegmentStore
from webmodels.store.segments.recipe import INLINE_MAX


@dataclass(frozen=True)
class SessionFigures:
    model: str
    tensors_linked: int
    whole_file_ms: float  # median session creation from the original file
    segments_ms: float  # median creation from the graph + hard-linked segments
    same_outputs: bool


def _lift(graph: onnx.GraphProto, into: onnx.GraphProto, names: set[str]) -> None:
    """Move ``graph``'s ``Constant`` tensors and initializers (subgraphs' included) to
    the main graph's initializers, where a subgraph still sees them (outer scope).

    Why: the onnx checker that ONNX Runtime runs on subgraphs and on ``Constant``
    attributes refuses an external-data file with more than one hard link ("potential
    hardlink attack"; seen with ORT 1.31), and a linked segment has two; only the main
    graph's initializers are loaded without that check."""
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
    if graph is not into:  # a name the outer graph has already stays where it is
        moved = [t for t in graph.initializer if t.name not in names]
        for tensor in moved:
            into.initializer.add().CopyFrom(tensor)
            names.add(tensor.name)
            graph.initializer.remove(tensor)


def _names(graph: onnx.GraphProto) -> set[str]:
    """Every value name of the main graph (its inputs, outputs and node outputs)."""
    names = {v.name for v in (*graph.input, *graph.output)}
    names.update(t.name for t in graph.initializer)
    names.update(out for node in graph.node for out in node.output)
    return names


def link_model(store: SegmentStore, source: Path, folder: Path) -> int:
    """Write ``folder/model.onnx`` whose large tensors are the store's segment files,
    hard-linked into ``folder``; how many tensors it links."""
    model = onnx.load(str(source))
    _lift(model.graph, model.graph, _names(model.graph))
    linked = 0
    for tensor in model.graph.initializer:
        # Packed float_data is the same little-endian bytes as raw_data would be, so
        # it is a segment too (the splitter cuts at either payload).
        floats = np.asarray(tensor.float_data, dtype="<f4").tobytes()
        data = tensor.raw_data or floats
        if len(data) < INLINE_MAX:
            continue
        digest = Digest(hashlib.sha256(data).hexdigest())
        segment = store.path_of(digest)
        if not segment.is_file():
            continue
        target = folder / digest.hex
        if not target.exists():
            os.link(segment, target)
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        for key, value in (("location", digest.hex), ("offset", "0"), ("length", str(len(data)))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        linked += 1
    onnx.save(model, str(folder / "model.onnx"))
    return linked


def _feeds(session: Any) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    for arg in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in arg.shape]
        if arg.name == "sr":
            feeds[arg.name] = np.array(16000, dtype=np.int64)
            continue
        if arg.name == "input" and len(shape) == 2:
            shape = [1, 512]
        if arg.name == "x" and len(shape) == 4:  # the OCR models: 48 or 64 high, 64 wide
            shape = [1, 3, arg.shape[2] if isinstance(arg.shape[2], int) else 64, 64]
        feeds[arg.name] = (rng.random(shape) * 2).astype(types.get(arg.type, np.float32))
    return feeds


def session_figures(name: str, store: SegmentStore, source: Path, folder: Path) -> SessionFigures:
    import onnxruntime as ort

    folder.mkdir(parents=True)
    linked = link_model(store, source, folder)
    paths = {"file": str(source), "segments": str(folder / "model.onnx")}
    times: dict[str, list[float]] = {"file": [], "segments": []}
    sessions: dict[str, Any] = {}
    for _ in range(5):
        for kind, path in paths.items():
            start = time.perf_counter()
            sessions[kind] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            times[kind].append((time.perf_counter() - start) * 1000)
    feeds = _feeds(sessions["file"])
    try:
        outputs = [sessions[kind].run(None, feeds) for kind in paths]
        same = all(np.array_equal(a, b) for a, b in zip(*outputs, strict=True))
    except Exception as exc:  # an input this generic feeder cannot guess: not compared
        print(f"  {name}: outputs not compared ({type(exc).__name__})")
        same = False
    return SessionFigures(
        name,
        linked,
        statistics.median(times["file"]),
        statistics.median(times["segments"]),
        same,
    )
