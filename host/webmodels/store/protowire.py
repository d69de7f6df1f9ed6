"""A streaming, capped reader of the protobuf wire format over a file.

Pure Python and sans-IO apart from the file object it is handed: it keeps one window
of the file (1 MiB) in memory, reads a field's tag and length, and either decodes the
few values its caller asks for or skips the payload by its length (a seek past a
gigabyte of weights costs nothing). Nothing here allocates in proportion to the file.

Every read is bounded: a length may not run past the enclosing message, a string the
caller keeps is at most ``max_text`` bytes, and ``max_fields`` / ``max_seconds`` cap
the work. Malformed bytes raise `WireInvalid`; a cap raises `WireCapped`. Every
1024 fields the reader also sleeps for 0 s, which hands the GIL to the host's request
threads: a pure-Python loop otherwise keeps it for a whole 5 ms switch interval at a
time, and a request needs it on several threads (reader, handler, writer). See
https://protobuf.dev/programming-guides/encoding/ for the format.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import BinaryIO

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_WINDOW = 1 << 20
_WIRE_TYPES = frozenset((VARINT, I64, LEN, I32))
_CLOCK_EVERY = 1024  # fields between two looks at the clock and the field cap
_MASK64 = (1 << 64) - 1


class WireInvalid(Exception):
    """The bytes are not well-formed protobuf."""


class WireCapped(Exception):
    """Reading on would pass one of the reader's caps."""


@dataclass(frozen=True, slots=True)
class WireCaps:
    max_fields: int = 8_000_000  # tags read, in all messages together
    max_text: int = 1 << 16  # one string the caller keeps (a name, a producer)
    max_seconds: float = 20.0  # wall clock, a backstop for a loaded machine


class WireReader:
    """Reads fields from ``fh`` (``size`` bytes); `fields` walks one message."""

    def __init__(self, fh: BinaryIO, size: int, caps: WireCaps) -> None:
        self.size = size
        self.pos = 0
        self._fh = fh
        self._caps = caps
        self._buf = b""
        self._start = 0
        self._limit = size  # end of the message whose fields are being read
        self._fields = 0
        self._deadline = time.monotonic() + caps.max_seconds

    def fields(self, end: int, wanted: Container[int]) -> Iterator[tuple[int, int]]:
        """Yield ``(number, wire_type)`` of each field up to ``end`` whose number is in
        ``wanted``; the caller consumes its value (a read method, `message` or `skip`)
        before the next. Other fields are skipped here, in one tight loop: a graph of a
        million nodes is a million passes through it."""
        try:
            while self.pos < end:
                self._limit = end
                pos = self.pos
                rel = pos - self._start
                if rel < 0 or rel + 20 > len(self._buf):  # room for a tag and a length
                    rel = self._window(20)
                buf = self._buf
                key = buf[rel]
                if key < 0x80:
                    pos, rel = pos + 1, rel + 1
                else:
                    key = self.varint()
                    pos, rel, buf = self.pos, self.pos - self._start, self._buf
                number, wire = key >> 3, key & 7
                if number == 0 or wire not in _WIRE_TYPES:
                    # Groups (3, 4) are long deprecated; no ONNX writer emits them.
                    raise WireInvalid(f"bad field key {key} at {pos}")
                self._fields += 1
                if self._fields % _CLOCK_EVERY == 0:
                    self._check_caps()
                self.pos = pos
                if number in wanted:
                    yield number, wire
                elif wire == LEN and buf[rel] < 0x80:  # the usual short length, inline
                    if pos + 1 + buf[rel] > end:
                        raise WireInvalid("a value runs past the end of its message")
                    self.pos = pos + 1 + buf[rel]
                else:
                    self.skip(wire)
        except IndexError as exc:  # a tag or a length cut off by the end of the file
            raise WireInvalid("truncated message") from exc
        if self.pos != end:
            raise WireInvalid(f"a field runs past the end of its message at {end}")

    def varint(self) -> int:
        rel = self._window(10)
        buf, result, shift = self._buf, 0, 0
        while True:
            if rel >= len(buf):
                raise WireInvalid("truncated varint")
            byte = buf[rel]
            rel += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift >= 70:
                raise WireInvalid("varint longer than 10 bytes")
        self._advance(self._start + rel)
        return result & _MASK64

    def signed(self, bits: int = 64) -> int:
        """An ``int64`` / ``int32`` varint (negative numbers are 10 bytes, two's
        complement; an int32 keeps its low 32 bits, as protobuf does)."""
        value = self.varint() & ((1 << bits) - 1)
        return value - (1 << bits) if value >> (bits - 1) else value

    def message(self) -> int:
        """Start reading a length-delimited value; return where it ends."""
        length = self.varint()
        end = self.pos + length
        if end > self._limit:
            raise WireInvalid(f"a length of {length} runs past its message")
        return end

    def text(self) -> str:
        """A string field the caller keeps, at most ``max_text`` bytes."""
        end = self.message()
        length = end - self.pos
        if length > self._caps.max_text:
            raise WireCapped(f"a string of {length} bytes (cap {self._caps.max_text})")
        rel = self._window(length)
        data = self._buf[rel : rel + length]
        self._advance(end)
        return data.decode("utf-8", errors="replace")

    def skip(self, wire: int) -> None:
        if wire == VARINT:
            self.varint()
        elif wire == LEN:
            self._advance(self.message())
        else:
            self._advance(self.pos + (8 if wire == I64 else 4))

    def seek(self, pos: int) -> None:
        """Go to ``pos`` (a place a `message` call returned or started from)."""
        if not 0 <= pos <= self.size:
            raise WireInvalid(f"no offset {pos} in a file of {self.size} bytes")
        self.pos = pos

    def _window(self, wanted: int) -> int:
        """Offset of ``pos`` in the buffer, refilled so that ``wanted`` bytes (or the
        rest of the file) follow it."""
        rel = self.pos - self._start
        if rel < 0 or rel + wanted > len(self._buf):
            self._fh.seek(self.pos)
            # No further than the message being read: after a seek back to a small one,
            # reading a whole window would be wasted.
            self._buf = self._fh.read(max(wanted, min(_WINDOW, self._limit - self.pos)))
            self._start, rel = self.pos, 0
        return rel

    def _advance(self, pos: int) -> None:
        if pos > self._limit:
            raise WireInvalid("a value runs past the end of its message")
        self.pos = pos

    def _check_caps(self) -> None:
        time.sleep(0)  # let the host's request threads have the GIL (see module doc)
        if self._fields > self._caps.max_fields:
            raise WireCapped(f"more than {self._caps.max_fields} fields")
        if time.monotonic() > self._deadline:
            raise WireCapped(f"reading took more than {self._caps.max_seconds} s")
