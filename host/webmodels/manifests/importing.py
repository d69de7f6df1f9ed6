"""``webmodels import`` of a model made of several files: an ONNX graph with the
external-data files it names beside it, or a folder (a Transformers.js model folder:
``onnx/model.onnx``, ``onnx/model.onnx_data``, ``tokenizer.json``, ``config.json``).

Each file is copied into the store as it is read, hashed on the way (streamed: never a
whole file in memory), into a temp file; roles are decided and the manifest checked
(paths, and every graph's external-data locations against the manifest) on those temp
files, and only then is anything published: a set that fails a check leaves nothing
behind. Each file keeps an ``import`` reference to its source path, as a single-file
import does, and the manifest keeps them all.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from stat import S_ISREG

from webmodels.errors import HostError
from webmodels.manifests.graph import match_locations
from webmodels.manifests.values import Entry, Manifest, build_manifest, check_path
from webmodels.store.blobs import PendingBlob, Progress
from webmodels.store.importing import source_error
from webmodels.store.manifests import save_manifest
from webmodels.store.metadata import ModelMetadata, sniff_format
from webmodels.store.onnx_wire import WireCapped, WireInvalid, read_wire_metadata
from webmodels.store.store import Store

log = logging.getLogger(__name__)
_TOKENIZER_NAMES = ("tokenizer", "vocab", "merges", "special_tokens_map", "added_tokens")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".params")
_INDEX_NAMES = ("ndarray-cache.json", "tensor-cache.json")  # WebLLM / MLC shard indexes
ProgressFor = Callable[[str, int], Progress | None]  # (relative path, size) → callback


@dataclass(frozen=True, slots=True)
class ManifestImport:
    manifest: Manifest
    new_files: int  # files whose bytes were not stored before


@dataclass(frozen=True, slots=True)
class _Member:
    path: str  # relative, "/"-separated
    source: Path
    pending: PendingBlob


def external_data_beside(model: Path) -> frozenset[str]:
    """The external-data locations an ONNX file names (empty for a single-file model
    or a file that is not ONNX): `import` then imports them with it."""
    if model.suffix.lower() != ".onnx" or not model.is_file():
        return frozenset()
    found: set[str] = set()
    try:
        read_wire_metadata(model, locations=found)
    except (WireInvalid, WireCapped):
        return frozenset()
    return frozenset(found)


def import_model_files(
    store: Store,
    path: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    progress_for: ProgressFor | None = None,
) -> ManifestImport:
    """Import a folder, or an ONNX graph with its external data, as one manifest."""
    sources = _folder_files(path, store.root) if path.is_dir() else _graph_with_data(path)
    members: list[_Member] = []
    try:
        for relative, source in sources:
            members.append(_copy(store, relative, source, progress_for))
        try:
            manifest, metadata = _describe(members)
        except OSError as exc:  # the disk under the store failed reading a temp file
            raise HostError("internal", f"cannot read {path}: {exc.strerror or exc}") from exc
        new = _publish(store, members, metadata, name=name, version=version)
        save_manifest(store.index, manifest, name=name, version=version)
    finally:
        for member in members:
            store.files.discard(member.pending)  # no-op once published
    log.info("imported manifest %s (%d files)", manifest.digest.hex, len(members))
    return ManifestImport(manifest, new)


def _graph_with_data(model: Path) -> list[tuple[str, Path]]:
    locations = external_data_beside(model)
    files = [(model.name, model)]
    for location in sorted(locations):
        try:
            check_path(location, field="location")
        except HostError as exc:
            raise HostError(
                "model_unsafe",
                f"{model.name} names the external-data file {location!r}, "
                "which is not a safe relative path",
            ) from exc
        full = model.parent.joinpath(*location.split("/"))
        why = _not_its_own_file(full, model.parent)
        if why:
            raise HostError(
                "model_unsafe",
                f"{model.name} names the external-data file {location!r}, which is {why}",
            )
        files.append((location, full))
    return files


def _not_its_own_file(path: Path, folder: Path) -> str:
    """Why `path` is not a plain file of `folder` alone ("" when it is; a missing file is
    reported by the copy). A link (the file or a folder on the way) or a second name of
    another file would make the store copy whatever it leads to (a key, a password file)
    as the model's; a pipe or a device would never end, or never be the same twice."""
    try:
        stat = path.lstat()
    except OSError:
        return ""
    if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()):
        return "a link leading out of the model's folder"
    if not S_ISREG(stat.st_mode):
        return "not a regular file (a pipe, a device or a folder)"
    if stat.st_nlink > 1:
        return "a hard link: another name of a file that may lie anywhere"
    return ""


