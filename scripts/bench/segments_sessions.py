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
from webmodels.store.segments.onnx_link import link_graph


@dataclass(frozen=True)
class SessionFigures:
    model: str
    tensors_linked: int
    whole_file_ms: float  # median session creation from the original file
    segments_ms: float  # median creation from the graph + hard-linked segments
    same_outputs: bool


def link_model(store: SegmentStore, source: Path, folder: Path) -> int:
    """Write ``folder/model.onnx`` whose large tensors are the store's segment files,
    hard-linked into ``folder`` (the rewrite the live store's sessions use,
    `store.segments.onnx_link`); how many tensors it links."""
    model = onnx.load(str(source))
    held = {p.name for p in store.segment_dir.glob("*/*")}
    linked = link_graph(model, held)
    for digest in linked:
        target = folder / digest
        if not target.exists():
            os.link(store.path_of(Digest(digest)), target)
    onnx.save(model, str(folder / "model.onnx"))
    return sum(1 for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)


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


@dataclass(frozen=True)
class LiveFigures:
    model: str
    first_segments_ms: float  # the first session: worker start and the graph rewrite
    whole_file_ms: float  # median of later sessions, store of whole files
    segments_ms: float  # median of later sessions, store with `[store] segments = true`


def live_figures(source: Path, work: Path, rounds: int) -> LiveFigures:
    """`SessionManager.create` of one model in two live stores in this run, one keeping
    whole files and one keeping segments (a real worker each), alternating rounds."""
    from webmodels.config import Config
    from webmodels.runtime.probe import ProviderProbe
    from webmodels.runtime.sessions import SessionManager
    from webmodels.runtime.settings import SessionSettings
    from webmodels.store.store import Store

    managers, digests = {}, {}
    for kind in ("file", "segments"):
        home = work / kind
        config = Config(home=home, log_dir=home / "logs", store_segments=kind == "segments")
        store = Store.open(config)
        settings = SessionSettings(background_compile=False)
        managers[kind] = SessionManager(store, ProviderProbe(), settings, log_path=home / "w.log")
        managers[kind].start()
        digests[kind] = store.import_file(source).model.digest
    times: dict[str, list[float]] = {"file": [], "segments": []}
    try:
        for _ in range(rounds + 1):
            for kind, manager in managers.items():
                start = time.perf_counter()
                created = manager.create(digests[kind], partition="bench", level="disabled")
                times[kind].append((time.perf_counter() - start) * 1000)
                manager.release(created.session_id, "bench")
    finally:
        for manager in managers.values():
            manager.close()
            manager.store.close()
    return LiveFigures(
        source.name,
        times["segments"][0],
        statistics.median(times["file"][1:]),
        statistics.median(times["segments"][1:]),
    )


def main() -> None:
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(
        description="session creation of ONNX models in a live store: whole files vs "
        "segments (graph + hard-linked segment files), alternating in one run"
    )
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("session creation (ms, median of later rounds; first: worker start + the rewrite)")
    for source in args.models:
        work = Path(tempfile.mkdtemp(prefix="webmodels-sessions-"))
        try:
            f = live_figures(source, work, args.rounds)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"  {f.model:<24} whole file {f.whole_file_ms:7.1f}  segments {f.segments_ms:7.1f}"
            f"  ({f.segments_ms / f.whole_file_ms:.2f}x)  first from segments "
            f"{f.first_segments_ms:7.1f}"
        )


if __name__ == "__main__":
    main()
