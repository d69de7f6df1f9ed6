"""Bearer-token auth against a real registry (Distribution's ``auth: token``): the
registry's challenge names a token service; webmodels asks it for a token with the
user's config.json credentials, then pushes and pulls with it."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from support.held import read_held
from support.host import run_cli
from support.registry import Registry


def test_push_and_pull_with_a_token_from_the_registrys_token_service(
    token_registry: Registry, tmp_path: Path
) -> None:
    data = os.urandom(128 * 1024)
    source = tmp_path / "w.bin"
    source.write_bytes(data)
    a, b = tmp_path / "a", tmp_path / "b"
    [imported] = json.loads(run_cli(a, "--json", "import", "--raw", str(source)).stdout)
    sha = imported["model"]["sha256"]
    target = f"oci://{token_registry.host}/team/weights:v1"
    nobody = tmp_path / "no-login"
    nobody.mkdir()
    refused = run_cli(a, "push", sha, target, check=False, DOCKER_CONFIG=str(nobody))
    assert refused.returncode == 1 and "access_denied" in refused.stderr
    docker = tmp_path / "docker"
    docker.mkdir()
    login = f"{token_registry.user}:{token_registry.password}".encode()
    auths = {token_registry.host: {"auth": base64.b64encode(login).decode()}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    run_cli(a, "push", sha, target, DOCKER_CONFIG=str(docker))
    run_cli(b, "pull", target, DOCKER_CONFIG=str(docker))
    assert read_held(b, sha) == data
