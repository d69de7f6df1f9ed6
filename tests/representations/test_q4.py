"""The q4 form (4-bit MatMul weights by ONNX Runtime's ``MatMulNBits`` quantizer) made
by a real runtime worker: smaller, within its tolerance of the source, the same bytes
from fresh stores; a model with no MatMul weights has no q4 form and gets a clear
error, with nothing kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

# runtime: the module-scoped worker of test_derive.py, shared through its fixture
from representations.test_derive import (
    deriver_for,
    open_store,
    runtime,  # noqa: F401
    sha256,
    stored,
)
from webmodels.errors import HostError
from webmodels.representations.recipes import Recipe
from webmodels.runtime.client import Runtime
from webmodels.store.representations import all_forms

Q4 = Recipe("q4")


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
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    source = wide_model(tmp_path / "wide.onnx")
    made = []
    for run in ("one", "two"):
        with open_store(tmp_path / run) as store:
            record = stored(store, source)
            form = deriver_for(store, runtime).form(record, Q4, partition=None)
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
            assert error <= Q4.tolerance
            (row,) = all_forms(store.index)
            assert row.tools["onnx_ir"] and row.tools["onnxruntime"] == ort.__version__
            assert 0 < row.max_error <= Q4.tolerance == 0.25
            print(f"q4: checked max relative error {row.max_error:.3g}, size {path.stat().st_size}")
    assert made[0] == made[1]


def test_a_model_without_matmul_weights_has_no_q4_form(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    with open_store(tmp_path) as store:
        record = stored(store, no_matmul_model(tmp_path / "plain.onnx"))
        before = {r.digest for r in store.list_models()}
        with pytest.raises(HostError) as refused:
            deriver_for(store, runtime).form(record, Q4, partition=None)
        assert refused.value.code == "representation_unavailable"
        assert "no MatMul" in refused.value.message
        page = refused.value.for_page().to_wire()
        assert page["code"] == "representation_unavailable"
        assert all_forms(store.index) == []
        assert {r.digest for r in store.list_models()} == before
