"""The checks the worker runs on a model before ONNX Runtime sees it (pure: a parsed
ModelProto in, HostError out)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.models import real_model
from support.runtime_models import external_data_model, identity_model
from webmodels.errors import HostError
from webmodels.runtime.safety import ModelLimits, check_model

LIMITS = ModelLimits()


def refused(model: onnx.ModelProto, **kwargs: object) -> HostError:
    with pytest.raises(HostError) as caught:
        check_model(model, limits=kwargs.pop("limits", LIMITS), **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_real_and_tiny_models_pass() -> None:
    check_model(onnx.load(str(real_model("magika"))), limits=LIMITS)
    check_model(identity_model("string"), limits=LIMITS)


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share\\w.bin", "absolute path"),
        ("C:\\w.bin", "absolute path"),
        ("", "names no file"),
        ("../w.bin", "outside the model's folder"),
        ("a/../../w.bin", "outside the model's folder"),
        ("..\\w.bin", "outside the model's folder"),
        ("w.bin", "not part of the model's manifest"),
    ],
)
def test_external_data_outside_the_manifest_is_unsafe(location: str, says: str) -> None:
    error = refused(external_data_model(location))
    assert error.code == "model_unsafe"
    assert says in error.message
    assert error.details == {"tensor": "w"}


def test_external_data_inside_the_manifest_is_accepted_within_its_file() -> None:
    model = external_data_model("weights.bin")
    check_model(model, limits=LIMITS, external_files={"weights.bin": 16})
    short = refused(model, external_files={"weights.bin": 8})
    assert "past the end" in short.message


def test_links_in_the_model_folder_are_named(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 16)
    folder = tmp_path / "models"
    folder.mkdir()
    os.symlink(outside, folder / "sym.bin")
    os.link(outside, folder / "hard.bin")
    assert "symbolic link" in refused(external_data_model("sym.bin"), model_dir=folder).message
    assert "hard link" in refused(external_data_model("hard.bin"), model_dir=folder).message


def test_sparse_tensors_with_external_data_are_unsafe() -> None:
    error = refused(
        external_data_model("weights.bin", sparse=True), external_files={"weights.bin": 16}
    )
    assert error.code == "model_unsafe" and "sparse tensor" in error.message


def test_external_data_in_subgraphs_is_found() -> None:
    inner = external_data_model("/etc/shadow")
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])], "b", [], [y], list(inner.graph.initializer)
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    model = helper.make_model(helper.make_graph([node], "g", [cond], [y]))
    assert refused(model).code == "model_unsafe"


def test_custom_domains_and_foreign_ep_context_are_unsafe() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    custom = helper.make_model(
        helper.make_graph([helper.make_node("Op", ["x"], ["x2"], domain="my.ops")], "g", [x], [])
    )
    error = refused(custom)
    assert error.code == "model_unsafe" and "custom-op library" in error.message
    context = helper.make_node(
        "EPContext", ["x"], ["y"], domain="com.microsoft", embed_mode=0, ep_cache_context="e.bin"
    )
    ep = helper.make_model(helper.make_graph([context], "g", [x], []))
    assert "EPContext" in refused(ep).message
    assert "EPContext" in refused(ep, derived=True).message  # only embedded engines
    embedded = helper.make_node("EPContext", ["x"], ["y"], domain="com.microsoft", embed_mode=1)
    check_model(
        helper.make_model(helper.make_graph([embedded], "g", [x], [])), limits=LIMITS, derived=True
    )


def test_model_local_functions_are_not_custom_ops() -> None:
    function = helper.make_function(
        "local.fn",
        "Twice",
        ["a"],
        ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph(
        [helper.make_node("Twice", ["x"], ["y"], domain="local.fn")], "g", [x], [y]
    )
    model = helper.make_model(
        graph,
        functions=[function],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fn", 1)],
    )
    check_model(model, limits=LIMITS)


def test_size_caps() -> None:
    magika = onnx.load(str(real_model("magika")))
    nodes = refused(magika, limits=ModelLimits(max_nodes=10))
    assert nodes.code == "too_large" and "10 nodes" in nodes.message
    big = numpy_helper.from_array(np.zeros((64, 64), np.float32), "big")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([], "g", [x], [x], [big]))
    assert refused(model, limits=ModelLimits(max_tensor_bytes=1000)).code == "too_large"
    declared = helper.make_tensor_value_info("h", TensorProto.FLOAT, [1 << 20, 1 << 20])
    huge = helper.make_model(helper.make_graph([], "g", [declared], [declared]))
    assert refused(huge).code == "too_large"
    unknown = helper.make_tensor_value_info("u", TensorProto.FLOAT, [-1, "n", 3])  # Paddle's -1
    check_model(helper.make_model(helper.make_graph([], "g", [unknown], [unknown])), limits=LIMITS)
