"""Which form a page's runtime gets (webmodels.representations.choice): explicit fields
win, ``for`` follows what the device reports, and hostile input is a ``bad_request``
naming the field, never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webmodels.errors import HostError
from webmodels.representations.choice import (
    MAX_OPSET,
    MIN_OPSET,
    Target,
    choose,
    explain,
    from_wire,
)

SWIFTSHADER = {"webgpu": {"features": ["float32-filterable", "subgroups", "timestamp-query"]}}
F16_GPU = {"webgpu": {"features": ["shader-f16", "float32-filterable"]}}
NPU = {"webnn": {"data_types": ["float32", "float16", "int8"]}}
WEBNN_F32 = {"webnn": {"data_types": ["float32", "int32"]}}


@pytest.mark.parametrize(
    ("query", "device", "dtype"),
    [
        ({"for": "webgpu"}, F16_GPU, "fp16"),
        ({"for": "webgpu"}, SWIFTSHADER, "fp32"),  # the adapter in this test browser
        ({"for": "webgpu"}, None, "fp32"),
        ({"for": "webnn"}, NPU, "fp16"),
        ({"for": "webnn"}, WEBNN_F32, "fp32"),
        ({"for": "webnn"}, F16_GPU, "fp32"),  # a WebGPU feature says nothing about WebNN
        ({"for": "wasm"}, F16_GPU, "fp32"),
        ({"for": "host"}, F16_GPU, "fp32"),
        ({}, {**F16_GPU, **NPU}, "fp32"),
    ],
)
def test_the_runtime_hint_follows_what_the_device_reports(
    query: dict[str, Any], device: dict[str, Any] | None, dtype: str
) -> None:
    assert choose(query, device) == Target(dtype=dtype, format="onnx", opset=None)


def test_explicit_fields_win_over_the_hint() -> None:
    query = {"for": "webgpu", "dtype": "fp32", "format": "ort", "opset": 17}
    assert choose(query, F16_GPU) == Target(dtype="fp32", format="ort", opset=17)
    assert choose({"for": "wasm", "dtype": "int8"}, None) == Target("int8", "onnx", None)
    # Explicit fp16 on an adapter without shader-f16: the page asked, the page gets it.
    assert choose({"for": "webgpu", "dtype": "fp16"}, SWIFTSHADER).dtype == "fp16"


def test_the_wire_form_carries_the_device_inside_the_representation() -> None:
    assert from_wire({"for": "webgpu", "device": F16_GPU}).dtype == "fp16"
    assert from_wire({"for": "webgpu", "device": SWIFTSHADER}).dtype == "fp32"
    assert from_wire({}) == Target("fp32", "onnx", None)


@pytest.mark.parametrize(
    ("representation", "field"),
    [
        ("webgpu", "representation"),
        ({"dtype": "fp64"}, "representation.dtype"),
        ({"dtype": "int4"}, "representation.dtype"),
        ({"format": "tflite"}, "representation.format"),
        ({"for": "webgl"}, "representation.for"),
        ({"for": ["webgpu"]}, "representation.for"),
        ({"opset": "17"}, "representation.opset"),
        ({"opset": True}, "representation.opset"),
        ({"opset": 17.0}, "representation.opset"),
        ({"opset": MIN_OPSET - 1}, "representation.opset"),
        ({"opset": MAX_OPSET + 1}, "representation.opset"),
        ({"opset": 10**400}, "representation.opset"),
        ({"precision": "fp16"}, "representation.precision"),
        ({"device": []}, "representation.device"),
        ({"device": {"webgl": {}}}, "representation.device.webgl"),
        (
            {"device": {"webgpu": {"features": "shader-f16"}}},
            "representation.device.webgpu.features",
        ),
        ({"device": {"webgpu": {"features": ["x"] * 65}}}, "representation.device.webgpu.features"),
        (
            {"device": {"webgpu": {"features": ["Shader-F16"]}}},
            "representation.device.webgpu.features",
        ),
        ({"device": {"webgpu": {"features": ["a" * 65]}}}, "representation.device.webgpu.features"),
        ({"device": {"webgpu": {"limits": {}}}}, "representation.device.webgpu.limits"),
        ({"device": {"webnn": {"data_types": [1]}}}, "representation.device.webnn.data_types"),
        ({"device": {"webnn": []}}, "representation.device.webnn"),
        (
            {"dtype": "fp32", "device": {"webnn": {"data_types": [1]}}},
            "representation.device.webnn.data_types",
        ),
    ],
)
def test_a_malformed_representation_is_a_bad_request_naming_the_field(
    representation: object, field: str
) -> None:
    with pytest.raises(HostError) as caught:
        from_wire(representation)
    assert caught.value.code == "bad_request"
    assert caught.value.details == {"field": field}
    assert caught.value.for_page().details == {"field": field}  # the page learns which


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
NAMES = st.sampled_from(["shader-f16", "float16", "float32", "subgroups", "int8", "Ü", ""])
PLAUSIBLE = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["fp32", "fp16", "int8", "q4", "int4", 16]),
        "format": st.sampled_from(["onnx", "ort", None]),
        "opset": st.one_of(st.none(), st.integers(-5, 40), st.just(17.5)),
        "for": st.sampled_from(["webgpu", "webnn", "wasm", "host", "gpu"]),
        "device": st.fixed_dictionaries(
            {},
            optional={
                "webgpu": st.fixed_dictionaries({"features": st.lists(NAMES, max_size=70)}),
                "webnn": st.one_of(
                    st.none(), st.fixed_dictionaries({"data_types": st.lists(NAMES)})
                ),
            },
        ),
    },
)


def outcome(representation: object) -> Target | str:
    try:
        return from_wire(representation)
    except HostError as error:
        assert error.code == "bad_request"
        assert str(error.details["field"]).startswith("representation")
        return error.code


@settings(max_examples=120, deadline=None)
@given(st.one_of(JSON, PLAUSIBLE, st.dictionaries(st.text(max_size=8), JSON, max_size=4)))
def test_any_json_from_a_page_gives_a_target_or_a_bad_request(representation: object) -> None:
    result = outcome(representation)
    if isinstance(result, Target):
        assert result.dtype in {"fp32", "fp16", "int8", "q4"} and result.format in {"onnx", "ort"}
        assert result.opset is None or MIN_OPSET <= result.opset <= MAX_OPSET
        json.dumps(representation)  # only JSON-shaped input passes


@settings(max_examples=100, deadline=None)
@given(PLAUSIBLE)
def test_a_named_dtype_is_always_what_the_page_gets(representation: dict[str, Any]) -> None:
    result = outcome(representation)
    if isinstance(result, Target) and "dtype" in representation:
        assert result.dtype == representation["dtype"]


def test_the_log_line_names_only_the_facts_the_choice_used() -> None:
    line = explain({"for": "webgpu", "device": SWIFTSHADER})
    assert line == "for webgpu, device: webgpu shader-f16 no -> fp32 onnx opset source"
    assert "subgroups" not in line
    assert explain({"for": "webnn", "device": NPU, "opset": 17}) == (
        "for webnn, device: webnn float16 yes -> fp16 onnx opset 17"
    )
    assert explain({}) == "for host, device: nothing reported -> fp32 onnx opset source"


def test_an_opset_range_keeps_a_fitting_source_and_otherwise_takes_its_highest() -> None:
    from webmodels.representations.recipes import Recipe

    ranged = Recipe.requested({"dtype": "fp16", "opset": "15-19"})
    assert ranged.opset_range == (15, 19) and not ranged.identity
    assert ranged.for_source({"ai.onnx": 17}) == Recipe("fp16", "onnx", None)
    assert ranged.for_source({"ai.onnx": 13}) == Recipe("fp16", "onnx", 19)
    assert Recipe.requested({"opset": "15-19"}).for_source({"ai.onnx": 17}).identity
    open_top = Recipe.requested({"opset": {"min": 18}})
    assert open_top.for_source({"ai.onnx": 17}).opset == MAX_OPSET  # the newest onnx knows
    assert Recipe.requested({"opset": {"max": 999}}).for_source({"ai.onnx": 9}).opset is None
    assert explain({"opset": {"min": 17, "max": 21}}).endswith("-> fp32 onnx opset 17-21")


def test_a_declared_form_fits_a_range_when_its_opset_is_in_it() -> None:
    from webmodels.catalogs.forms import DeclaredForm
    from webmodels.digest import Digest
    from webmodels.representations.declared import fits
    from webmodels.representations.recipes import Recipe

    def form(dtype: str, opset: int | None) -> DeclaredForm:
        return DeclaredForm(dtype, "onnx", opset, Digest("ab" * 32), 1, ())

    asked = Recipe.requested({"dtype": "fp16", "opset": "17-21"})
    assert fits(form("fp16", 18), asked)
    assert not fits(form("fp16", 22), asked) and not fits(form("fp16", None), asked)
    assert not fits(form("int8", 18), asked)
    assert fits(form("fp16", None), Recipe("fp16"))  # no range: the exact recipe
