"""The runtime worker's side of multi-file models (a real worker subprocess, the
session manager in this process): external data under a sub-folder is linked where
the graph expects it; the worker itself refuses a location the host did not hand it
a file for, whatever the host-side checks did; the private folder does not outlive
the session's creation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.manifest_models import matmul_chain, reference_run
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.manifests.importing import import_model_files
from webmodels.manifests.selection import session_files
from webmodels.runtime.probe import ProbeResult, ProviderProbe
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.runtime.tensors import Tensor
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"
WIDTH = 128


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[SessionManager, Store]]:
    store = Store.open(Config(home=tmp_path / "home", log_dir=tmp_path / "logs"))
    probe = ProviderProbe(runner=lambda timeout: ProbeResult("1.31.1", (CPU,), (CPU,)))
    settings = SessionSettings(background_compile=False)
    sessions = SessionManager(store, probe, settings, log_path=tmp_path / "worker.log").start()
    yield sessions, store
    sessions.close()
    store.close()


def test_external_data_in_a_sub_folder_is_linked_where_the_graph_expects_it(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    sessions, store = manager
    graph = matmul_chain(tmp_path / "m", width=WIDTH, data="weights/part-0.bin")
    manifest = import_model_files(store, graph.parent).manifest
    chosen = session_files(store, manifest, graph=None)
    assert [name for name, _ in chosen.external] == ["weights/part-0.bin"]

    created = sessions.create(chosen.graph, partition="p", files=chosen.external)
    x = np.random.default_rng(9).standard_normal((1, WIDTH)).astype(np.float32)
    out = sessions.run(created.session_id, "p", {"x": Tensor("float32", (1, WIDTH), x.tobytes())})
    got = np.frombuffer(out["y"].data, np.float32).reshape(1, WIDTH)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, reference_run(graph, x), rtol=1e-5)
    assert list(store.files.tmp_dir.glob("*.load")) == []  # the private folder is gone


def test_the_worker_refuses_a_location_it_was_handed_no_file_for(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    sessions, store = manager
    graph = matmul_chain(tmp_path / "m", width=WIDTH)
    manifest = import_model_files(store, graph.parent).manifest
    chosen = session_files(store, manifest, graph=None)
    [(_, data)] = chosen.external
    for files in ([("other.bin", data)], []):
        with pytest.raises(HostError) as caught:
            sessions.create(chosen.graph, partition="p", files=files)
        assert caught.value.code == "model_unsafe"
        assert "manifest" in caught.value.message


def test_the_compile_cache_keys_on_the_external_data_too(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    """Two models with byte-identical graphs and different weights: each gets its own
    compiled graph, and a second session of the first is a cache hit."""
    sessions, store = manager
    x = np.random.default_rng(9).standard_normal((1, WIDTH)).astype(np.float32)
    feeds = {"x": Tensor("float32", (1, WIDTH), x.tobytes())}
    hits = []
    for seed in (1, 2, 1):
        graph = matmul_chain(tmp_path / f"m{seed}", width=WIDTH, seed=seed)
        manifest = import_model_files(store, graph.parent).manifest
        chosen = session_files(store, manifest, graph=None)
        created = sessions.create(chosen.graph, partition="p", files=chosen.external)
        hits.append(created.compiled_cache_hit)
        out = sessions.run(created.session_id, "p", feeds)
        got = np.frombuffer(out["y"].data, np.float32).reshape(1, WIDTH)  # type: ignore[arg-type]
        np.testing.assert_allclose(got, reference_run(graph, x), rtol=1e-5)
    graphs = {(tmp_path / f"m{seed}" / "model.onnx").read_bytes() for seed in (1, 2)}
    assert len(graphs) == 1  # the same graph bytes: only the weights differ
    assert hits == [False, False, True]


def test_external_data_of_a_node_attribute_is_read_from_the_manifests_file(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    """A Constant node whose tensor lives in the external-data file (tensors outside the
    main graph's initializers are put back into the graph by the worker, from the
    manifest's file) runs with the manifest's bytes."""
    import onnx
    from onnx import TensorProto, helper

    sessions, store = manager
    folder = tmp_path / "const"
    folder.mkdir()
    bias = np.arange(4, dtype=np.float32)
    (folder / "model.onnx_data").write_bytes(b"\0" * 64 + bias.tobytes())
    value = TensorProto(name="bias", data_type=TensorProto.FLOAT, dims=[4])
    value.data_location = TensorProto.EXTERNAL
    for key, text in (("location", "model.onnx_data"), ("offset", "64"), ("length", "16")):
        entry = value.external_data.add()
        entry.key, entry.value = key, text
    nodes = [
        helper.make_node("Constant", [], ["b"], value=value),
        helper.make_node("Add", ["x", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "const",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(folder / "model.onnx"))

    manifest = import_model_files(store, folder).manifest
    chosen = session_files(store, manifest, graph=None)
    created = sessions.create(chosen.graph, partition="p", files=chosen.external)
    x = np.ones(4, np.float32)
    out = sessions.run(created.session_id, "p", {"x": Tensor("float32", (4,), x.tobytes())})
    assert np.frombuffer(out["y"].data, np.float32).tolist() == [1.0, 2.0, 3.0, 4.0]  # type: ignore[arg-type]
