"""Where a safetensors file keeps its tensors: the offsets in its JSON header.

Format (https://huggingface.co/docs/safetensors): 8 bytes, little-endian header
length N; N bytes of JSON mapping each tensor name to ``dtype``, ``shape`` and
``data_offsets`` [begin, end) relative to the byte after the header (``__metadata__``
is a string map). The header is capped at 100 MB, the safetensors library's own limit.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from webmodels.store.segments.spans import ContainerInvalid, Span

MAX_HEADER = 100_000_000


def looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (length,) = struct.unpack_from("<Q", head)
    return 2 <= length <= MAX_HEADER and head[8:9] == b"{"


def safetensors_spans(path: Path) -> list[Span]:
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        length = _header_length(fh.read(8), size)
        return _spans(fh.read(length), length, size)


def safetensors_spans_of(data: bytes | bytearray) -> list[Span]:
    """`safetensors_spans` of a file held in memory."""
    length = _header_length(bytes(data[:8]), len(data))
    return _spans(bytes(data[8 : 8 + length]), length, len(data))


def _header_length(head: bytes, size: int) -> int:
    if len(head) < 8:
        raise ContainerInvalid("shorter than a safetensors header length")
    (length,) = struct.unpack("<Q", head)
    if not 2 <= length <= min(MAX_HEADER, size - 8):
        raise ContainerInvalid(f"a safetensors header of {length} bytes")
    return int(length)


def _spans(text: bytes, length: int, size: int) -> list[Span]:
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ContainerInvalid(f"the safetensors header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ContainerInvalid("the safetensors header is not a JSON object")
    base = 8 + length
    return [
        _span(name, entry, base, size) for name, entry in header.items() if name != "__metadata__"
    ]


def _span(name: str, entry: object, base: int, size: int) -> Span:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2):
        raise ContainerInvalid(f"tensor {name[:64]!r} has no data_offsets")
    begin, end = offsets
    if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
        raise ContainerInvalid(f"tensor {name[:64]!r} has bad data_offsets")
    if base + end > size:
        raise ContainerInvalid(f"tensor {name[:64]!r} runs past the end of the file")
    return Span(base + begin, end - begin)
