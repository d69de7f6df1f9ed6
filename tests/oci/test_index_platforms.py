"""A tag naming a manifest list / image index built per platform (no model artifact
type, each entry with ``platform``), against the real registry: the pull takes this
machine's entry and stores that entry's file; an index with no entry for this machine
is refused naming this machine's platform and what the index holds (oci/platforms.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from oci.test_index import put_index, put_manifest
from oci.test_mirrors import put_blob, sha, stored
from support.host import run_cli
from support.registry import Registry
from webmodels.oci.artifact import MANIFEST_TYPE
from webmodels.oci.platforms import Platform, fits, this_machine

HERE = this_machine()
ELSEWHERE = {"os": "linux", "architecture": "s390x" if HERE.architecture != "s390x" else "amd64"}


def platform_manifest(registry: Registry, data: bytes, platform: dict[str, str]) -> dict[str, Any]:
    """A manifest of one titled file (no artifactType: a per-platform build), pushed by
    digest: its index descriptor for `platform`."""
    config = json.dumps({"os": platform["os"], "architecture": platform["architecture"]})
    put_blob(registry.host, config.encode())
    put_blob(registry.host, data)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{sha(config.encode())}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": f"sha256:{sha(data)}",
                    "size": len(data),
                    "annotations": {"org.opencontainers.image.title": "model.bin"},
                }
            ],
        }
    ).encode()
    digest = put_manifest(registry, f"sha256:{sha(body)}", body, MANIFEST_TYPE)
    return {
        "mediaType": MANIFEST_TYPE,
        "digest": f"sha256:{digest}",
        "size": len(body),
        "platform": platform,
    }


def _here() -> dict[str, str]:
    found = {"os": HERE.os, "architecture": HERE.architecture}
    return found | ({"variant": HERE.variant} if HERE.variant else {})


def test_a_manifest_list_pulls_the_entry_for_this_machine(
    registry: Registry, tmp_path: Path
) -> None:
    mine, theirs = os.urandom(50_000), os.urandom(50_000)
    entries = [platform_manifest(registry, theirs, ELSEWHERE)]
    entries.append(platform_manifest(registry, mine, _here()))
    put_index(registry, "per-platform", entries)
    pulled = json.loads(
        run_cli(tmp_path, "--json", "pull", f"oci://{registry.host}/models:per-platform").stdout
    )
    print(f"this machine: {HERE}")
    assert [m["sha256"] for m in pulled["models"]] == [sha(mine)]
    assert pulled["oci_manifest"] == entries[1]["digest"]
    assert stored(tmp_path, sha(mine)) == mine
    assert not list(tmp_path.glob(f"store-v2/blobs/**/{sha(theirs)}"))


def test_a_manifest_list_without_this_machine_is_refused_naming_it(
    registry: Registry, tmp_path: Path
) -> None:
    other = {"os": "windows", "architecture": HERE.architecture}
    entries = [platform_manifest(registry, os.urandom(1000), p) for p in (ELSEWHERE, other)]
    put_index(registry, "foreign", entries)
    refused = run_cli(tmp_path, "pull", f"oci://{registry.host}/models:foreign", check=False)
    assert refused.returncode == 1 and "bad_request" in refused.stderr
    assert f"no manifest for this machine ({HERE})" in refused.stderr
    assert f"linux/{ELSEWHERE['architecture']}" in refused.stderr
    assert f"windows/{HERE.architecture}" in refused.stderr


def test_machine_names_map_to_oci_platforms() -> None:
    assert this_machine("x86_64", "linux") == Platform("linux", "amd64")
    assert this_machine("AMD64", "win32") == Platform("windows", "amd64")
    assert this_machine("arm64", "darwin") == Platform("darwin", "arm64", "v8")
    assert this_machine("armv7l", "linux") == Platform("linux", "arm", "v7")
    arm64 = Platform("linux", "arm64", "v8")
    assert fits(Platform("linux", "arm64"), arm64) and fits(arm64, Platform("linux", "arm64"))
    assert not fits(Platform("linux", "arm", "v6"), Platform("linux", "arm", "v7"))
    assert fits(Platform("linux", "arm"), Platform("linux", "arm", "v7"))
    assert not fits(Platform("linux", "amd64"), Platform("windows", "amd64"))
