"""The frame decoder, fed byte fixtures (no process, no pipe)."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webmodels.protocol.framing import (
    MAX_INBOUND,
    MAX_OUTBOUND,
    Frame,
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    encode_frame,
)

HEADER = struct.Struct("=I")


def framed(message: object) -> bytes:
    body = json.dumps(message).encode()
    return HEADER.pack(len(body)) + body


def bodies(items: list[Frame | FrameError]) -> list[object]:
    return [json.loads(i.body) if isinstance(i, Frame) else i.code for i in items]


def test_whole_frame() -> None:
    decoder = FrameDecoder()
    assert bodies(decoder.feed(framed({"id": 1}))) == [{"id": 1}]
    assert decoder.buffered == 0


def test_one_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    out: list[Frame | FrameError] = []
    for byte in framed({"id": 1, "method": "hello"}) + framed({"id": 2}):
        out += decoder.feed(bytes([byte]))
    assert bodies(out) == [{"id": 1, "method": "hello"}, {"id": 2}]


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=8), st.data())
def test_any_split_gives_the_same_messages(cuts: list[int], data: st.DataObject) -> None:
    messages = [{"id": i, "params": {"x": "é" * i}} for i in range(5)]
    stream = b"".join(framed(m) for m in messages)
    points = sorted({min(c, len(stream)) for c in cuts})
    decoder = FrameDecoder()
    out: list[Frame | FrameError] = []
    start = 0
    for point in [*points, len(stream)]:
        out += decoder.feed(stream[start:point])
        start = point
    assert bodies(out) == messages
    assert decoder.eof() == []


def test_truncated_length_prefix_at_eof() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x05\x00") == []
    [error] = decoder.eof()
    assert isinstance(error, FrameError) and error.code == "bad_frame"
    assert "length prefix" in error.message


def test_stream_ending_inside_a_body() -> None:
    decoder = FrameDecoder()
    decoder.feed(framed({"id": 1})[:-3])
    [error] = decoder.eof()
    assert error.code == "bad_frame" and "inside a frame" in error.message


def test_huge_length_is_refused_before_allocating_and_the_stream_recovers() -> None:
    decoder = FrameDecoder()
    items = decoder.feed(b"\xff\xff\xff\xff")
    assert [i.code for i in items if isinstance(i, FrameError)] == ["too_large"]
    assert isinstance(items[0], FrameError) and items[0].declared_length == 2**32 - 1
    assert decoder.buffered <= 4
    assert bodies(decoder.feed(framed({"id": 7}))) == [{"id": 7}]


def test_length_just_over_the_limit() -> None:
    decoder = FrameDecoder()
    [error] = decoder.feed(HEADER.pack(MAX_INBOUND + 1))
    assert isinstance(error, FrameError) and error.code == "too_large"
    # Exactly at the limit is a frame being read, not an error.
    assert FrameDecoder().feed(HEADER.pack(MAX_INBOUND) + b"{") == []


def test_empty_frame_then_valid() -> None:
    items = FrameDecoder().feed(HEADER.pack(0) + framed({"id": 3}))
    assert bodies(items) == ["bad_frame", {"id": 3}]


@pytest.mark.parametrize("stray", [b"\x05", b"\x05\x00", b"\x05\x00\x00"])
def test_truncated_prefix_followed_by_frames_resynchronises(stray: bytes) -> None:
    # Stray bytes shift the stream: the decoder must not wait for a bogus huge body.
    decoded = bodies(FrameDecoder().feed(stray + framed({"id": 1}) + framed({"id": 2})))
    assert decoded[0] in ("bad_frame", "too_large")
    assert decoded[1:] == [{"id": 1}, {"id": 2}]


def test_garbage_between_frames_is_skipped() -> None:
    stream = framed({"id": 1}) + b"\x10\x00\x00\x00garbage!garbage!" + framed({"id": 2})
    decoded = bodies(FrameDecoder().feed(stream))
    assert decoded[0] == {"id": 1} and decoded[-1] == {"id": 2}
    assert "bad_frame" in decoded


def test_encode_limit_is_one_mebibyte() -> None:
    assert len(encode_frame(b"x" * MAX_OUTBOUND)) == MAX_OUTBOUND + 4
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * (MAX_OUTBOUND + 1))


def test_native_byte_order_header() -> None:
    frame = encode_frame(b'{"id":1}')
    assert struct.unpack("=I", frame[:4])[0] == 8
