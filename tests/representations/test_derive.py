"""Derived forms in a real store, made by a real runtime worker: the same bytes from
fresh stores, provenance recorded, a form that changes the outputs refused, forms of a
model that is not common kept per partition, and the q4 form (4-bit MatMul weights)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.models import real_model
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.representations.deriver import Deriver
from webmodels.representations.recipes import Recipe
from webmodels.runtime.client import Runtime, WorkerOptions
from webmodels.runtime.settings import SessionSettings
from webmodels.store.records import ModelRecord
from webmodels.store.representations import all_forms
from webmodels.store.store import Store

SITE_A = "http://a.localhost http://a.localhost"
SITE_B = "http://b.localhost http://b.localhost"


def dense_model(path: Path, *, scale: float = 1.0) -> Path:
    """``y = x @ w + b`` on float32[N, 8]; ``scale`` multiplies the weights and bias
    (1e5 puts them past fp16's largest finite value, 65504)."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array((rng.standard_normal((8, 4)) * scale).astype(np.float32), "w")
    b = numpy_helper.from_array(np.full((4,), scale, np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "dense", [x], [y], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def open_store(root: Path) -> Store:
    return Store.open(Config(home=root / "home", log_dir=root / "logs"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    """One background-priority worker for the module's derivers (a start costs ~1 s)."""
    shared = Runtime(WorkerOptions(background=True))
    yield shared
    shared.close()


def deriver_for(store: Store, runtime: Runtime, *, common: bool = False) -> Deriver:
    return Deriver(store, SessionSettings(), is_common=lambda record: common, runtime=runtime)


def stored(store: Store, path: Path, *sites: str) -> ModelRecord:
    record = store.import_file(path).model
    for site in sites:
        store.record_use(record.digest, site)
    return record


def sha256(store: Store, record: ModelRecord) -> str:
    return hashlib.sha256(store.locate(record.digest).path.read_bytes()).hexdigest()


def test_a_recipe_gives_the_same_bytes_in_fresh_stores_with_provenance(
    tmp_path: Path, runtime: Runtime
) -> None:
    source = dense_model(tmp_path / "dense.onnx")
    made: dict[str, list[str]] = {"fp16": [], "int8": []}
    for run in ("one", "two"):
        with open_store(tmp_path / run) as store:
            deriver = deriver_for(store, runtime)
            record = stored(store, source)
            for dtype in made:
                form = deriver.form(record, Recipe(dtype), partition=None)
                assert form.record.digest != record.digest
                made[dtype].append(sha256(store, form.record))

            rows = {json.loads(p.recipe)["dtype"]: p for p in all_forms(store.index)}
            assert set(rows) == {"fp16", "int8"}
            for dtype, row in rows.items():
                assert row.source == record.digest and row.scope == ""
                assert row.tools["onnx"] == onnx.__version__
                assert {"onnxruntime", "onnxconverter_common", "numpy"} <= set(row.tools)
                assert 0 <= row.max_error <= Recipe(dtype).tolerance
                print(f"{dtype}: max relative error {row.max_error:.3g}")
    for dtype, digests in made.items():
        assert digests[0] == digests[1], dtype
    assert made["fp16"][0] != made["int8"][0]


def test_an_opset_recipe_converts_the_graph(store: Store, tmp_path: Path, runtime: Runtime) -> None:
    record = stored(store, dense_model(tmp_path / "dense.onnx"))
    deriver = deriver_for(store, runtime)
    form = deriver.form(record, Recipe("fp32", opset=21), partition=None)

    model = onnx.load(str(store.locate(form.record.digest).path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [21]
    assert form.to_wire() == {
        "representation": {"dtype": "fp32", "format": "onnx", "opset": 21},
        "derived_from": record.digest.hex,
    }


def test_a_form_that_changes_the_outputs_is_refused_and_not_kept(
    store: Store, tmp_path: Path, runtime: Runtime
) -> None:
    record = stored(store, dense_model(tmp_path / "huge.onnx", scale=1e5), SITE_A)
    before = {r.digest for r in store.list_models()}
    deriver = deriver_for(store, runtime)
    with pytest.raises(HostError) as refused:
        deriver.form(record, Recipe("fp16"), partition=SITE_A)

    assert refused.value.code == "model_invalid"
    assert "fp16 form of this model changes its outputs" in refused.value.message
    print(refused.value.message)
    assert all_forms(store.index) == []
    assert {r.digest for r in store.list_models()} == before
    assert not list(store.files.tmp_dir.iterdir())  # its work folder is gone too


def test_forms_of_a_model_not_common_are_derived_again_per_partition(
    store: Store, tmp_path: Path, runtime: Runtime
) -> None:
    record = stored(store, dense_model(tmp_path / "dense.onnx"), SITE_A, SITE_B)
    deriver = deriver_for(store, runtime)
    first = deriver.form(record, Recipe("fp16"), partition=SITE_A)
    again = deriver.form(record, Recipe("fp16"), partition=SITE_A)
    assert deriver.derived == 1  # its own form, found
    second = deriver.form(record, Recipe("fp16"), partition=SITE_B)
    assert deriver.derived == 2  # derived again: A's form tells B nothing

    assert first.record.digest == again.record.digest == second.record.digest
    assert {p.scope for p in all_forms(store.index)} == {SITE_A, SITE_B}
    assert set(store.get(first.record.digest).sites) == {SITE_A, SITE_B}  # type: ignore[union-attr]


def test_forms_of_a_common_model_are_shared(store: Store, tmp_path: Path, runtime: Runtime) -> None:
    record = stored(store, dense_model(tmp_path / "dense.onnx"), SITE_A, SITE_B)
    deriver = deriver_for(store, runtime, common=True)
    deriver.form(record, Recipe("fp16"), partition=SITE_A)
    deriver.form(record, Recipe("fp16"), partition=SITE_B)

    assert deriver.derived == 1
    assert {p.scope for p in all_forms(store.index)} == {""}


def test_a_shared_form_serves_a_partition_only_when_it_sees_the_bytes(
    store: Store, tmp_path: Path, runtime: Runtime
) -> None:
    record = stored(store, dense_model(tmp_path / "dense.onnx"), SITE_A, SITE_B)
    deriver = deriver_for(store, runtime)
    made = deriver.form(record, Recipe("int8"), partition=None)  # the user's (CLI)
    held = deriver.form(record, Recipe("int8"), partition=SITE_A, visible=made.record.digest.__eq__)
    assert deriver.derived == 1 and held.record.digest == made.record.digest
    deriver.form(record, Recipe("int8"), partition=SITE_B)  # B cannot see those bytes
    assert deriver.derived == 2


def test_clearing_a_site_forgets_its_forms(store: Store, tmp_path: Path, runtime: Runtime) -> None:
    record = stored(store, dense_model(tmp_path / "dense.onnx"), SITE_A)
    form = deriver_for(store, runtime).form(record, Recipe("fp16"), partition=SITE_A)
    store.clear_site("http://a.localhost")
    assert store.index.query("SELECT * FROM representations") == []
    assert store.get(form.record.digest) is None  # its site reference was all that held it


def test_real_models_int8_is_kept_and_a_broken_fp16_graph_refused(
    store: Store, runtime: Runtime
) -> None:
    """magika (a real model from its PyPI wheel): int8 within tolerance; the fp16
    converter writes a graph ONNX Runtime cannot load (a Cast typed float16 where
    float is expected), which is refused, not given out."""
    record = stored(store, real_model("magika"), SITE_A)
    deriver = deriver_for(store, runtime)
    int8 = deriver.form(record, Recipe("int8"), partition=SITE_A)
    assert int8.provenance is not None and int8.record.size < record.size // 2
    print(f"magika int8: {int8.record.size} bytes, max error {int8.provenance.max_error:.3g}")
    with pytest.raises(HostError) as refused:
        deriver.form(record, Recipe("fp16"), partition=SITE_A)
    assert refused.value.code == "model_invalid"
    assert "the derived form does not run" in refused.value.message
    assert len(all_forms(store.index)) == 1


def wide_model(path: Path) -> Path:
    """``y = relu(x @ w1) @ w2`` on float32[N, 64]: both weights have 64 rows, two
    blocks of 32 for the 4-bit quantizer."""
    rng = np.random.default_rng(11)
    w1 = numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((64, 16)).astype(np.float32), "w2")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "wide", [x], [y], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def no_matmul_model(path: Path) -> Path:
    """``y = relu(x + b)``: weights, but no MatMul to quantize."""
    b = numpy_helper.from_array(np.ones((64,), np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])
    nodes = [helper.make_node("Add", ["x", "b"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "plain", [x], [y], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def test_the_q4_form_is_4_bit_matmuls_within_tolerance_and_deterministic(
    tmp_path: Path, runtime: Runtime
) -> None:
    source = wide_model(tmp_path / "wide.onnx")
    made = []
    for run in ("one", "two"):
        with open_store(tmp_path / run) as store:
            record = stored(store, source)
            form = deriver_for(store, runtime).form(record, Recipe("q4"), partition=None)
            assert form.to_wire() == {
                "representation": {"dtype": "q4", "format": "onnx", "opset": None},
                "derived_from": record.digest.hex,
            }
            made.append(sha256(store, form.record))
            path = store.locate(form.record.digest).path
            assert path.stat().st_size < source.stat().st_size / 4  # 4 bits, not 32
            model = onnx.load(str(path))
            quantized = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
            assert len(quantized) == 2
            attrs = {a.name: a.i for a in quantized[0].attribute}
            assert attrs["bits"] == 4 and attrs["block_size"] == 32
            # What a user runs: the form in ONNX Runtime, next to the source.
            x = np.random.default_rng(3).standard_normal((5, 64)).astype(np.float32)
            want = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
            got = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
            error = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
            print(f"q4: relative error on other inputs {error:.3g}")
            assert error <= Recipe("q4").tolerance
            (row,) = all_forms(store.index)
            assert row.tools["onnx_ir"] and row.tools["onnxruntime"] == ort.__version__
            assert 0 < row.max_error <= Recipe("q4").tolerance == 0.25
            print(f"q4: checked max relative error {row.max_error:.3g}, size {path.stat().st_size}")
    assert made[0] == made[1]
