"""Pull an OCI artifact into the store: every layer becomes a stored file (by its
annotated title); several titled layers (an ONNX graph with its external data and
tokenizer) become one model manifest, as `webmodels import` of a folder does.

Each layer is streamed (never a whole blob in memory) into a partial file kept in
``<data folder>/oci-pulls/<manifest digest>/``: a pull that was killed resumes there
with ``Range`` (a 200 reply means start over), and the whole layer's SHA-256 must
equal its digest before the file is renamed to its title; a mismatch throws the
partial away and nothing is stored. The store then hashes the bytes again as it
copies them in (`ingest` with the expected digest).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.importing import import_model_files
from webmodels.manifests.values import Manifest
from webmodels.oci.artifact import Layer, parse_layers
from webmodels.oci.client import RegistryClient
from webmodels.store.metadata import ModelMetadata, read_onnx_metadata, sniff_format
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

log = logging.getLogger(__name__)
STAGING = "oci-pulls"
Progress = Callable[[Layer, int], None]  # (layer, bytes so far)


@dataclass(frozen=True, slots=True)
class Pulled:
    manifest_digest: Digest  # the OCI manifest's
    models: tuple[ModelRecord, ...]  # one per layer
    manifest: Manifest | None  # the store's model manifest, for several titled layers


def pull(
    store: Store, client: RegistryClient, *, staging_root: Path, progress: Progress | None = None
) -> Pulled:
    body, manifest_digest = client.get_manifest()
    layers = parse_layers(body)
    store.files.check_free_space(2 * sum(layer.size for layer in layers))  # staged, then stored
    staging = staging_root / STAGING / manifest_digest.hex
    files = staging / "files"
    files.mkdir(parents=True, exist_ok=True)
    placed = [
        _from_store(store, layer, files) or _fetch_layer(client, layer, staging, files, progress)
        for layer in layers
    ]
    if len(layers) > 1 and all(layer.title for layer in layers):
        imported = import_model_files(store, files)
        models = tuple(_require(store, entry.digest) for entry in imported.manifest.entries)
        result = Pulled(manifest_digest, models, imported.manifest)
    else:
        source = str(client.reference)
        models = tuple(
            _ingest(store, path, layer, source) for path, layer in zip(placed, layers, strict=True)
        )
        result = Pulled(manifest_digest, models, None)
    shutil.rmtree(staging, ignore_errors=True)
    return result


def _from_store(store: Store, layer: Layer, files: Path) -> Path | None:
    """A layer the store already holds is copied from it, not downloaded again (the
    store hashes it once more as it takes it back)."""
    try:
        location = store.locate(layer.digest)
    except HostError:
        return None
    target = _target(files, layer)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(location.path, target)
    return target


def _target(files: Path, layer: Layer) -> Path:
    return files.joinpath(*(layer.title or layer.digest.hex).split("/"))


def _fetch_layer(
    client: RegistryClient, layer: Layer, staging: Path, files: Path, progress: Progress | None
) -> Path:
    """The layer's verified bytes at ``files/<title>`` (resuming a partial file)."""
    target = _target(files, layer)
    if target.is_file():
        return target  # verified by an earlier, interrupted pull
    partial = staging / f"{layer.digest.hex}.part"
    hasher, offset = _resume_state(partial)
    reply = client.open_blob(layer.digest, offset=offset)
    if reply.offset != offset:  # the registry ignored the Range: start over
        hasher, offset = hashlib.sha256(), 0
    mode = "ab" if offset else "wb"
    with partial.open(mode) as out:
        for chunk in reply.chunks:
            offset += len(chunk)
            if offset > layer.size:
                break
            hasher.update(chunk)
            out.write(chunk)
            if progress:
                progress(layer, offset)
    if offset != layer.size or hasher.hexdigest() != layer.digest.hex:
        partial.unlink(missing_ok=True)
        raise HostError(
            "integrity_mismatch",
            f"the registry's layer {layer.title or layer.digest.hex} does not match its "
            f"digest sha256:{layer.digest.hex}; nothing was stored",
            expected=layer.digest.hex,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(target)
    return target


def _resume_state(partial: Path) -> tuple[hashlib._Hash, int]:
    """The hash and size of what an earlier pull left (streamed, not read whole)."""
    hasher = hashlib.sha256()
    if not partial.is_file():
        return hasher, 0
    size = 0
    with partial.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            hasher.update(chunk)
            size += len(chunk)
    if size:
        log.info("resuming %s at %d bytes", partial.name, size)
    return hasher, size


def _ingest(store: Store, path: Path, layer: Layer, source: str) -> ModelRecord:
    with path.open("rb") as fh:
        pending = store.files.write_stream(fh, expected_size=layer.size)
    try:
        metadata = _metadata(pending.temp_path, layer)
        result = store.ingest(
            pending,
            metadata,
            origin="downloaded",
            refs=[("import", source)],  # the user's, like an imported file
            expected=layer.digest,
        )
    finally:
        store.files.discard(pending)  # no-op once published
    return result.model


def _metadata(path: Path, layer: Layer) -> ModelMetadata:
    """ONNX is checked like any import; other files are stored as opaque blobs."""
    if (layer.title or "").lower().endswith(".onnx"):
        return read_onnx_metadata(path)
    return ModelMetadata(format=sniff_format(path))


def _require(store: Store, digest: Digest) -> ModelRecord:
    record = store.get(digest)
    if record is None:
        raise HostError("internal", f"pulled {digest.hex} but the store has no record of it")
    return record
