"""Reading screenshots without Pillow: decode a PNG (8-bit RGB or RGBA, as Chromium
writes them) far enough to count its colours (RFC 2083, PNG 1.2 §6 filters)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel at bit depth 8


@dataclass(frozen=True, slots=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def colours(self, step: int = 1) -> set[bytes]:
        """The distinct pixel values (every `step`-th pixel of every `step`-th row)."""
        size = self.channels
        found: set[bytes] = set()
        for row in self.rows[::step]:
            found.update(row[i : i + size] for i in range(0, len(row), size * step))
        return found


def read_png(path: Path) -> Image:
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    pos, header, idat = len(SIGNATURE), b"", bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in CHANNELS or interlace:
        raise ValueError(f"{path}: only 8-bit RGB(A) non-interlaced PNGs are supported")
    channels = CHANNELS[colour]
    return Image(width, height, channels, _unfilter(zlib.decompress(idat), width, height, channels))


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    stride = width * bpp
    rows: list[bytes] = []
    prior = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prior[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = prior[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(bytes(line))
        prior = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def distinct_colours(path: Path, step: int = 2) -> int:
    """How many colours a screenshot shows: a blank page has one or two, text and
    a few widgets give dozens (anti-aliasing), a rendered popup hundreds."""
    return len(read_png(path).colours(step))
