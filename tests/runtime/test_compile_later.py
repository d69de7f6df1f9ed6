"""The first session of a large model (here: any model, ``compile_later_bytes = 0``)
does not wait for ONNX Runtime's compiled copy of it, and the compiled graph kept
afterwards (what the idle-priority background compile saves) holds no copy of the
model's weights: it reads the unchanged tensors from the model's own external-data
file. A real runtime worker subprocess, the session manager in this process and a
real store; sizes are asserted, not times."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from support.manifest_models import matmul_chain, reference_run
from webmodels.config import Config
from webmodels.manifests.importing import import_model_files
from webmodels.manifests.selection import session_files
from webmodels.runtime.loader import SessionSpec
from webmodels.runtime.probe import ProbeResult, ProviderProbe
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.runtime.tensors import Tensor
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"
WIDTH = 256  # 4 layers of 256 x 256 float32: 1 MiB of external data


def compiled_sizes(store: Store) -> list[tuple[int, int | None]]:
    """(graph bytes, weights bytes or None) of every compile-cache entry in the store."""
    rows = store.index.query(
        "SELECT g.size AS graph, w.size AS weights FROM derived d "
        "JOIN objects g ON g.sha256 = d.graph LEFT JOIN objects w ON w.sha256 = d.weights"
    )
    return [(int(r["graph"]), None if r["weights"] is None else int(r["weights"])) for r in rows]


def test_a_first_session_waits_for_no_compiled_copy_and_the_cache_keeps_no_weights(
    tmp_path: Path,
) -> None:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    settings = SessionSettings(background_compile=False, compile_later_bytes=0)
    sessions = SessionManager(store, probe, settings, log_path=tmp_path / "worker.log").start()
    later: list[SessionSpec] = []
    sessions.loader.deferred = later.append  # what the background compiler is handed
    graph = matmul_chain(tmp_path / "m", width=WIDTH)
    data_size = (graph.parent / "model.onnx_data").stat().st_size
    chosen = session_files(store, import_model_files(store, graph.parent).manifest, graph=None)
    x = np.random.default_rng(9).standard_normal((1, WIDTH)).astype(np.float32)
    feeds = {"x": Tensor("float32", (1, WIDTH), x.tobytes())}
    want = reference_run(graph, x)
    try:
        first = sessions.create(chosen.graph, partition="p", files=chosen.external, level="all")
        assert first.compiled_cache_hit is False
        assert compiled_sizes(store) == [], "the first session waited for a compiled copy"
        [spec] = later  # handed on, to be compiled at idle priority
        sessions.load(sessions.runtime, spec, "background", keep=False)  # as the compiler does
        [(graph_size, weights_size)] = compiled_sizes(store)
        assert weights_size is None, f"the cache keeps a {weights_size}-byte copy of the weights"
        assert graph_size < data_size // 100
        again = sessions.create(chosen.graph, partition="p", files=chosen.external, level="all")
        assert again.compiled_cache_hit is True
        for made in (first, again):
            out = sessions.run(made.session_id, "p", feeds)["y"]
            got = np.frombuffer(out.data, np.float32).reshape(1, WIDTH)  # type: ignore[arg-type]
            np.testing.assert_allclose(got, want, rtol=1e-5)
    finally:
        sessions.close()
        store.close()


def test_only_tensors_the_optimizer_changed_stay_in_the_compiled_weights(tmp_path: Path) -> None:
    """ORT's saved graph with three tensors in its weights file: one equal to the
    model's, one changed, one new. Only the last two stay there; every tensor still
    reads its own bytes."""
    import onnx
    from onnx import helper, numpy_helper

    from webmodels.runtime.shared_weights import external_places, share_source_weights

    source = matmul_chain(tmp_path / "m", width=16, layers=2)
    original = onnx.load_model(str(source))  # with its external data
    w0, w1 = (numpy_helper.to_array(t) for t in original.graph.initializer)
    tensors = {"w0": w0, "w1": w1 + 1, "c": np.arange(300, dtype=np.float32)}
    saved = tmp_path / "saved"
    saved.mkdir()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w0"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16])],
        initializer=[numpy_helper.from_array(a, name) for name, a in tensors.items()],
    )
    onnx.save_model(
        helper.make_model(graph),
        str(saved / "model.onnx"),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    places = external_places(onnx.load_model(str(source), load_external_data=False))
    data = source.parent / "model.onnx_data"
    kept = share_source_weights(saved / "model.onnx", "weights.bin", places, {data.name: data})
    assert kept
    assert (saved / "weights.bin").stat().st_size == tensors["w1"].nbytes + tensors["c"].nbytes
    shutil.copyfile(data, saved / data.name)
    back = onnx.load_model(str(saved / "model.onnx"))  # reads both files
    for tensor in back.graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), tensors[tensor.name])
    bare = onnx.load_model(str(saved / "model.onnx"), load_external_data=False)
    where = {t.name: {e.key: e.value for e in t.external_data} for t in bare.graph.initializer}
    assert where["w0"]["location"] == data.name  # the model's own file, not a copy
