"""Where a GGUF file keeps its tensors: the tensor infos after its key-value header.

Written here rather than taken from the ``gguf`` package: its reader maps every
key-value field and tensor to numpy views with no caps on counts or lengths, and pulls
in numpy, PyYAML, requests and tqdm; cutting a file needs only each tensor's offset
and size, read under caps from bytes a page may have chosen. Format
(https://github.com/ggml-org/ggml/blob/master/docs/gguf.md, versions 2 and 3): magic
``GGUF``, u32 version, u64 tensor count, u64 key-value count, the key-values, the
tensor infos (name, u32 dimensions, u64 each, u32 ggml type, u64 offset), then the
data, aligned to ``general.alignment`` (32 when absent). All little-endian.
"""

from __future__ import annotations

import math
import mmap
import struct
from pathlib import Path

from webmodels.store.segments.spans import ContainerInvalid, Span

MAGIC = b"GGUF"
_MAX_COUNT = 1 << 20  # tensors, key-values
_MAX_ARRAY = 1 << 24  # elements of one array value
_MAX_STRING = 1 << 20
_MAX_DIMS = 8
_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
# ggml type -> (elements per block, bytes per block), from ggml.h / gguf-py constants.
_GGML_BLOCKS = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
    8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
    13: (256, 176), 14: (256, 210), 15: (256, 292), 24: (1, 1), 25: (1, 2),
    26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2),
}  # fmt: skip


def gguf_spans(path: Path) -> list[Span]:
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size < 24:
            raise ContainerInvalid("shorter than a GGUF header")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return _Reader(view, size).spans()


def gguf_spans_of(data: bytes | bytearray) -> list[Span]:
    """`gguf_spans` of a file held in memory."""
    if len(data) < 24:
        raise ContainerInvalid("shorter than a GGUF header")
    return _Reader(data, len(data)).spans()


class _Reader:
    def __init__(self, data: mmap.mmap | bytes | bytearray, size: int) -> None:
        self.data, self.size, self.pos = data, size, 0

    def spans(self) -> list[Span]:
        if self._take(4) != MAGIC or self._u(4) not in (2, 3):
            raise ContainerInvalid("not GGUF version 2 or 3")
        tensors, pairs = self._u(8), self._u(8)
        if tensors > _MAX_COUNT or pairs > _MAX_COUNT:
            raise ContainerInvalid(f"{tensors} tensors, {pairs} key-values: past the cap")
        alignment = 32
        for _ in range(pairs):
            key, kind = self._string(), self._u(4)
            if key == "general.alignment" and kind == _UINT32:
                alignment = self._u(4)
                if alignment == 0 or alignment & (alignment - 1):
                    raise ContainerInvalid(f"alignment {alignment} is not a power of two")
            else:
                self._skip_value(kind)
        infos = [self._tensor_info() for _ in range(tensors)]
        base = -(-self.pos // alignment) * alignment
        return self._lay_out(infos, base)

    def _lay_out(self, infos: list[tuple[int, int | None]], base: int) -> list[Span]:
        ends = [*sorted({offset for offset, _ in infos}), self.size - base]
        spans = []
        for offset, length in infos:
            # A type not in the table: up to the next tensor (alignment padding included).
            if length is None:
                length = next((end for end in ends if end > offset), offset) - offset
            if base + offset + length > self.size:
                raise ContainerInvalid("a tensor runs past the end of the file")
            spans.append(Span(base + offset, length))
        return spans

    def _tensor_info(self) -> tuple[int, int | None]:
        self._string()
        dims = self._u(4)
        if dims > _MAX_DIMS:
            raise ContainerInvalid(f"a tensor of {dims} dimensions")
        elements = math.prod(self._u(8) for _ in range(dims))
        kind, offset = self._u(4), self._u(8)
        block = _GGML_BLOCKS.get(kind)
        length = None if block is None else elements // block[0] * block[1]
        return offset, length

    def _skip_value(self, kind: int) -> None:
        if kind in _SCALARS:
            self._take(_SCALARS[kind])
        elif kind == _STRING:
            self._string()
        elif kind == _ARRAY:
            inner, count = self._u(4), self._u(8)
            if count > _MAX_ARRAY or inner == _ARRAY:
                raise ContainerInvalid(f"an array of {count} values of type {inner}")
            if inner in _SCALARS:
                self._take(_SCALARS[inner] * count)
            else:
                for _ in range(count):
                    self._skip_value(inner)
        else:
            raise ContainerInvalid(f"a value of unknown type {kind}")

    def _string(self) -> str:
        length = self._u(8)
        if length > _MAX_STRING:
            raise ContainerInvalid(f"a string of {length} bytes")
        return self._take(length).decode("utf-8", errors="replace")

    def _u(self, width: int) -> int:
        value: int = struct.unpack("<I" if width == 4 else "<Q", self._take(width))[0]
        return value

    def _take(self, length: int) -> bytes:
        end = self.pos + length
        if end > self.size:
            raise ContainerInvalid("truncated GGUF header")
        data = bytes(self.data[self.pos : end])
        self.pos = end
        return data
