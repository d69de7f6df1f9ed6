"""ONNX Runtime sessions of a model kept as segments (runtime/segment_sessions.py):
the worker loads a graph whose weights are the segment files, hard-linked into its
private folder, so no copy of the model is rebuilt under ``views/`` (which doubled the
disk it takes and told a later load that an earlier one happened); the outputs equal
those of a session of the whole file. Where hard links fail, the view is the fallback;
a stored graph cannot reach segments other than its own tensors'.

The model has what trips ONNX Runtime's hard-link check (a large ``Constant`` and an
``If`` branch with its own initializer) and two initializers with the same bytes (one
segment linked once)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from methods.test_sessions import PAGE_A, upload
from support.host import HostProcess
from support.runtime_models import wire, wire_bytes
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.tensors import Tensor
from webmodels.store.metadata import describe_file
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"
N = 2048  # floats: 8 KiB tensors, each a segment of its own


def tiny_model(path: Path, seed: int = 8) -> Path:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(N).astype(np.float32)
    const = rng.standard_normal(N).astype(np.float32)
    inner = rng.standard_normal(N).astype(np.float32)
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["c", "inner"], ["then_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [N])],
        [numpy_helper.from_array(inner, "inner")],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Sub", ["c", "w"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [N])],
    )
    nodes = [
        helper.make_node("Add", ["x", "w"], ["a"]),
        helper.make_node("Mul", ["a", "w_again"], ["b"]),  # same bytes as w: one segment
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(const)),
        helper.make_node("Add", ["b", "k"], ["c"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [N]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [N])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w.copy(), "w_again")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def outputs_match(sessions: SessionManager, digest: Digest, source: Path) -> None:
    """A session of the stored model answers as a session of the whole file does."""
    whole = ort.InferenceSession(str(source), providers=[CPU])
    session = sessions.create(digest, partition="p")
    x = np.linspace(-1, 1, N, dtype=np.float32)
    for cond in (True, False):
        feeds = {"x": x, "cond": np.array([cond])}
        expected = whole.run(None, feeds)[0]
        got = sessions.run(
            session.session_id,
            "p",
            {
                "x": Tensor("float32", (N,), x.tobytes()),
                "cond": Tensor("bool", (1,), bytes([cond])),
            },
        )
        assert np.frombuffer(got["y"].data, np.float32).tobytes() == expected.tobytes()  # type: ignore[arg-type]


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def test_a_session_loads_from_segments_without_rebuilding_the_file(
    manager: tuple[SessionManager, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions, store = manager
    source = tiny_model(tmp_path / "tiny.onnx")
    digest = store.import_file(source).model.digest
    assert store.recipe_of(digest) is not None
    outputs_match(sessions, digest, source)
    root = store.segmented.root
    assert files_under(root / "views") == []  # no copy of the model's bytes
    graph = root / "linked" / f"{digest.hex}.onnx"
    linked = onnx.load(str(graph), load_external_data=False)
    external = [t for t in linked.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    assert len(external) == 4  # w, w_again (the same segment), the Constant, the If's own
    assert graph.stat().st_size < 4 * N  # the weights are not in it
    assert len(json_segments(root, digest)) == 3  # w and w_again: one segment
    made = graph.stat().st_ino
    outputs_match(sessions, digest, source)  # a second session reuses the kept graph
    assert graph.stat().st_ino == made
    assert files_under(root / "views") == []

    # A stored graph naming another file's segment as its external data is refused:
    # only the segments of its own tensors are linked into its private folder.
    hostile = onnx.load(str(source))
    take = hostile.graph.initializer[0]
    take.ClearField("raw_data")
    take.data_location = TensorProto.EXTERNAL
    for key, value in (("location", next(iter(json_segments(root, digest)))), ("offset", "0")):
        entry = take.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(hostile, str(tmp_path / "hostile.onnx"))
    with (tmp_path / "hostile.onnx").open("rb") as fh:  # as a page's write stores it
        pending = store.files.write_stream(fh)
    metadata = describe_file(pending.temp_path)
    bad = store.ingest(pending, metadata, origin="downloaded", refs=[("site", "p")]).model.digest
    with pytest.raises(HostError) as refused:
        sessions.create(bad, partition="p")
    assert refused.value.code == "model_unsafe"

    # Where the store cannot hard-link (its temp folder on another file system; stood
    # in for here, as that needs root to set up), the view is the fallback.
    monkeypatch.setattr("webmodels.runtime.segment_sessions.links_work", lambda store: False)
    other = store.import_file(tiny_model(tmp_path / "other.onnx", seed=9)).model.digest
    outputs_match(sessions, other, tmp_path / "other.onnx")
    assert [p.name for p in files_under(root / "views")] == [other.hex]
    assert not (root / "linked" / f"{other.hex}.onnx").exists()

    store.delete(digest, force=True)  # the kept graph goes with the file
    assert not graph.exists()


def json_segments(root: Path, digest: Digest) -> dict[str, int]:
    """The segments the kept graph of ``digest`` names."""
    meta = json.loads((root / "linked" / f"{digest.hex}.json").read_text())
    return dict(meta["segments"])


def test_a_page_loads_and_runs_a_model_kept_as_segments_without_a_view(
    home: Path, tmp_path: Path
) -> None:
    """Through a real host process, as a page: write, ``models.load``, a session, a run."""
    source = tiny_model(tmp_path / "tiny.onnx")
    host = HostProcess(home, WEBMODELS_STORE_SEGMENTS="1")
    try:
        digest = upload(host, source.read_bytes(), PAGE_A)
        host.result("models.load", {"query": {"sha256": digest}}, context=PAGE_A)
        created = host.result("sessions.create", {"sha256": digest}, context=PAGE_A)
        x = np.linspace(-1, 1, N, dtype=np.float32)
        ran = host.result(
            "sessions.run",
            {
                "session_id": created["session_id"],
                "feeds": {"x": wire("float32", x), "cond": wire("bool", np.array([True]))},
            },
            context=PAGE_A,
        )
    finally:
        host.close()
    expected = ort.InferenceSession(str(source), providers=[CPU]).run(
        None, {"x": x, "cond": np.array([True])}
    )[0]
    assert wire_bytes(ran["outputs"]["y"]) == expected.tobytes()
    assert files_under(home / "store-v2" / "views") == []
