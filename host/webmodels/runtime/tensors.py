"""Tensors on the wire, in the ORT Web ``Tensor`` shape. Pure: no numpy, no ORT.

Page and host exchange ``{"type": "float32", "dims": [1, 3], "data": "<base64>"}``:
the element type by its ONNX Runtime Web name, the data as the little-endian bytes of
the TypedArray ORT Web uses (``bool`` one byte per element, ``float16`` and
``bfloat16`` two), or, for ``string``, a JSON array of strings. Host and worker pass
the same fields with the bytes raw (msgpack ``bin``).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webmodels.errors import HostError

MAX_RANK = 32
MAX_ELEMENTS = 1 << 40  # far above any frame; keeps the arithmetic below honest


@dataclass(frozen=True, slots=True)
class ElementType:
    name: str  # the ORT Web name
    onnx: int  # onnx.TensorProto.DataType
    itemsize: int  # bytes per element; 0 for string
    ort: str  # what onnxruntime's NodeArg.type says: "tensor(float)"


ELEMENT_TYPES: Mapping[str, ElementType] = {
    t.name: t
    for t in (
        ElementType("float32", 1, 4, "tensor(float)"),
        ElementType("uint8", 2, 1, "tensor(uint8)"),
        ElementType("int8", 3, 1, "tensor(int8)"),
        ElementType("uint16", 4, 2, "tensor(uint16)"),
        ElementType("int16", 5, 2, "tensor(int16)"),
        ElementType("int32", 6, 4, "tensor(int32)"),
        ElementType("int64", 7, 8, "tensor(int64)"),
        ElementType("string", 8, 0, "tensor(string)"),
        ElementType("bool", 9, 1, "tensor(bool)"),
        ElementType("float16", 10, 2, "tensor(float16)"),
        ElementType("float64", 11, 8, "tensor(double)"),
        ElementType("uint32", 12, 4, "tensor(uint32)"),
        ElementType("uint64", 13, 8, "tensor(uint64)"),
        ElementType("bfloat16", 16, 2, "tensor(bfloat16)"),
    )
}
BY_ORT_TYPE: Mapping[str, ElementType] = {t.ort: t for t in ELEMENT_TYPES.values()}
BY_ONNX_TYPE: Mapping[int, ElementType] = {t.onnx: t for t in ELEMENT_TYPES.values()}


@dataclass(frozen=True, slots=True)
class Tensor:
    type: str
    dims: tuple[int, ...]
    data: bytes | tuple[str, ...]  # raw little-endian bytes, or the strings

    @property
    def elements(self) -> int:
        return math.prod(self.dims)

    @property
    def nbytes(self) -> int:
        if isinstance(self.data, bytes):
            return len(self.data)
        return sum(len(s.encode("utf-8")) for s in self.data)

    def to_wire(self) -> dict[str, Any]:
        """The JSON form for the page (base64 data)."""
        data: Any = (
            base64.b64encode(self.data).decode("ascii")
            if isinstance(self.data, bytes)
            else list(self.data)
        )
        return {"type": self.type, "dims": list(self.dims), "data": data}

    def to_frame(self) -> dict[str, Any]:
        """The msgpack form for the worker (raw bytes)."""
        data = self.data if isinstance(self.data, bytes) else list(self.data)
        return {"type": self.type, "dims": list(self.dims), "data": data}


def parse_wire(value: object, *, field: str) -> Tensor:
    """A tensor from a page's JSON; `bad_request` naming ``field`` when malformed."""
    if not isinstance(value, Mapping):
        raise _bad(field, "must be a tensor object {type, dims, data}")
    element = _element_type(value.get("type"), field)
    dims = _dims(value.get("dims"), field)
    count = math.prod(dims)
    raw = value.get("data")
    if element.name == "string":
        return Tensor(element.name, dims, _strings(raw, count, field))
    if not isinstance(raw, str):
        raise _bad(field, "data must be a base64 string")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(field, "data is not valid base64") from exc
    _check_length(element, dims, len(data), field)
    return Tensor(element.name, dims, data)


def parse_frame(value: object, *, field: str) -> Tensor:
    """A tensor from a worker frame (raw bytes); the same checks as `parse_wire`."""
    if not isinstance(value, Mapping):
        raise _bad(field, "must be a tensor map")
    element = _element_type(value.get("type"), field)
    dims = _dims(value.get("dims"), field)
    raw = value.get("data")
    if element.name == "string":
        return Tensor(element.name, dims, _strings(raw, math.prod(dims), field))
    if not isinstance(raw, bytes):
        raise _bad(field, "data must be bytes")
    _check_length(element, dims, len(raw), field)
    return Tensor(element.name, dims, raw)


def parse_feeds(value: object, *, max_inputs: int = 1024) -> dict[str, Tensor]:
    if not isinstance(value, Mapping) or len(value) > max_inputs:
        raise _bad("feeds", f"must be an object of at most {max_inputs} named tensors")
    feeds = {}
    for name, tensor in value.items():
        if not isinstance(name, str) or len(name) > 4096:
            raise _bad("feeds", "names must be strings")
        feeds[name] = parse_wire(tensor, field=f"feeds.{name}")
    return feeds


def parse_names(value: object, *, field: str, max_names: int = 1024) -> tuple[str, ...] | None:
    """An optional list of output names (``fetches``)."""
    if value is None:
        return None
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) > max_names
        or not all(isinstance(v, str) for v in value)
    ):
        raise _bad(field, "must be a list of output names")
    return tuple(dict.fromkeys(value))


def _element_type(value: object, field: str) -> ElementType:
    element = ELEMENT_TYPES.get(value) if isinstance(value, str) else None
    if element is None:
        names = ", ".join(ELEMENT_TYPES)
        raise _bad(field, f"type must be one of {names} (got {value!r})")
    return element


def _dims(value: object, field: str) -> tuple[int, ...]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) > MAX_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise _bad(field, f"dims must be a list of at most {MAX_RANK} non-negative integers")
    dims = tuple(value)
    if math.prod(dims) > MAX_ELEMENTS:
        raise HostError("too_large", f"{field} has too many elements ({dims})", field=field)
    return dims


def _strings(value: object, count: int, field: str) -> tuple[str, ...]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str | bytes)
        or not all(isinstance(s, str) for s in value)
    ):
        raise _bad(field, "data of a string tensor must be a list of strings")
    if len(value) != count:
        raise _bad(field, f"has {len(value)} strings, but its dims need {count}")
    return tuple(value)


def _check_length(element: ElementType, dims: tuple[int, ...], length: int, field: str) -> None:
    needed = math.prod(dims) * element.itemsize
    if length != needed:
        shape = list(dims)
        raise _bad(
            field,
            f"has {length} bytes of data, but {element.name} {shape} needs {needed}",
        )


def _bad(field: str, what: str) -> HostError:
    return HostError("bad_request", f"{field} {what}", field=field)
