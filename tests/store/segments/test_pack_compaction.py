"""Freed segments of a pack that other files' segments still live in: a running
session keeps answering (the bytes under its map are not punched out), and `gc`
rewrites such a pack with its live segments only, freeing the rest, while sessions
made before and after answer as the whole file does."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from store.segments.test_live_store import disk_bytes
from store.segments.test_sessions import N, tiny_model
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.tensors import Tensor
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.segments import reaper
from webmodels.store.segments.packs import aligned
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"
WEIGHT = 1 << 17  # floats: 512 KiB a tensor (3 freed: over gc's 1 MiB minimum)


def summing_model(path: Path, weights: list[np.ndarray]) -> Path:
    """y = x + w0 + w1 + ...: every weight a tensor of its own (a segment)."""
    names = [f"w{i}" for i in range(len(weights))]
    nodes, last = [], "x"
    for i, name in enumerate(names):
        nodes.append(helper.make_node("Add", [last, name], [f"s{i}"]))
        last = f"s{i}"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    graph = helper.make_graph(
        nodes,
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [WEIGHT])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [WEIGHT])],
        [numpy_helper.from_array(w, n) for w, n in zip(weights, names, strict=True)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def answer(sessions: SessionManager, session_id: str, size: int) -> np.ndarray:
    x = np.linspace(-1, 1, size, dtype=np.float32)
    got = sessions.run(session_id, "p", {"x": Tensor("float32", (size,), x.tobytes())})
    return np.frombuffer(got[next(iter(got))].data, np.float32)


def expected(source: Path, size: int) -> np.ndarray:
    x = np.linspace(-1, 1, size, dtype=np.float32)
    whole = ort.InferenceSession(str(source), providers=[CPU])
    return np.asarray(whole.run(None, {whole.get_inputs()[0].name: x})[0]).ravel()


def test_a_session_of_a_model_deleted_under_it_keeps_answering(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    sessions, store = manager
    source = tiny_model(tmp_path / "tiny.onnx", seed=21)
    digest = store.import_file(source).model.digest
    recipe = store.recipe_of(digest)
    assert recipe is not None and all(s.pack for s in recipe.segments)  # packed
    session = sessions.create(digest, partition="p", level="disabled")
    x = np.linspace(-1, 1, N, dtype=np.float32)
    feeds = {"x": Tensor("float32", (N,), x.tobytes()), "cond": Tensor("bool", (1,), b"\1")}
    whole = ort.InferenceSession(str(source), providers=[CPU])
    want = whole.run(None, {"x": x, "cond": np.array([True])})[0]
    before = np.frombuffer(sessions.run(session.session_id, "p", feeds)["y"].data, np.float32)
    store.delete(digest, force=True)
    assert reaper.drain(timeout_s=60)
    after = np.frombuffer(sessions.run(session.session_id, "p", feeds)["y"].data, np.float32)
    assert np.array_equal(before, want) and np.array_equal(after, want)


def test_gc_rewrites_a_half_freed_pack_and_sessions_still_answer(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    sessions, store = manager
    rng = np.random.default_rng(31)
    shared = [rng.standard_normal(WEIGHT).astype(np.float32) for _ in range(3)]
    only_a = [rng.standard_normal(WEIGHT).astype(np.float32) for _ in range(3)]
    only_b = [rng.standard_normal(WEIGHT).astype(np.float32) for _ in range(3)]
    a_path = summing_model(tmp_path / "a.onnx", [*shared, *only_a])
    b_path = summing_model(tmp_path / "b.onnx", [*shared, *only_b])
    a = store.import_file(a_path).model.digest
    b = store.import_file(b_path).model.digest
    recipe_a, recipe_b = store.recipe_of(a), store.recipe_of(b)
    assert recipe_a is not None and recipe_b is not None
    pack_a = {s.pack for s in recipe_a.segments}
    assert len(pack_a) == 1 and None not in pack_a
    old_pack = store.segmented.store.pack_path(str(next(iter(pack_a))))
    before_gc = sessions.create(b, partition="p", level="disabled")
    want = expected(b_path, WEIGHT)
    assert np.array_equal(answer(sessions, before_gc.session_id, WEIGHT), want)

    store.delete(a)  # a's own tensors are freed; its pack still holds what b shares
    assert old_pack.exists()
    b_segments = {s.digest: s for s in recipe_b.segments}.values()
    live = sum(aligned(s.size) for s in b_segments)
    assert disk_bytes(store.root) >= live + 3 * WEIGHT * 4  # a's own bytes wait for gc

    assert reaper.drain(timeout_s=60)
    assert store.stats().reclaimable_bytes >= 3 * WEIGHT * 4  # what du says gc would free
    plan = plan_gc(store)
    assert [i.path for i in plan.items if i.kind == "pack_space"] == [old_pack]
    linked = store.segmented.root / "linked" / f"{b.hex}.json"
    assert linked.exists()  # b's graph, made to load it from its segments
    result = execute_gc(store, plan)
    assert not old_pack.exists()
    assert not linked.exists()  # it named the old places: made again when next needed
    assert [i.kind for i in result.removed] == ["pack_space"]
    assert result.freed_bytes >= 3 * WEIGHT * 4
    slack = 64 << 10  # the file system's own blocks (extent trees)
    assert disk_bytes(store.root) <= live + slack
    assert store.read(b, 0, os.path.getsize(b_path))[0] == b_path.read_bytes()
    assert np.array_equal(answer(sessions, before_gc.session_id, WEIGHT), want)
    after_gc = sessions.create(b, partition="p", level="disabled")
    assert np.array_equal(answer(sessions, after_gc.session_id, WEIGHT), want)
    assert linked.exists()
    assert [i for i in plan_gc(store).items if i.kind == "pack_space"] == []
    assert store.stats().reclaimable_bytes < slack
