"""Outputs through the host (sessions.create/run over the real protocol, ONNX Runtime in
the worker) equal ONNX Runtime's own outputs in this process, bit for bit, on the CPU:
for the real models of docs/models.md and for a tiny model of every element type."""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from support.host import HostProcess
from support.models import real_model
from support.runtime_models import (
    WIRE_TYPES,
    cast_model,
    identity_model,
    sample,
    save,
    wire,
    wire_bytes,
)

TYPES = list(WIRE_TYPES)
CASTS = [
    ("float32", "float16"),
    ("float32", "bfloat16"),
    ("int64", "bool"),
    ("bool", "int64"),
    ("float64", "int8"),
    ("string", "float32"),
    ("uint8", "string"),
]
REAL = ["magika", "silero-vad", "ocr-cls", "ocr-det"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("preinstalled")
    paths = {f"id-{t}": save(identity_model(t), folder / f"id-{t}.onnx") for t in TYPES}
    for source, target in CASTS:
        paths[f"cast-{source}-{target}"] = save(
            cast_model(source, target), folder / f"cast-{source}-{target}.onnx"
        )
    for name in REAL:
        target = folder / f"{name}.onnx"
        target.write_bytes(real_model(name).read_bytes())
        paths[name] = target
    listing = [{"file": p.name} for p in paths.values()]
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": listing}))
    return paths


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]
) -> Iterator[HostProcess]:
    home = tmp_path_factory.mktemp("home")
    folder = next(iter(models.values())).parent
    proc = HostProcess(home, WEBMODELS_PREINSTALLED=str(folder))
    yield proc
    proc.kill()


def through_host(
    host: HostProcess, path: Path, feeds: dict[str, Any], *, hit: bool | None = None
) -> dict[str, Any]:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    created = host.result("sessions.create", {"sha256": sha, "execution_providers": ["cpu"]})
    assert created["provider"] == "CPUExecutionProvider"
    if hit is not None:
        assert created["compiled_cache_hit"] is hit
    try:
        reply = host.result("sessions.run", {"session_id": created["session_id"], "feeds": feeds})
    finally:
        host.result("sessions.release", {"session_id": created["session_id"]})
    return {name: fetched(host, out) for name, out in reply["outputs"].items()}


def fetched(host: HostProcess, output: dict[str, Any]) -> dict[str, Any]:
    """An output as inline data: one the host kept (past a reply frame) is read back
    with sessions.output, as the page API does."""
    if "ref" not in output:
        return output
    chunks, offset = [], 0
    while offset < output["size"]:
        part = host.result("sessions.output", {"ref": output["ref"], "offset": offset})
        chunks.append(base64.b64decode(part["data"]))
        offset += part["length"]
    data = base64.b64encode(b"".join(chunks)).decode()
    return {"type": output["type"], "dims": output["dims"], "data": data}