def _folder_files(folder: Path, store_root: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``folder`` (hidden ones and links skipped: a link may
    lead anywhere), by its path relative to the folder; never the store's own files."""
    inside, store = folder.resolve(), store_root.resolve()
    if store.is_relative_to(inside) or inside.is_relative_to(store):
        raise HostError(
            "bad_request", f"the folder {folder} holds the store itself; name a model's folder"
        )
    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            full = Path(root) / name
            if name.startswith(".") or full.is_symlink() or not full.is_file():
                continue
            found.append((full.relative_to(folder).as_posix(), full))
    if not found:
        raise HostError("not_found", f"{folder} holds no model files")
    return found


def _copy(store: Store, relative: str, source: Path, progress_for: ProgressFor | None) -> _Member:
    try:
        size = source.stat().st_size
        with source.open("rb") as fh:
            callback = progress_for(relative, size) if progress_for else None
            pending = store.files.write_stream(fh, expected_size=size, progress=callback)
    except OSError as exc:
        raise source_error(source, exc) from exc
    return _Member(relative, source, pending)


def _describe(members: list[_Member]) -> tuple[Manifest, dict[str, ModelMetadata]]:
    """Roles, the checked manifest, and the metadata each file is indexed with."""
    metadata: dict[str, ModelMetadata] = {}
    named: set[str] = set()  # manifest paths some graph's location names
    for member in members:
        if PurePosixPath(member.path).suffix.lower() != ".onnx":
            continue
        locations: set[str] = set()
        try:
            meta = read_wire_metadata(member.pending.temp_path, locations=locations)
        except (WireInvalid, WireCapped):
            continue  # not a graph this host can read: stored as a plain file
        metadata[member.path] = dataclasses.replace(meta, external_data=tuple(sorted(locations)))
        folder = PurePosixPath(member.path).parent
        named |= {(folder / loc).as_posix() for loc in locations}
    entries = [
        Entry(m.path, m.pending.digest, m.pending.size, _role(m.path, metadata, named))
        for m in members
    ]
    manifest = build_manifest(entries)
    for graph in manifest.graphs():
        match_locations(manifest, graph, frozenset(metadata[graph.path].external_data))
    for m in members:
        metadata.setdefault(m.path, ModelMetadata(format=sniff_format(m.pending.temp_path)))
    return manifest, metadata


def _role(path: str, graphs: dict[str, ModelMetadata], named: set[str]) -> str:
    if path in graphs:
        return "graph"
    if path in named:
        return "external_data"
    return role_by_name(path)


def role_by_name(path: str) -> str:
    """The role of a file that is no graph nor a graph's external data, from its name:
    ``index`` (a shard index), ``tokenizer``, ``config``, ``weights`` or ``other``."""
    name = PurePosixPath(path).name.lower()
    if name.endswith(".index.json") or name in _INDEX_NAMES:
        return "index"
    if (name.endswith(".json") and name.startswith(_TOKENIZER_NAMES)) or name.endswith(".model"):
        return "tokenizer"
    if name.endswith(".json") and "config" in name:
        return "config"
    return "weights" if name.endswith(_WEIGHT_SUFFIXES) else "other"


def _publish(
    store: Store,
    members: list[_Member],
    metadata: dict[str, ModelMetadata],
    *,
    name: str | None,
    version: str | None,
) -> int:
    new = 0
    for member in members:
        result = store.ingest(
            member.pending,
            metadata[member.path],
            origin="imported",
            refs=[("import", str(member.source.absolute()))],
            name=name if metadata[member.path].format == "onnx" else None,
            version=version if metadata[member.path].format == "onnx" else None,
        )
        new += not result.deduplicated
    return new
