"""OCI image indexes (``application/vnd.oci.image.index.v1+json``) a tag may point at
(pure): which of the index's manifests is the model artifact to pull.

A multi-platform tag (``docker buildx``, ``oras`` with several artifacts) names an
index, not an artifact. The model is the index's first manifest whose
``artifactType`` is a model artifact type (webmodels', the CNCF ModelPack spec's,
KitOps', Docker Model Runner's) and whose ``platform``, if it names one, is this
machine's. Without model artifacts, the entries that carry a ``platform`` (a manifest
list built per platform) are chosen from: the one for this machine (oci/platforms.py).
Where entries name platforms and none is this machine's, or nothing fits at all, the
pull is refused with a list of what the index holds. The chosen manifest is then
fetched by its digest, its size bounded by the descriptor's and by
`MAX_MANIFEST_BYTES`, and its bytes checked against that digest (oci/client.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.oci.artifact import ARTIFACT_TYPE, MANIFEST_TYPE, MAX_MANIFEST_BYTES
from webmodels.oci.platforms import Platform, entry_platform, fits, this_machine

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
MODEL_ARTIFACT_TYPES = frozenset(
    {
        ARTIFACT_TYPE,
        "application/vnd.cncf.model.manifest.v1+json",  # CNCF ModelPack
        "application/vnd.kitops.modelkit.manifest.v1+json",  # KitOps ModelKit
        "application/vnd.docker.ai.model.config.v0.1+json",  # Docker Model Runner
    }
)
MAX_LISTED = 8  # entries named in the error for an index without a model


@dataclass(frozen=True, slots=True)
class Descriptor:
    digest: Digest
    size: int
    media_type: str


def is_index(body: bytes) -> bool:
    """Whether a manifest reply is an image index (by its ``mediaType``, or, as the
    spec allows it to be absent, by a ``manifests`` list and no ``layers``)."""
    document = _json(body)
    media = document.get("mediaType")
    if media in (INDEX_TYPE, DOCKER_LIST_TYPE):
        return True
    return media is None and "manifests" in document and "layers" not in document


def choose_manifest(body: bytes, here: Platform | None = None) -> Descriptor:
    """The index's manifest to pull on the platform `here` (default: this machine)."""
    here = this_machine() if here is None else here
    document = _json(body)
    entries = document.get("manifests")
    if not isinstance(entries, list):
        raise HostError("download_failed", "the registry's image index lists no manifests")
    dicts = [e for e in entries if isinstance(e, dict)]
    models = [e for e in dicts if _artifact_type(e) in MODEL_ARTIFACT_TYPES]
    candidates = models or [e for e in dicts if entry_platform(e) is not None]
    for entry in candidates:
        platform = entry_platform(entry)
        if platform is None or fits(platform, here):
            return _descriptor(entry)
    listed = [_describe(entry) for entry in entries[:MAX_LISTED]]
    more = f" and {len(entries) - MAX_LISTED} more" if len(entries) > MAX_LISTED else ""
    if candidates:
        raise HostError(
            "bad_request",
            f"the reference names an image index with no manifest for this machine ({here}); "
            f"it holds: {'; '.join(listed)}{more}. Pull one of them by digest "
            "(oci://REGISTRY/REPO@sha256:…) to take it anyway",
        )
    raise HostError(
        "bad_request",
        "the reference names an image index with no model artifact (none of its "
        f"manifests has a model artifactType); it holds: {'; '.join(listed) or 'nothing'}"
        f"{more}. Pull one of them by digest (oci://REGISTRY/REPO@sha256:…) if it is a "
        "model",
    )


def _artifact_type(entry: dict[str, Any]) -> str | None:
    value = entry.get("artifactType")
    return value if isinstance(value, str) else None


def _descriptor(entry: dict[str, Any]) -> Descriptor:
    raw, size, media = entry.get("digest"), entry.get("size"), entry.get("mediaType")
    if not isinstance(raw, str) or not raw.startswith("sha256:"):
        raise HostError("download_failed", f"the index names manifest digest {raw!r}, not sha256")
    if not isinstance(size, int) or not 0 < size <= MAX_MANIFEST_BYTES:
        raise HostError(
            "too_large" if isinstance(size, int) and size > 0 else "download_failed",
            f"the index names a manifest of size {size!r} (at most {MAX_MANIFEST_BYTES})",
        )
    if media not in (MANIFEST_TYPE, DOCKER_MANIFEST_TYPE):
        raise HostError(
            "bad_request", f"the index's chosen entry is a {media!r}, not an image manifest"
        )
    digest = Digest.parse(raw.removeprefix("sha256:"), field="manifest digest")
    return Descriptor(digest, size, media)


def _describe(entry: object) -> str:
    """One index entry as the error names it: kind, platform, digest."""
    if not isinstance(entry, dict):
        return "a malformed entry"
    kind = _artifact_type(entry) or str(entry.get("mediaType", "no mediaType"))
    platform = entry.get("platform")
    where = ""
    if isinstance(platform, dict):
        parts = (platform.get("os"), platform.get("architecture"), platform.get("variant"))
        where = " " + "/".join(str(p) for p in parts if isinstance(p, str))
    digest = entry.get("digest")
    short = digest[:19] if isinstance(digest, str) else "no digest"
    return f"{kind}{where} ({short}…)"


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise HostError("download_failed", "the registry sent a manifest that is not JSON") from exc
    if not isinstance(document, dict):
        raise HostError("download_failed", "the registry sent a manifest that is no object")
    return document
