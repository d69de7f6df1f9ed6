"""Frames between the host and its runtime worker: a 4-byte little-endian length,
then one msgpack map. Tensors travel as msgpack ``bin`` (raw bytes, no base64).

Both ends use this module; it imports neither ONNX Runtime nor anything of the host
but msgpack, so the worker can import it before ONNX Runtime and the host without it.
"""

from __future__ import annotations

import struct
from typing import IO, Any

import msgpack

HEADER = struct.Struct("<I")
# Requests carry feeds decoded from a browser frame (at most 64 MiB of JSON); replies
# carry outputs the worker already capped. Anything longer is a broken stream.
MAX_FRAME = 256 << 20


class PipeError(Exception):
    """The stream is broken: a truncated frame, a bogus length or bad msgpack."""


def encode(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME:
        raise PipeError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME}-byte limit")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = msgpack.unpackb(body, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise PipeError(f"bad msgpack frame: {exc}") from exc
    if not isinstance(message, dict):
        raise PipeError("a frame must hold a map")
    return message


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message, or None at a clean end of the stream."""
    header = _read_exact(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise PipeError(f"frame length {length} exceeds the {MAX_FRAME}-byte limit")
    body = _read_exact(stream, length)
    if body is None:
        raise PipeError("stream ended inside a frame")
    return decode(body)


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            if left == size:
                return None
            raise PipeError("stream ended inside a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
