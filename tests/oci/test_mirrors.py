"""Config ``mirrors``: a download of a known SHA-256 first tries each mirror by digest
(an OCI registry's ``/v2/<repo>/blobs/sha256:<hex>``, an https prefix), verifies the
bytes, then the origin URL. Against the real docker-registry, a real subprocess host
and real loopback HTTP servers; a loopback proxy in front of the registry corrupts or
slows its replies."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from oci.mirror_proxy import registry_proxy
from support.host import HostProcess, run_cli, webmodels_env
from support.httpserver import ModelServer
from support.registry import Registry
from webmodels.digest import Digest
from webmodels.oci.client import RegistryClient
from webmodels.oci.reference import Reference

PAGE = {
    "partition": {"top_site": "http://a.localhost:8000", "origin": "http://a.localhost:8000"},
    "user_activation": True,
    "trusted": False,
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def put_blob(host: str, data: bytes, repository: str = "models") -> None:
    client = RegistryClient(Reference(host, repository))
    try:
        client.upload_blob(Digest(sha(data)), len(data), data)
    finally:
        client.close()


def with_mirrors(home: Path, *mirrors: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(f"mirrors = {json.dumps(list(mirrors))}\n", encoding="utf-8")
    return {"WEBMODELS_CONFIG": str(path)}


def stored(home: Path, digest: str) -> bytes:
    return next(home.glob(f"store-v1/blobs/**/{digest}")).read_bytes()


def test_a_page_load_by_integrity_comes_from_the_registry_mirror_with_the_server_stopped(
    registry: Registry, home: Path, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    put_blob(registry.host, data)
    with ModelServer() as server:
        url = server.add("/model.bin", b"never served")
    # The model's own server is stopped: only the mirror can serve the file.
    host = HostProcess(home, **with_mirrors(home, f"oci://{registry.host}/models"))
    try:
        query = {"url": url, "integrity": integrity(data)}
        loaded = host.result("models.load", {"query": query}, context=PAGE)
        assert loaded["model"]["sha256"] == sha(data)
    finally:
        host.close()
    assert stored(home, sha(data)) == data
    assert server.requests == []


def test_a_mirror_serving_wrong_bytes_is_refused_and_the_next_source_tried(
    registry: Registry, home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(200_000)
    put_blob(registry.host, data)
    origin = model_server.add("/origin.bin", data)
    wrong = model_server.add(f"/by-hash/{sha(data)}", bytes(len(data)))  # same size, zeros
    with registry_proxy(registry.host, corrupt=True) as (proxy, seen):
        env = with_mirrors(
            home,
            f"oci://{proxy}/models",
            model_server.url("/by-hash/"),
            f"oci://{registry.host}/models",
        )
        pulled = json.loads(
            run_cli(home, "--json", "pull", origin, "--sha256", sha(data), **env).stdout
        )
    assert pulled["model"]["sha256"] == sha(data)
    assert stored(home, sha(data)) == data
    assert seen.seen and seen.seen[0][0] == f"/v2/models/blobs/sha256:{sha(data)}"
    assert model_server.transfers(f"/by-hash/{sha(data)}") == 1  # tried, refused
    assert model_server.transfers("/origin.bin") == 0  # the good registry served it
    assert wrong


def test_when_every_source_fails_the_error_names_each_one(
    registry: Registry, home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(50_000)
    put_blob(registry.host, data)
    origin = model_server.add("/origin.bin", bytes(len(data)))  # wrong bytes too
    with registry_proxy(registry.host, corrupt=True) as (proxy, _):
        env = with_mirrors(home, f"oci://{proxy}/models", model_server.url("/missing/"))
        failed = run_cli(home, "pull", origin, "--sha256", sha(data), check=False, **env)
    assert failed.returncode != 0
    assert "integrity_mismatch" in failed.stderr
    for source in (f"mirror oci://{proxy}/models", model_server.url("/missing/"), origin):
        assert source in failed.stderr, failed.stderr
    assert "404" in failed.stderr  # what the https mirror answered
    assert not list(home.glob(f"store-v1/blobs/**/{sha(data)}"))


def test_a_registry_mirror_with_basic_auth_uses_the_users_config_json(
    auth_registry: Registry, home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    data = os.urandom(40_000)
    pair = f"{auth_registry.user}:{auth_registry.password}"
    docker = tmp_path / "docker"
    docker.mkdir()
    auths = {auth_registry.host: {"auth": base64.b64encode(pair.encode()).decode()}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    client = RegistryClient(
        Reference(auth_registry.host, "models"),
        credentials=_credentials(auth_registry),
    )
    client.upload_blob(Digest(sha(data)), len(data), data)
    client.close()
    origin = model_server.add("/gone.bin", data)
    model_server.stop()
    env = with_mirrors(home, f"oci://{auth_registry.host}/models")
    run_cli(home, "pull", origin, "--sha256", sha(data), DOCKER_CONFIG=str(docker), **env)
    assert stored(home, sha(data)) == data


def _credentials(registry: Registry) -> Any:
    from webmodels.oci.credentials import Credentials

    assert registry.user and registry.password
    return Credentials(registry.user, registry.password)


def test_a_mirror_pull_killed_half_way_resumes_with_range_on_restart(
    registry: Registry, home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    put_blob(registry.host, data)
    origin = model_server.add("/origin.bin", data)
    model_server.stop()  # only the mirror serves it
    with registry_proxy(registry.host, rate=1024 * 1024) as (proxy, state):
        env = with_mirrors(home, f"oci://{proxy}/models")
        argv = [sys.executable, "-m", "webmodels", "pull", origin, "--sha256", sha(data)]
        pull = subprocess.Popen(argv, env=webmodels_env(home, **env))
        partial = _wait_for_partial(home, at_least=256 * 1024)
        pull.send_signal(signal.SIGKILL)
        pull.wait()
        kept = partial.stat().st_size
        assert 0 < kept < len(data)
        state.rate = None
        run_cli(home, "pull", origin, "--sha256", sha(data), **env)
    assert stored(home, sha(data)) == data
    ranges = [r for _, r in state.seen if r]
    assert ranges and int(ranges[-1].removeprefix("bytes=").split("-")[0]) > 0, state.seen
    print(f"killed at {kept} of {len(data)} bytes; resumed with {ranges[-1]}")


def _wait_for_partial(home: Path, *, at_least: int) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in home.glob("store-v1/tmp/dl-*.partial"):
            if path.stat().st_size >= at_least:
                return path
        time.sleep(0.02)
    raise AssertionError("the mirror pull wrote no partial file")
