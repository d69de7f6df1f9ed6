"""Native-messaging framing: a 4-byte native-endian length, then that many bytes.

`FrameDecoder` is fed bytes in pieces of any size and returns what it could decode;
it never touches a file or socket. Limits are checked on the length prefix, before
any buffer of that size exists:

* browser -> host frames are at most 64 MiB (Chromium's limit for messages to a
  native host);
* host -> browser frames are at most 1 MiB: Chromium kills the port on one byte more
  (measured here), so `encode_frame` refuses and the caller sends ``too_large``.

A stream that goes out of step (a length of 2^32-1, a truncated prefix followed by
more frames) is resynchronised by scanning for the next plausible frame start: a
length within the limit followed by ``{`` -- the first byte of every request a
browser sends (``JSON.stringify`` of an object).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_INBOUND = 64 * 1024 * 1024
MAX_OUTBOUND = 1024 * 1024
_HEADER = struct.Struct("=I")  # native byte order, as Chromium and Firefox write it
HEADER_SIZE = _HEADER.size
# A body must start like JSON; anything else means the length prefix was not one.
_JSON_START = frozenset(b'{["-0123456789tfn \t\r\n')


@dataclass(frozen=True, slots=True)
class Frame:
    body: bytes


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that could not be taken; the decoder has already moved past it."""

    code: str  # an error code of errors.ERROR_CODES
    message: str
    declared_length: int | None = None


class FrameTooLarge(ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


def encode_frame(body: bytes, *, limit: int = MAX_OUTBOUND) -> bytes:
    if len(body) > limit:
        raise FrameTooLarge(len(body), limit)
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: ``feed(bytes) -> [Frame | FrameError]``, ``eof() -> [...]``."""

    def __init__(self, *, max_frame: int = MAX_INBOUND) -> None:
        self._max = max_frame
        self._buf = bytearray()
        self._need: int | None = None  # body length of the frame being read
        self._resyncing = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self._buf += data
        out: list[Frame | FrameError] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def eof(self) -> list[Frame | FrameError]:
        """The stream ended: anything left over is a truncated frame."""
        if not self._buf or self._resyncing:
            self._buf.clear()
            return []
        have = len(self._buf)
        self._buf.clear()
        if self._need is None:
            return [FrameError("bad_frame", f"truncated length prefix ({have} of 4 bytes)")]
        need, self._need = self._need, None
        return [
            FrameError(
                "bad_frame",
                f"stream ended inside a frame ({have - HEADER_SIZE} of {need} bytes)",
                declared_length=need,
            )
        ]

    def _next(self) -> Frame | FrameError | None:
        if self._resyncing and not self._resync():
            return None
        if self._need is None:
            if len(self._buf) < HEADER_SIZE:
                return None
            (length,) = _HEADER.unpack_from(self._buf)
            if length == 0:
                del self._buf[:HEADER_SIZE]
                return FrameError("bad_frame", "empty frame", declared_length=0)
            if length > self._max:
                # Skip one byte only: a stray byte or two before a real frame puts
                # that frame's own header inside this bogus one.
                self._start_resync(1)
                return FrameError(
                    "too_large",
                    f"frame length {length} exceeds the {self._max}-byte limit",
                    declared_length=length,
                )
            self._need = length
        if len(self._buf) > HEADER_SIZE and self._buf[HEADER_SIZE] not in _JSON_START:
            length, self._need = self._need, None
            self._start_resync(1)
            return FrameError(
                "bad_frame", "frame body does not start like JSON", declared_length=length
            )
        end = HEADER_SIZE + self._need
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[HEADER_SIZE:end])
        del self._buf[:end]
        self._need = None
        return Frame(body)

    def _start_resync(self, skip: int) -> None:
        del self._buf[:skip]
        self._resyncing = True

    def _resync(self) -> bool:
        """Drop bytes up to the next plausible frame start; True once found."""
        pos = HEADER_SIZE
        while True:
            pos = self._buf.find(b"{", pos)
            if pos < 0:
                # Keep the last 4 bytes: they may be the prefix of a frame to come.
                del self._buf[: max(0, len(self._buf) - HEADER_SIZE)]
                return False
            (length,) = _HEADER.unpack_from(self._buf, pos - HEADER_SIZE)
            if 2 <= length <= self._max:
                del self._buf[: pos - HEADER_SIZE]
                self._resyncing = False
                return True
            pos += 1
