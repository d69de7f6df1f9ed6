"""``webmodels pull oci://… --background``: the artifact's layers as download jobs.

The manifest is fetched (and an image index followed, oci/index.py) in the foreground:
it is small, and it names every layer's digest and size. Each layer then becomes a file
source whose URL is the artifact pinned by its manifest digest
(``oci://REGISTRY/REPO@sha256:MANIFEST``); the download job fetches it as the
registry's blob ``/v2/REPO/blobs/sha256:LAYER`` with the registry's own auth
(fetch/mirrors.py ``Sources``), resumed with ``Range`` into the job's partial file and
verified by digest like any download. Several titled layers are one model: the set is
remembered (manifests/pending.py) and the runner saves its manifest once every file is
stored, as ``pull URL1 URL2 --background`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from webmodels.digest import Digest
from webmodels.manifests.pulling import FileSource
from webmodels.oci.artifact import parse_layers
from webmodels.oci.client import RegistryClient


@dataclass(frozen=True, slots=True)
class Planned:
    manifest_digest: Digest  # the artifact manifest's (not an index's)
    sources: tuple[FileSource, ...]  # one per layer, in the manifest's order
    one_model: bool  # several titled layers: saved as one model manifest


def plan(client: RegistryClient) -> Planned:
    """The jobs a background pull of ``client.reference`` needs (one manifest fetch)."""
    body, digest = client.get_manifest()
    layers = parse_layers(body)
    reference = client.reference
    url = f"oci://{reference.registry}/{reference.repository}@sha256:{digest.hex}"
    sources = tuple(
        FileSource(layer.title or layer.digest.hex, layer.digest, (url,), layer.size)
        for layer in layers
    )
    one_model = len(layers) > 1 and all(layer.title for layer in layers)
    return Planned(digest, sources, one_model)
