"""The compile cache keeps ONNX Runtime's optimized graph as segments (with the
segments switch on): every tensor the optimizer left as it was is the very segment
the source model holds, so the source and its compiled graph take one copy of the
weights plus what the optimizer changed and the graphs. The cached session loads
from the segments (no whole copy) and answers as the source does.

The source is loaded from a reconstructed view here (hard links stood in as failing,
as in test_sessions.py), so ONNX Runtime saves *every* tensor in its weights file: the
sharing comes from the segments alone, not from the graph naming the source's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from webmodels.digest import Digest
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.tensors import Tensor
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"
SIDE = 256  # 256 x 256 float32: 256 KiB a weight
WEIGHT = SIDE * SIDE * 4


def four_weights(path: Path) -> Path:
    """x @ w0 @ w1 @ w2 @ transpose(w3): the optimizer folds the transpose into a new
    tensor and keeps w0..w2 byte for byte."""
    rng = np.random.default_rng(15)
    weights = [rng.standard_normal((SIDE, SIDE)).astype(np.float32) for _ in range(4)]
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["a0"]),
        helper.make_node("MatMul", ["a0", "w1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2"], ["a2"]),
        helper.make_node("Transpose", ["w3"], ["w3t"]),
        helper.make_node("MatMul", ["a2", "w3t"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "four",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SIDE])],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def run(sessions: SessionManager, session_id: str) -> bytes:
    x = np.linspace(-1, 1, SIDE, dtype=np.float32).reshape(1, SIDE)
    got = sessions.run(session_id, "p", {"x": Tensor("float32", (1, SIDE), x.tobytes())})
    return bytes(got["y"].data)  # type: ignore[arg-type]


def test_a_compiled_graph_shares_its_unchanged_weights_with_the_source(
    manager: tuple[SessionManager, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions, store = manager
    monkeypatch.setattr("webmodels.runtime.segment_sessions.links_work", lambda store: False)
    source = four_weights(tmp_path / "four.onnx")
    digest = store.import_file(source).model.digest
    first = sessions.create(digest, partition="p")  # compiles and saves
    assert not first.compiled_cache_hit
    [row] = store.index.query("SELECT graph, weights FROM derived WHERE graph IS NOT NULL")
    graph, weights = Digest(row["graph"]), Digest(row["weights"])
    source_recipe, weights_recipe = store.recipe_of(digest), store.recipe_of(weights)
    assert source_recipe is not None and weights_recipe is not None
    assert store.recipe_of(graph) is not None

    root = store.segmented.root
    whole = [p for p in (root / "blobs").rglob("*") if p.is_file()]
    segments = store.segmented.store.physical_bytes()
    shared = {s.digest for s in weights_recipe.segments} & {
        s.digest for s in source_recipe.segments
    }
    print(
        f"source {source_recipe.size} B, compiled weights {weights_recipe.size} B; "
        f"segments on disk {segments} B (one copy of the weights {4 * WEIGHT} B), "
        f"whole files {sum(p.stat().st_size for p in whole)} B; "
        f"{len(shared)} of {len(weights_recipe.segments)} compiled tensors shared"
    )
    assert weights_recipe.size >= 4 * WEIGHT  # ORT saved every tensor
    assert len(shared) == 3  # w0, w1, w2; the folded transpose is new
    assert whole == []  # the compiled graph and weights are not kept whole
    assert segments <= 5 * WEIGHT  # the source's four weights + the folded one

    # The cached session loads from the segments and answers as the source does.
    expected = ort.InferenceSession(str(source), providers=[CPU]).run(
        None, {"x": np.linspace(-1, 1, SIDE, dtype=np.float32).reshape(1, SIDE)}
    )[0]
    second = sessions.create(digest, partition="p")
    assert second.compiled_cache_hit
    assert run(sessions, second.session_id) == expected.tobytes()
    assert [p.name for p in (root / "views").iterdir()] == [digest.hex]  # the source's only

    # Deleting the model takes its compiled graph's segments with it, shared or not.
    store.delete(digest, force=True)
    assert store.index.query("SELECT COUNT(*) AS n FROM recipes")[0]["n"] == 0
    assert store.segmented.store.physical_bytes() == 0
