"""The wire form of tensors (ORT Web's {type, dims, data}): parsed once, refused with
a message that names the field and says what was wrong."""

from __future__ import annotations

import base64
import struct

import pytest

from webmodels.errors import HostError
from webmodels.runtime.tensors import (
    ELEMENT_TYPES,
    Tensor,
    parse_feeds,
    parse_frame,
    parse_names,
    parse_wire,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_every_type_round_trips_through_both_forms() -> None:
    for name, element in ELEMENT_TYPES.items():
        if name == "string":
            tensor = Tensor(name, (2,), ("a", "é"))
        else:
            tensor = Tensor(name, (2, 3), bytes(range(6 * element.itemsize)))
        assert parse_wire(tensor.to_wire(), field="t") == tensor
        assert parse_frame(tensor.to_frame(), field="t") == tensor


def test_int64_is_little_endian_bytes() -> None:
    tensor = parse_wire(
        {"type": "int64", "dims": [2], "data": b64(struct.pack("<2q", -1, 1 << 40))}, field="x"
    )
    assert struct.unpack("<2q", tensor.data) == (-1, 1 << 40)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "code", "says"),
    [
        ([1], "bad_request", "must be a tensor object"),
        ({"type": "float", "dims": [1], "data": ""}, "bad_request", "type must be one of"),
        ({"type": "float32", "dims": [-1], "data": ""}, "bad_request", "non-negative"),
        ({"type": "float32", "dims": [True], "data": ""}, "bad_request", "non-negative"),
        ({"type": "float32", "dims": "12", "data": ""}, "bad_request", "dims must be"),
        ({"type": "float32", "dims": [3], "data": b64(b"\0" * 8)}, "bad_request", "needs 12"),
        ({"type": "float32", "dims": [1], "data": "%%%%"}, "bad_request", "not valid base64"),
        ({"type": "float32", "dims": [1], "data": [1.0]}, "bad_request", "base64 string"),
        ({"type": "string", "dims": [2], "data": ["a"]}, "bad_request", "has 1 strings"),
        ({"type": "string", "dims": [1], "data": "a"}, "bad_request", "list of strings"),
        ({"type": "uint8", "dims": [1 << 30] * 2, "data": ""}, "too_large", "too many"),
    ],
)
def test_malformed_tensors_are_refused(value: object, code: str, says: str) -> None:
    with pytest.raises(HostError) as caught:
        parse_wire(value, field="feeds.x")
    assert caught.value.code == code
    assert says in caught.value.message
    assert caught.value.message.startswith("feeds.x ")


def test_feeds_and_fetches() -> None:
    feeds = parse_feeds({"a": {"type": "bool", "dims": [], "data": b64(b"\1")}})
    assert feeds["a"] == Tensor("bool", (), b"\1")
    for bad in ([], {"a": 1}, {1: {}}):
        with pytest.raises(HostError):
            parse_feeds(bad)
    assert parse_names(None, field="fetches") is None
    assert parse_names(["y", "z", "y"], field="fetches") == ("y", "z")
    with pytest.raises(HostError):
        parse_names("y", field="fetches")
