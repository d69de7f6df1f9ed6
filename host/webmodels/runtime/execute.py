"""Running one session on wire tensors (in the worker: numpy and ONNX Runtime).

Inputs become numpy arrays or OrtValues without copying where numpy allows it; outputs
go back as their little-endian bytes. ``bfloat16`` has no numpy type, so such tensors
travel as OrtValues built from (and read back as) raw 16-bit words.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from webmodels.errors import HostError
from webmodels.runtime.tensors import BY_ORT_TYPE, ELEMENT_TYPES, Tensor, parse_frame

NUMPY_TYPES: Mapping[str, str] = {
    "float32": "<f4",
    "float64": "<f8",
    "float16": "<f2",
    "int8": "i1",
    "uint8": "u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
    "uint64": "<u8",
    "bool": "u1",  # one byte per element, as ORT Web's Uint8Array
    "bfloat16": "<u2",  # carried as raw 16-bit words
}
_ALLOC_FAILURE = ("Failed to allocate memory", "bad_alloc")


def run(
    ort: Any,
    session: Any,
    feeds: Mapping[str, Any],
    fetches: Sequence[str] | None,
    *,
    raw_outputs: bool,
    max_output_bytes: int,
) -> dict[str, dict[str, Any]]:
    declared_in = {i.name: i for i in session.get_inputs()}
    declared_out = {o.name: o for o in session.get_outputs()}
    names = list(fetches) if fetches else list(declared_out)
    unknown = [n for n in names if n not in declared_out]
    if unknown:
        raise HostError(
            "bad_request",
            f"the model has no output {unknown[0]!r} (its outputs: {', '.join(declared_out)})",
            field="fetches",
        )
    tensors = {name: _feed(name, value, declared_in) for name, value in feeds.items()}
    missing = [n for n in declared_in if n not in tensors]
    if missing:
        raise HostError(
            "bad_request", f"feeds lack the model's input(s) {', '.join(missing)}", field="feeds"
        )
    strings = any(t.type == "string" for t in tensors.values())
    try:
        if raw_outputs and not strings:
            values = {n: _ort_value(ort, t) for n, t in tensors.items()}
            results = [_from_ort_value(v) for v in session.run_with_ort_values(names, values)]
        else:
            arrays = {n: _feed_value(ort, t) for n, t in tensors.items()}
            produced = session.run(names, arrays)
            results = [
                _from_numpy(v, declared_out[n].type) for n, v in zip(names, produced, strict=True)
            ]
    except HostError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        if any(marker in text for marker in _ALLOC_FAILURE):
            raise MemoryError(text) from exc
        raise HostError("inference_failed", f"ONNX Runtime: {text[:400]}") from exc
    total = sum(t.nbytes for t in results)
    if total > max_output_bytes:
        raise HostError(
            "too_large",
            f"the outputs hold {total} bytes; a reply carries at most {max_output_bytes} "
            "(ask for fewer outputs with fetches, or use smaller inputs)",
            size=total,
            limit=max_output_bytes,
        )
    return {name: tensor.to_frame() for name, tensor in zip(names, results, strict=True)}


def _feed(name: str, value: Any, declared: Mapping[str, Any]) -> Tensor:
    if name not in declared:
        raise HostError(
            "bad_request",
            f"the model has no input {name!r} (its inputs: {', '.join(declared)})",
            field=f"feeds.{name}",
        )
    tensor = parse_frame(value, field=f"feeds.{name}")
    expected = BY_ORT_TYPE.get(declared[name].type)
    if expected is None or expected.name != tensor.type:
        wanted = expected.name if expected else declared[name].type
        raise HostError(
            "bad_request",
            f"feeds.{name} is {tensor.type}, but the model's input {name!r} is {wanted}",
            field=f"feeds.{name}",
        )
    return tensor


def _array(tensor: Tensor) -> Any:
    if isinstance(tensor.data, tuple):
        return np.array(tensor.data, dtype=object).reshape(tensor.dims)
    array = np.frombuffer(tensor.data, dtype=NUMPY_TYPES[tensor.type]).reshape(tensor.dims)
    return array != 0 if tensor.type == "bool" else array


def _feed_value(ort: Any, tensor: Tensor) -> Any:
    """What ``session.run`` takes: a numpy array, or an OrtValue for bfloat16."""
    return _ort_value(ort, tensor) if tensor.type == "bfloat16" else _array(tensor)


def _ort_value(ort: Any, tensor: Tensor) -> Any:
    array = _array(tensor)
    if tensor.type == "bfloat16":
        onnx_type = ELEMENT_TYPES["bfloat16"].onnx
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(np.array(array), onnx_type)
    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))


def _from_ort_value(value: Any) -> Tensor:
    if not value.is_tensor():
        raise HostError("inference_failed", "an output is not a tensor; only tensors return")
    element = BY_ORT_TYPE.get(value.data_type())
    if element is None or element.name != "bfloat16":
        return _from_numpy(value.numpy(), value.data_type())
    if value.device_name().lower() != "cpu":
        raise HostError("inference_failed", "bfloat16 outputs return only from the CPU")
    dims = tuple(int(d) for d in value.shape())
    count = math.prod(dims)
    data = ctypes.string_at(value.data_ptr(), count * 2) if count else b""
    return Tensor("bfloat16", dims, data)


def _from_numpy(value: Any, declared: str) -> Tensor:
    element = BY_ORT_TYPE.get(declared)
    if not isinstance(value, np.ndarray) or element is None:
        raise HostError(
            "inference_failed",
            f"an output of type {declared} cannot return; only tensors of the ORT Web "
            "element types can",
        )
    dims = tuple(int(d) for d in value.shape)
    if element.name == "string":
        return Tensor("string", dims, tuple(str(s) for s in value.ravel().tolist()))
    data = np.ascontiguousarray(value, dtype=NUMPY_TYPES[element.name]).tobytes()
    return Tensor(element.name, dims, data)
