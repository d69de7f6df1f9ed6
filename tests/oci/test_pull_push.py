"""`webmodels push` and `webmodels pull oci://…` against a real registry (Debian's
docker-registry, CNCF Distribution 2.8): byte-identical round trips by tag and by
digest, a model of several files, basic auth from config.json, wrong bytes refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from support.held import held_in, read_held
from support.host import run_cli
from support.manifest_models import matmul_chain
from support.registry import Registry


def cli_json(home: Path, *args: str, **env: str) -> dict[str, Any]:
    result = run_cli(home, "--json", *args, **env)
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def stored_bytes(home: Path, sha: str) -> bytes:
    return read_held(home, sha)


def push_file(home: Path, tmp_path: Path, target: str, data: bytes, **env: str) -> str:
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    [imported] = json.loads(run_cli(home, "--json", "import", "--raw", str(source)).stdout)
    sha: str = imported["model"]["sha256"]
    pushed = cli_json(home, "push", sha, target, **env)
    assert pushed["result"] == "pushed"
    return sha


def test_push_then_pull_by_tag_and_by_digest_is_byte_identical(
    registry: Registry, tmp_path: Path
) -> None:
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    data = os.urandom(3 * 1024 * 1024 + 17)
    target = f"oci://{registry.host}/models/weights:v1"
    sha = push_file(a, tmp_path, target, data)
    assert sha == hashlib.sha256(data).hexdigest()
    pulled = cli_json(b, "pull", target)
    assert [m["sha256"] for m in pulled["models"]] == [sha]
    assert stored_bytes(b, sha) == data
    digest_ref = f"oci://{registry.host}/models/weights@{pulled['oci_manifest']}"
    again = cli_json(c, "pull", digest_ref)
    assert [m["sha256"] for m in again["models"]] == [sha]
    assert stored_bytes(c, sha) == data
    assert not (b / "oci-pulls").exists() or not any((b / "oci-pulls").iterdir())


def test_a_model_of_several_files_comes_back_as_one_manifest(
    registry: Registry, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    graph = matmul_chain(tmp_path / "m", width=64, layers=2)
    [imported] = json.loads(run_cli(a, "--json", "import", str(graph)).stdout)
    manifest = imported["manifest"]
    target = f"oci://{registry.host}/models/chain:1.0"
    cli_json(a, "push", manifest["sha256"], target)
    pulled = cli_json(b, "pull", target)
    assert pulled["manifest"] == manifest  # the same files, roles and manifest digest
    for entry in manifest["files"]:
        source = tmp_path / "m" / entry["path"]
        assert stored_bytes(b, entry["sha256"]) == source.read_bytes()


def test_basic_auth_uses_the_users_config_json_and_nothing_else(
    auth_registry: Registry, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    target = f"oci://{auth_registry.host}/private/weights:v1"
    source = tmp_path / "w.bin"
    source.write_bytes(b"secret weights" * 1000)
    [imported] = json.loads(run_cli(a, "--json", "import", "--raw", str(source)).stdout)
    sha = imported["model"]["sha256"]
    nobody = tmp_path / "no-login"
    nobody.mkdir()
    refused = run_cli(a, "push", sha, target, check=False, DOCKER_CONFIG=str(nobody))
    assert refused.returncode == 1 and "access_denied" in refused.stderr
    docker = tmp_path / "docker"
    docker.mkdir()
    token = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {auth_registry.host: {"auth": token}}})
    )
    cli_json(a, "push", sha, target, DOCKER_CONFIG=str(docker))
    anonymous = run_cli(b, "pull", target, check=False, DOCKER_CONFIG=str(nobody))
    assert anonymous.returncode == 1 and "access_denied" in anonymous.stderr
    pulled = cli_json(b, "pull", target, DOCKER_CONFIG=str(docker))
    assert stored_bytes(b, sha) == source.read_bytes()
    assert [m["sha256"] for m in pulled["models"]] == [sha]


def test_wrong_bytes_from_the_registry_are_refused_and_nothing_is_stored(
    registry: Registry, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    data = os.urandom(256 * 1024)
    target = f"oci://{registry.host}/models/tampered:v1"
    sha = push_file(a, tmp_path, target, data)
    blob = registry.blob_file(sha)
    blob.write_bytes(bytes(x ^ 0xFF for x in data[:16]) + data[16:])  # same size, wrong bytes
    refused = run_cli(b, "pull", target, check=False)
    assert refused.returncode == 1 and "integrity_mismatch" in refused.stderr
    assert sha not in held_in(b)
    assert sha not in run_cli(b, "--json", "ls").stdout
    # A store that already holds the layer takes it from itself, not the registry.
    again = cli_json(a, "pull", target)
    assert [m["sha256"] for m in again["models"]] == [sha]
