"""Derived forms kept as segments (``[store] segments = true``): a form costs only the
tensors it changed. Source + opset-converted form + external-data split take about one
copy of the weights plus the graphs (fp16 adds its converted tensors); the derivation
reads its source from its segments and leaves no view of it behind; every form reads
back byte-identical to the same form derived in a store of whole files, and runs with
the same outputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from representations.test_derive import (
    SITE_A,
    deriver_for,
    runtime,  # noqa: F401 (a fixture)
    stored,
)
from representations.test_external_data import run_split
from webmodels.config import Config
from webmodels.representations.deriver import Form
from webmodels.representations.recipes import Recipe
from webmodels.runtime.client import Runtime
from webmodels.store.segments import reaper
from webmodels.store.store import Store

WIDTH = 256  # 256 x 256 float32: 256 KiB a weight
WEIGHTS = 3 * WIDTH * WIDTH * 4
OPSET = Recipe(opset=18)
SPLIT = Recipe.parse({"external_data": True})
FP16 = Recipe("fp16")
GRAPHS = 64 * 1024  # generous room for the graphs, headers and small tensors


def heavy_model(path: Path) -> Path:
    """``y = ((x @ w1) @ w2) @ w3 + b`` on float32[N, 256], opset 17 (onnx.helper)."""
    rng = np.random.default_rng(16)
    weights = [
        numpy_helper.from_array(
            (rng.standard_normal((WIDTH, WIDTH)) / 16).astype(np.float32), f"w{i}"
        )
        for i in (1, 2, 3)
    ]
    bias = numpy_helper.from_array(rng.standard_normal(WIDTH).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "w2"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w3"], ["h3"]),
        helper.make_node("Add", ["h3", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "heavy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", WIDTH])],
        [*weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def open_store(root: Path, *, segments: bool) -> Store:
    return Store.open(Config(home=root / "home", log_dir=root / "logs", store_segments=segments))


def physical(store: Store) -> int:
    """Bytes of the files under the store (each inode once; the index excepted) and of
    the recipes in the index (which hold a file's small parts), after the segment
    reaper removed the duplicate copies it was given."""
    assert reaper.drain(timeout_s=120.0)
    seen: set[int] = set()
    total = 0
    for folder, _, names in os.walk(store.root):
        for name in names:
            if ".sqlite" in name or ".db" in name:
                continue
            info = os.lstat(os.path.join(folder, name))
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_size
    row = store.index.query("SELECT TOTAL(LENGTH(recipe)) FROM recipes")[0]
    return total + int(row[0] or 0)


def read_back(store: Store, form: Form) -> dict[str, bytes]:
    """Each file of ``form`` read through the store (its segments when kept so)."""
    files = {part.path: part.digest for part in form.files} or {"": form.record.digest}
    out = {}
    for path, digest in files.items():
        data, size = store.read(digest, 0, 1 << 30)
        assert len(data) == size and hashlib.sha256(data).hexdigest() == digest.hex
        out[path] = data
    return out


def outputs(files: dict[str, bytes], folder: Path, x: np.ndarray) -> np.ndarray:
    if len(files) == 1:
        session = ort.InferenceSession(files[""], providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {"x": x})[0])
    folder.mkdir()
    return np.asarray(run_split(folder, files["model.onnx"], files["model.onnx_data"], x))


def test_forms_as_segments_cost_only_their_changed_tensors(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    source = heavy_model(tmp_path / "heavy.onnx")
    x = np.random.default_rng(1).standard_normal((2, WIDTH)).astype(np.float32)
    expected = outputs({"": source.read_bytes()}, tmp_path, x)
    recipes = {"opset 18": OPSET, "split": SPLIT, "fp16": FP16}
    made: dict[bool, dict[str, dict[str, bytes]]] = {}
    cost: dict[bool, dict[str, int]] = {}
    for segments in (True, False):
        with open_store(tmp_path / f"segments-{segments}", segments=segments) as store:
            deriver = deriver_for(store, runtime)
            record = stored(store, source)
            before = physical(store)
            made[segments], cost[segments] = {}, {"source": before}
            for name, recipe in recipes.items():
                form = deriver.form(record, recipe, partition=None)
                made[segments][name] = read_back(store, form)
                after = physical(store)
                cost[segments][name], before = after - before, after
                if segments:
                    digests = [p.digest for p in form.files] or [form.record.digest]
                    assert all(store.recipe_of(d) is not None for d in digests), name
            if segments:  # the source was read from its segments: no view stays
                views = store.segmented.view_dir
                assert not views.exists() or not any(views.iterdir())
    print(f"weights {WEIGHTS:,} B; extra physical bytes per form (segments on / whole files):")
    for name in ("source", *recipes):
        files = made[True][name].values() if name in recipes else [source.read_bytes()]
        logical = sum(len(data) for data in files)
        print(
            f"  {name:<9} logical {logical:>9,}  {cost[True][name]:>9,} / {cost[False][name]:>9,}"
        )

    assert made[True] == made[False]  # byte-identical to the forms stored whole
    assert cost[True]["source"] <= WEIGHTS + GRAPHS
    assert cost[True]["opset 18"] <= GRAPHS  # its graph only
    assert cost[True]["split"] <= GRAPHS
    assert cost[True]["fp16"] <= WEIGHTS // 2 + GRAPHS  # its converted tensors
    assert sum(cost[True].values()) <= WEIGHTS * 3 // 2 + 4 * GRAPHS
    for name, files in made[True].items():
        got = outputs(files, tmp_path / name.replace(" ", "-"), x)
        tolerance = recipes[name].tolerance * max(1.0, float(np.abs(expected).max()))
        assert np.abs(got - expected).max() <= tolerance, name
        if name != "fp16":
            assert np.array_equal(got, expected), name  # lossless forms


def test_a_sites_forms_as_segments_go_with_the_site_and_the_source_stays(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    source = heavy_model(tmp_path / "heavy.onnx")
    with open_store(tmp_path / "store", segments=True) as store:
        record = stored(store, source, SITE_A)
        alone = physical(store)
        deriver = deriver_for(store, runtime)
        forms = [deriver.form(record, r, partition=SITE_A) for r in (OPSET, SPLIT, FP16)]
        digests = [p.digest for f in forms for p in f.files] + [forms[0].record.digest]
        assert all(store.recipe_of(d) is not None for d in digests)  # kept as segments
        store.clear_site("http://a.localhost")
        assert all(store.get(d) is None for d in digests)
        left = physical(store)
        print(f"source alone {alone:,} B; with its forms, after clearing the site {left:,} B")
        assert left <= alone  # the forms' own segments are gone; the source's stay
        data, _ = store.read(record.digest, 0, 1 << 30)
        assert data == source.read_bytes()
