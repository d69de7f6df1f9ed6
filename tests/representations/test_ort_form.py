"""The ORT format (``format: "ort"``) made by ONNX Runtime's converter in a real
runtime worker: checked numerically like the other forms, loadable by ONNX Runtime,
and recorded as not deterministic (ORT's serializer is not: the test prints whether
two fresh stores got the same bytes this time)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

# runtime: the module-scoped worker of test_derive.py, shared through its fixture
from representations.test_derive import (
    dense_model,
    deriver_for,
    open_store,
    runtime,  # noqa: F401
    sha256,
    stored,
)
from webmodels.representations.recipes import Recipe
from webmodels.runtime.client import Runtime
from webmodels.store.representations import all_forms

RECIPES = {"fp32": Recipe("fp32", "ort"), "int8": Recipe("int8", "ort")}


def test_the_ort_format_is_checked_runs_and_says_it_is_not_deterministic(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    source = dense_model(tmp_path / "dense.onnx")
    made: dict[str, list[str]] = {dtype: [] for dtype in RECIPES}
    for run in ("one", "two"):
        with open_store(tmp_path / run) as store:
            deriver = deriver_for(store, runtime)
            record = stored(store, source)
            for dtype, recipe in RECIPES.items():
                form = deriver.form(record, recipe, partition=None)
                assert form.record.format == "ort"
                assert form.to_wire()["representation"] == {
                    "dtype": dtype,
                    "format": "ort",
                    "opset": None,
                }
                assert [v.name for v in form.record.metadata.inputs] == ["x"]
                made[dtype].append(sha256(store, form.record))
                data = store.locate(form.record.digest).path.read_bytes()
                assert data[4:8] == b"ORTM"  # the ORT format's flatbuffer identifier
                if dtype == "fp32":
                    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
                    want = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
                    got = ort.InferenceSession(data).run(None, {"x": x})[0]
                    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
            rows = {json.loads(p.recipe)["dtype"]: p for p in all_forms(store.index)}
            for dtype, row in rows.items():
                assert json.loads(row.recipe)["format"] == "ort"
                assert row.tools["deterministic"] == "no"
                assert row.tools["onnxruntime"] == ort.__version__
                assert 0 <= row.max_error <= RECIPES[dtype].tolerance
                print(f"ort {dtype}: max relative error {row.max_error:.3g}")
    for dtype, digests in made.items():
        print(f"ort {dtype}: same bytes in two fresh stores: {digests[0] == digests[1]}")
    assert made["fp32"][0] != made["int8"][0]