def direct(path: Path, arrays: dict[str, Any]) -> dict[str, tuple[str, list[int], Any]]:
    """ONNX Runtime in this process: (type, dims, bytes or strings) per output."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    bf16 = any(o.type == "tensor(bfloat16)" for o in session.get_outputs())
    if bf16 or any(i.type == "tensor(bfloat16)" for i in session.get_inputs()):
        values = {
            n: ort.OrtValue.ortvalue_from_numpy_with_onnx_type(a, 16)
            if i.type == "tensor(bfloat16)"
            else ort.OrtValue.ortvalue_from_numpy(a)
            for (n, a), i in zip(arrays.items(), session.get_inputs(), strict=True)
        }
        results = {}
        for name, value in zip(names, session.run_with_ort_values(names, values), strict=True):
            dims = list(value.shape())
            if value.data_type() == "tensor(bfloat16)":
                raw = ctypes.string_at(value.data_ptr(), int(np.prod(dims)) * 2)
                results[name] = ("bfloat16", dims, raw)
            else:
                results[name] = _encode(value.numpy())
        return results
    return {n: _encode(v) for n, v in zip(names, session.run(names, arrays), strict=True)}


def _encode(array: np.ndarray[Any, Any]) -> tuple[str, list[int], Any]:
    dims = list(array.shape)
    if array.dtype == object:
        return "string", dims, [str(s) for s in array.ravel()]
    if array.dtype == np.bool_:
        return "bool", dims, array.astype("u1").tobytes()
    for name, (_, dtype) in WIRE_TYPES.items():
        if name not in ("bool", "bfloat16", "string") and np.dtype(dtype) == array.dtype:
            return name, dims, array.astype(dtype).tobytes()
    raise AssertionError(array.dtype)


def as_input(type_name: str, array: np.ndarray[Any, Any]) -> Any:
    return array.astype(bool) if type_name == "bool" else array


def compare(host_out: dict[str, Any], expected: dict[str, tuple[str, list[int], Any]]) -> None:
    assert set(host_out) == set(expected)
    for name, (type_name, dims, data) in expected.items():
        got = host_out[name]
        assert (got["type"], got["dims"]) == (type_name, dims), name
        assert wire_bytes(got) == data, f"{name}: outputs differ"


@pytest.mark.parametrize("type_name", TYPES)
def test_every_element_type_round_trips_bit_exact(
    host: HostProcess, models: dict[str, Path], type_name: str
) -> None:
    array = sample(type_name, (2, 3, 4), seed=len(type_name))
    outputs = through_host(host, models[f"id-{type_name}"], {"x": wire(type_name, array)})
    compare(outputs, direct(models[f"id-{type_name}"], {"x": as_input(type_name, array)}))
    assert wire_bytes(outputs["y"]) == wire_bytes(wire(type_name, array))


@pytest.mark.parametrize(("source", "target"), CASTS)
def test_casts_between_types_equal_onnx_runtime(
    host: HostProcess, models: dict[str, Path], source: str, target: str
) -> None:
    array = sample(source, (3, 5), seed=7)
    if source == "string":
        array = np.array(["1.5", "-2", "nan", "1e3", "0"] * 3, dtype=object).reshape(3, 5)
    path = models[f"cast-{source}-{target}"]
    outputs = through_host(host, path, {"x": wire(source, array)})
    compare(outputs, direct(path, {"x": as_input(source, array)}))


def test_empty_tensors(host: HostProcess, models: dict[str, Path]) -> None:
    for dims in [(0, 0, 0), (2, 0, 3)]:
        array = sample("float32", dims)
        outputs = through_host(host, models["id-float32"], {"x": wire("float32", array)})
        assert outputs["y"]["dims"] == list(dims)
        assert wire_bytes(outputs["y"]) == array.tobytes()


def real_feeds(name: str) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(3)
    if name == "magika":
        return {"bytes": rng.integers(0, 257, (2, 2048)).astype(np.int32)}
    if name == "silero-vad":
        return {
            "input": rng.normal(0, 0.3, (1, 512)).astype(np.float32),
            "state": np.zeros((2, 1, 128), np.float32),
            "sr": np.array(16000, np.int64),
        }
    if name == "ocr-det":  # its 1x1x640x640 output (1.6 MB) is past one reply frame
        return {"x": rng.random((1, 3, 640, 640), dtype=np.float32)}
    return {"x": rng.random((2, 3, 48, 192), dtype=np.float32)}


@pytest.mark.parametrize("name", REAL)
def test_real_models_equal_onnx_runtime_bit_exact(
    host: HostProcess, models: dict[str, Path], name: str
) -> None:
    arrays = real_feeds(name)
    feeds = {k: wire(_type_of(v), v) for k, v in arrays.items()}
    expected = direct(models[name], arrays)
    first = through_host(host, models[name], feeds)  # compiles (or hits the background's)
    second = through_host(host, models[name], feeds, hit=True)
    compare(first, expected)
    compare(second, expected)


def _type_of(array: np.ndarray[Any, Any]) -> str:
    return _encode(array)[0]
