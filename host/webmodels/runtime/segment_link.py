"""The worker's side of sessions from segments: rebuild a stored model's bytes from
the parts the host named, check them against the model's SHA-256 and the model
limits, and write the graph rewritten to read its weights from the files holding its
segments (`store.segments.onnx_link`). Runs once per model; the host keeps the result.

A part is inline bytes or ``[segment hex, path, size, offset]``: the file holding the
segment (its own file, or a pack file holding many) and where its bytes start there
(parts of three elements, as hosts before pack files sent them: offset 0). The graph
names each file by its name (`location_of`), which is the name the host links it
under in the session's private folder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels.errors import HostError
from webmodels.runtime import model_files
from webmodels.runtime.safety import ModelLimits, check_model
from webmodels.store.segments.onnx_link import link_graph


@dataclass(frozen=True, slots=True)
class WirePart:
    """A segment part as the host sent it."""

    hex: str
    path: str
    size: int
    offset: int

    @property
    def location(self) -> str:
        """The file's name: the segment's hex for its own file, else the pack's name."""
        return Path(self.path).name

    @property
    def packed(self) -> bool:
        return self.offset != 0 or self.location != self.hex

    def read(self, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` within the segment (short if the file is)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise HostError("not_found", "a segment of the model was removed") from exc
        try:
            return os.pread(fd, length, self.offset + start)
        finally:
            os.close(fd)

    def file_ref(self) -> dict[str, Any]:
        """The ``files`` ref of the file holding it: its own file is exactly the
        segment (size and SHA-256); a pack has no SHA-256 of its own, its size is the
        whole file's (the graph's offset and length are checked to lie within it)."""
        if not self.packed:
            return {"path": self.path, "sha256": self.hex, "size": self.size}
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError as exc:
            raise HostError("not_found", "a segment of the model was removed") from exc
        return {"path": self.path, "sha256": None, "size": size}


def wire_part(part: Sequence[Any]) -> WirePart:
    hex_, path, size = str(part[0]), str(part[1]), int(part[2])
    offset = int(part[3]) if len(part) > 3 else 0
    if size < 0 or offset < 0:
        raise HostError("model_unsafe", "the host named a segment at a negative offset")
    return WirePart(hex_, path, size, offset)


def assemble(parts: Sequence[Any], size: int, sha256: str) -> bytes:
    """The file from its parts (inline bytes, or segments: see the module doc),
    checked against the size and SHA-256 the host expects."""
    out = bytearray()
    for part in parts:
        if isinstance(part, bytes):
            out += part
        else:
            segment = wire_part(part)
            out += segment.read(0, segment.size)
        if len(out) > size:
            break
    if len(out) != size or hashlib.sha256(out).hexdigest() != sha256:
        raise HostError("integrity_mismatch", "the model's segments do not add up to it")
    return bytes(out)


def write_linked(message: Mapping[str, Any]) -> dict[str, Any]:
    """The ``link`` op: write the rewritten graph to ``out``; the segments it names."""
    data = assemble(message["parts"], int(message["size"]), str(message["sha256"]))
    model = model_files.parse(data)
    del data
    check_model(model, limits=ModelLimits(**message["limits"]))
    segments = [wire_part(part) for part in message["parts"] if not isinstance(part, bytes)]
    linked = link_graph(model, {s.hex: (s.location, s.offset) for s in segments})
    out = Path(message["out"])
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(model.SerializeToString())
    return {"segments": linked}
