"""A tag that names an OCI image index (a multi-platform tag, or several artifacts
under one tag) against the real registry: the pull follows the index to its model
artifact, checked by digest; an index without a model is refused naming what it holds,
and a tampered model manifest behind the index stores nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from oci.test_mirrors import put_blob, sha, stored
from support.held import held_in
from support.host import run_cli
from support.registry import Registry
from webmodels.digest import Digest
from webmodels.oci.artifact import EMPTY_CONFIG, MANIFEST_TYPE, Layer, build_manifest
from webmodels.oci.client import RegistryClient
from webmodels.oci.reference import Reference

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"


def put_manifest(registry: Registry, ref: str, body: bytes, media_type: str) -> str:
    client = RegistryClient(Reference(registry.host, "models"))
    try:
        client.put_manifest(ref, body, media_type)
    finally:
        client.close()
    return sha(body)


def model_artifact(registry: Registry, data: bytes) -> dict[str, Any]:
    """A one-layer model artifact, pushed by digest: its index descriptor."""
    put_blob(registry.host, data)
    put_blob(registry.host, EMPTY_CONFIG)
    body = build_manifest([Layer(Digest(sha(data)), len(data), "weights.bin")], {})
    digest = put_manifest(registry, f"sha256:{sha(body)}", body, MANIFEST_TYPE)
    return {
        "mediaType": MANIFEST_TYPE,
        "artifactType": json.loads(body)["artifactType"],
        "digest": f"sha256:{digest}",
        "size": len(body),
    }


def container_image(registry: Registry, arch: str) -> dict[str, Any]:
    """A (tiny) container image manifest for linux/`arch`: its index descriptor."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {}}).encode()
    layer = os.urandom(64)
    put_blob(registry.host, config)
    put_blob(registry.host, layer)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": IMAGE_CONFIG,
                "digest": f"sha256:{sha(config)}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{sha(layer)}",
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    digest = put_manifest(registry, f"sha256:{sha(body)}", body, MANIFEST_TYPE)
    return {
        "mediaType": MANIFEST_TYPE,
        "digest": f"sha256:{digest}",
        "size": len(body),
        "platform": {"os": "linux", "architecture": arch},
    }


def put_index(registry: Registry, tag: str, entries: list[dict[str, Any]]) -> str:
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries})
    return put_manifest(registry, tag, body.encode(), INDEX_TYPE)


def test_a_tag_naming_an_index_pulls_its_model_artifact_by_tag_and_by_digest(
    registry: Registry, tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    model = model_artifact(registry, data)
    index = put_index(registry, "multi", [container_image(registry, "amd64"), model])
    pulled = json.loads(
        run_cli(tmp_path / "a", "--json", "pull", f"oci://{registry.host}/models:multi").stdout
    )
    assert [m["sha256"] for m in pulled["models"]] == [sha(data)]
    assert pulled["oci_manifest"] == model["digest"]  # the artifact's, not the index's
    assert stored(tmp_path / "a", sha(data)) == data
    # The index pinned by its digest leads to the same artifact (the CLI's client).
    client = RegistryClient(Reference(registry.host, "models", digest=Digest(index)))
    try:
        _, digest = client.get_manifest()
    finally:
        client.close()
    assert f"sha256:{digest.hex}" == model["digest"]


def test_an_index_without_a_model_is_refused_naming_what_it_holds(
    registry: Registry, tmp_path: Path
) -> None:
    images = [container_image(registry, arch) for arch in ("amd64", "arm64")]
    for image in images:  # without platforms (those pick this machine's: test_index_platforms)
        del image["platform"]
    put_index(registry, "images", images)
    refused = run_cli(tmp_path, "pull", f"oci://{registry.host}/models:images", check=False)
    assert refused.returncode == 1 and "bad_request" in refused.stderr
    assert "no model artifact" in refused.stderr
    assert images[0]["digest"][:19] in refused.stderr and images[1]["digest"][:19] in refused.stderr


def test_a_tampered_model_manifest_behind_an_index_stores_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    data = os.urandom(100_000)
    model = model_artifact(registry, data)
    put_index(registry, "tampered", [model])
    kept = registry.blob_file(model["digest"].removeprefix("sha256:"))
    body = kept.read_bytes()  # same size and still valid JSON, other bytes
    kept.write_bytes(body.replace(b"weights.bin", b"weightz.bin"))
    assert hashlib.sha256(kept.read_bytes()).hexdigest() != sha(body)
    refused = run_cli(tmp_path, "pull", f"oci://{registry.host}/models:tampered", check=False)
    assert refused.returncode == 1 and "integrity_mismatch" in refused.stderr
    assert sha(data) not in held_in(tmp_path)
