"""The worker's side of model files: read what the host named and check it is what the
host expects, parse it, and give ONNX Runtime a private folder for cached weights."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from webmodels.errors import HostError
from webmodels.runtime.safety import all_nodes, graphs


def read_verified(ref: Mapping[str, Any]) -> bytes:
    """The bytes of a file the host named, checked against the size and SHA-256 the
    host expects (a pre-installed file may change on disk at any time)."""
    try:
        with open(ref["path"], "rb") as fh:
            data = fh.read(int(ref["size"]) + 1)
    except FileNotFoundError as exc:  # deleted after the host located it (gc, a user)
        raise HostError("not_found", "the model's file was removed; load the model again") from exc
    if len(data) != int(ref["size"]) or hashlib.sha256(data).hexdigest() != ref["sha256"]:
        raise HostError(
            "integrity_mismatch",
            "the model file changed on disk while it was being loaded; try again",
        )
    return data


def inline_nested(model: Any, weights: Mapping[str, Path]) -> bool:
    """Put the bytes of external tensors outside the main graph's initializers (If/Loop
    bodies, node attributes) back into the graph. ONNX Runtime checks those with the
    onnx checker, which refuses a weights file with several hard links (CVE-2024-27318
    hardening), and the private folder holds hard links to the store's blobs.
    ``weights`` maps each location (checked already) to its file."""
    tensors = [t for g in list(graphs(model))[1:] for t in g.initializer]
    for node in all_nodes(model):
        for attr in node.attribute:
            tensors += [attr.t] if attr.HasField("t") else []
            tensors += list(attr.tensors)
    nested = [t for t in tensors if t.data_location == 1]  # EXTERNAL, checked already
    for tensor in nested:
        entries = {e.key: e.value for e in tensor.external_data}
        with weights[entries["location"]].open("rb") as fh:
            fh.seek(int(entries.get("offset", "0")))
            tensor.raw_data = fh.read(int(entries.get("length", "-1")))
        tensor.ClearField("external_data")
        tensor.data_location = 0  # DEFAULT
    return bool(nested)


def link_files(files: Mapping[str, Mapping[str, Any]], folder: Path) -> None:
    """Link each file the host named (``{location: {path, size}}``, the locations of a
    model manifest) into ``folder`` under its location, so that ONNX Runtime, resolving
    the graph's checked locations against ``folder``, finds nothing else there."""
    for location, ref in files.items():
        parts = PurePosixPath(location).parts
        if not parts or PurePosixPath(location).is_absolute() or ".." in parts:
            raise HostError("model_unsafe", f"the host named an unsafe location {location!r}")
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(Path(ref["path"]), target, int(ref["size"]))


def parse(data: bytes) -> Any:
    import onnx

    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        reason = " ".join(str(exc).split())[:400]
        raise HostError("model_invalid", f"not an ONNX model: {reason}") from exc


@contextlib.contextmanager
def private_folder(parent: str) -> Iterator[Path]:
    # Named <pid>-….load so that the host removes it if this process dies meanwhile.
    folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", suffix=".load", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # links only: the store's files stay


def link_or_copy(source: Path, target: Path, size: int) -> None:
    try:
        found = source.stat().st_size
    except FileNotFoundError as exc:
        raise HostError("not_found", "a model's weights file was removed") from exc
    if found != size:
        raise HostError("integrity_mismatch", "a model's weights file has the wrong size")
    try:
        os.link(source, target)
    except OSError:  # another file system, or no hard links: a private copy
        shutil.copyfile(source, target)
