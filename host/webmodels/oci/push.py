"""Push a stored model (one file, or a model manifest's files) to a registry as an
OCI artifact (ORAS conventions, see `artifact`): each blob is uploaded from the store
as a stream (a file kept as segments straight from its segments) unless the registry
has it already, then the manifest is put under the
reference's tag."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.values import Manifest
from webmodels.oci.artifact import (
    EMPTY_CONFIG,
    MANIFEST_TYPE,
    Layer,
    build_manifest,
    layer_type,
)
from webmodels.oci.client import RegistryClient
from webmodels.store.records import ModelRecord
from webmodels.store.segment_reader import open_stored
from webmodels.store.segments.reconstruct import SegmentMissing
from webmodels.store.store import Store


@dataclass(frozen=True, slots=True)
class Pushed:
    manifest_digest: Digest
    layers: tuple[Layer, ...]
    uploaded: int  # blobs the registry did not have


def layers_of_model(record: ModelRecord) -> list[Layer]:
    """One layer, titled by the file's format (``model.onnx``) or its digest."""
    title = "model.onnx" if record.format == "onnx" else f"{record.digest.hex[:16]}.bin"
    return [Layer(record.digest, record.size, title, layer_type(title))]


def layers_of_manifest(manifest: Manifest) -> list[Layer]:
    return [Layer(e.digest, e.size, e.path, layer_type(e.path)) for e in manifest.entries]


def push(
    store: Store,
    client: RegistryClient,
    layers: list[Layer],
    *,
    annotations: dict[str, str],
) -> Pushed:
    tag = client.reference.tag
    if not tag or client.reference.digest is not None:
        raise HostError(
            "bad_request", f"{client.reference}: push needs a tag (oci://REGISTRY/REPO:TAG)"
        )
    uploaded = 0
    for layer in layers:
        uploaded += _upload(store, client, layer)
    empty = Digest(hashlib.sha256(EMPTY_CONFIG).hexdigest())
    if not client.has_blob(empty):
        client.upload_blob(empty, len(EMPTY_CONFIG), EMPTY_CONFIG)
    body = build_manifest(layers, annotations)
    client.put_manifest(tag, body, MANIFEST_TYPE)
    return Pushed(Digest(hashlib.sha256(body).hexdigest()), tuple(layers), uploaded)


def _upload(store: Store, client: RegistryClient, layer: Layer) -> int:
    if client.has_blob(layer.digest):
        return 0
    # Streamed by requests, never read whole: a file kept as segments from its
    # segments (no view is made), else its own file (a pre-installed model's too).
    reader, _ = open_stored(store, layer.digest)
    try:
        with reader:
            client.upload_blob(layer.digest, layer.size, reader)
    except SegmentMissing as exc:
        raise HostError("not_found", f"model {layer.digest.hex} lost a segment") from exc
    return 1
