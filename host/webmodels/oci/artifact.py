"""The artifact layout webmodels writes and reads (ORAS conventions, pure): an OCI
image manifest with ``artifactType``, the empty config, one layer per file with its
``org.opencontainers.image.title`` annotation and a media type by kind."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.values import check_path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.webmodels.model.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
TITLE = "org.opencontainers.image.title"
ACCEPT = ", ".join((MANIFEST_TYPE, "application/vnd.docker.distribution.manifest.v2+json"))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's recommended limit
_LAYER_TYPES = {
    ".onnx": "application/vnd.onnx.model",
    ".onnx_data": "application/vnd.onnx.external-data",
    ".data": "application/vnd.onnx.external-data",
    ".safetensors": "application/vnd.safetensors",
    ".gguf": "application/vnd.gguf",
    ".json": "application/json",
}
DEFAULT_LAYER_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Layer:
    digest: Digest
    size: int
    title: str | None  # a checked relative path, or None when the layer has none
    media_type: str = DEFAULT_LAYER_TYPE


def layer_type(title: str) -> str:
    lower = title.lower()
    for suffix, media in _LAYER_TYPES.items():
        if lower.endswith(suffix):
            return media
    return DEFAULT_LAYER_TYPE


def build_manifest(layers: list[Layer], annotations: dict[str, str]) -> bytes:
    """The image manifest for ``layers`` (each with a title), as the bytes to PUT."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": _descriptor(
            EMPTY_TYPE, Digest(hashlib.sha256(EMPTY_CONFIG).hexdigest()), len(EMPTY_CONFIG)
        ),
        "layers": [
            {
                **_descriptor(layer.media_type, layer.digest, layer.size),
                "annotations": {TITLE: layer.title or layer.digest.hex},
            }
            for layer in layers
        ],
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, separators=(",", ":")).encode()


def parse_layers(body: bytes) -> list[Layer]:
    """The layers of an image manifest (an index or anything else: `bad_request`)."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise HostError("download_failed", "the registry sent a manifest that is not JSON") from exc
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list) or not layers:
        raise HostError(
            "bad_request",
            "the reference names no artifact with layers (an image index or an empty "
            "artifact); name one platform's manifest or a model artifact",
        )
    parsed = [_layer(entry) for entry in layers]
    titles = [layer.title.casefold() for layer in parsed if layer.title]
    if len(set(titles)) != len(titles):  # one file would hide another
        raise HostError("download_failed", "the artifact names one file title twice")
    return parsed


def _layer(entry: object) -> Layer:
    if not isinstance(entry, dict):
        raise HostError("download_failed", "the manifest has a malformed layer")
    raw = entry.get("digest")
    if not isinstance(raw, str) or not raw.startswith("sha256:"):
        raise HostError("download_failed", f"layer digest {raw!r} is not sha256")
    size = entry.get("size")
    if not isinstance(size, int) or size < 0:
        raise HostError("download_failed", "the manifest has a layer without a size")
    annotations = entry.get("annotations") or {}
    title = annotations.get(TITLE) if isinstance(annotations, dict) else None
    if title is not None:
        title = check_path(title, field="layer title")  # never a path outside the model
    media = entry.get("mediaType")
    return Layer(
        Digest.parse(raw.removeprefix("sha256:"), field="layer digest"),
        size,
        title,
        media if isinstance(media, str) else DEFAULT_LAYER_TYPE,
    )


def _descriptor(media_type: str, digest: Digest, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{digest.hex}", "size": size}
