"""The worker's side of sessions from segments: rebuild a stored model's bytes from
the parts the host named, check them against the model's SHA-256 and the model
limits, and write the graph rewritten to read its weights from segment files
(`store.segments.onnx_link`). Runs once per model; the host keeps the result."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from webmodels.errors import HostError
from webmodels.runtime import model_files
from webmodels.runtime.safety import ModelLimits, check_model
from webmodels.store.segments.onnx_link import link_graph


def assemble(parts: Sequence[Any], size: int, sha256: str) -> bytes:
    """The file from its parts (inline bytes, or ``[segment hex, path, size]``),
    checked against the size and SHA-256 the host expects."""
    out = bytearray()
    for part in parts:
        if isinstance(part, bytes):
            out += part
            continue
        _, path, length = part
        try:
            with open(path, "rb") as fh:
                out += fh.read(int(length))
        except FileNotFoundError as exc:
            raise HostError("not_found", "a segment of the model was removed") from exc
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
    segments = {str(part[0]) for part in message["parts"] if not isinstance(part, bytes)}
    linked = link_graph(model, segments)
    out = Path(message["out"])
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(model.SerializeToString())
    return {"segments": linked}
