"""A catalog entry's ``urls`` may list ``oci://REGISTRY/REPO:TAG`` or
``…@sha256:MANIFEST``: pulling the entry by name fetches its file from that registry
repository by the entry's own sha256 (the real docker-registry), verified like any
download; malformed oci:// URLs refuse the whole catalog like other bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from oci.test_mirrors import put_blob, sha, stored, transfer
from support.catalogs import CatalogSigner, entry
from support.host import run_cli
from support.models import tiny_model
from support.registry import Registry
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.oci.artifact import EMPTY_CONFIG, MANIFEST_TYPE, Layer, build_manifest
from webmodels.oci.client import RegistryClient
from webmodels.oci.reference import Reference


def push_artifact(registry: Registry, data: bytes, tag: str) -> str:
    """The file as a one-layer artifact under `tag`; its manifest's digest."""
    put_blob(registry.host, data)
    put_blob(registry.host, EMPTY_CONFIG)
    body = build_manifest([Layer(Digest(sha(data)), len(data), "model.onnx")], {})
    client = RegistryClient(Reference(registry.host, "models"))
    try:
        client.put_manifest(tag, body, MANIFEST_TYPE)
    finally:
        client.close()
    return hashlib.sha256(body).hexdigest()


def test_a_catalog_entry_with_oci_urls_is_pulled_from_the_registry(
    registry: Registry, home: Path, tmp_path: Path
) -> None:
    one = tiny_model(tmp_path / "one.onnx", weight_bytes=4096, seed=1).read_bytes()
    two = tiny_model(tmp_path / "two.onnx", weight_bytes=4096, seed=2).read_bytes()
    push_artifact(registry, one, "v1")
    manifest = push_artifact(registry, two, "v2")
    signer = CatalogSigner()
    document = signer.write(
        tmp_path / "catalog.json",
        1,
        [
            entry(one, "acme/model", "1.0.0", urls=(f"oci://{registry.host}/models:v1",)),
            entry(
                two,
                "acme/model",
                "2.0.0",
                urls=(f"oci://{registry.host}/models@sha256:{manifest}",),
            ),
        ],
    )
    run_cli(home, "catalog", "add", str(document), "--key", signer.public)
    pulled = json.loads(run_cli(home, "--json", "pull", "acme/model@^1").stdout)
    assert pulled["model"]["sha256"] == sha(one)
    assert stored(home, sha(one)) == one
    # The job that pulls the @sha256: entry runs this transfer (a CLI call less here).
    assert transfer(tmp_path, [f"oci://{registry.host}/models@sha256:{manifest}"], two) == two


@pytest.mark.parametrize(
    ("urls", "why"),
    [
        (["oci://registry.example/models"], "names no :TAG or @sha256:"),
        (["oci://registry.example/Models:v1"], "not a valid repository name"),
        (["oci://registry.example/models@md5:abcd"], "only sha256: digests"),
        (["oci:///models:v1"], "names no registry host"),
    ],
)
def test_a_malformed_oci_url_refuses_the_whole_catalog(urls: list[str], why: str) -> None:
    listed: list[dict[str, Any]] = [entry(b"x", "acme/model", "1.0.0", urls=tuple(urls))]
    with pytest.raises(HostError) as refused:
        CatalogSigner().sign(1, listed)
    assert refused.value.code == "bad_request"
    assert why in refused.value.message
