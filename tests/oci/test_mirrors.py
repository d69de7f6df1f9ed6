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

import pytest

from oci.mirror_proxy import registry_proxy
from support.held import read_held
from support.host import HostProcess, run_cli, webmodels_env
from support.httpserver import ModelServer
from support.registry import Registry
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.transfer import Transfer, TransferOptions, new_session
from webmodels.oci.client import RegistryClient
from webmodels.oci.credentials import Credentials
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
    return read_held(home, digest)


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


def transfer(tmp_path: Path, urls: list[str], data: bytes, *mirrors: str) -> bytes:
    """One real transfer in this process (as a job runs it): the verified bytes."""
    job = Transfer(
        urls=urls,
        expected=Digest(sha(data)),
        expected_size=len(data),
        partial=tmp_path / "dl-test.partial",
        options=TransferOptions(max_attempts=1, backoff_s=0.01),
        session=new_session(),
        progress=lambda loaded, total: None,
        should_stop=lambda: False,
        mirrors=mirrors,
    )
    try:
        return job.run().temp_path.read_bytes()
    finally:
        job.session.close()


def test_a_mirror_serving_wrong_bytes_is_refused_and_the_next_source_tried(
    registry: Registry, tmp_path: Path, model_server: ModelServer
) -> None:
    data = os.urandom(200_000)
    put_blob(registry.host, data)
    origin = model_server.add("/origin.bin", data)
    model_server.add(f"/by-hash/{sha(data)}", bytes(len(data)))  # same size, zeros
    with registry_proxy(registry.host, corrupt=True) as (proxy, seen):
        mirrors = (f"oci://{proxy}/models", model_server.url("/by-hash/"))
        got = transfer(tmp_path, [origin], data, *mirrors, f"oci://{registry.host}/models")
    assert got == data
    assert seen.seen == [(f"/v2/models/blobs/sha256:{sha(data)}", None)]  # tried, refused
    assert model_server.transfers(f"/by-hash/{sha(data)}") == 1  # tried, refused
    assert model_server.transfers("/origin.bin") == 0  # the good registry served it


def test_when_every_source_fails_the_error_names_each_one(
    registry: Registry, tmp_path: Path, model_server: ModelServer
) -> None:
    data = os.urandom(50_000)
    put_blob(registry.host, data)
    origin = model_server.add("/origin.bin", bytes(len(data)))  # wrong bytes too
    with registry_proxy(registry.host, corrupt=True) as (proxy, _):
        mirrors = (f"oci://{proxy}/models", model_server.url("/missing/"))
        with pytest.raises(HostError) as failed:
            transfer(tmp_path, [origin], data, *mirrors)
    error = failed.value
    assert error.code == "integrity_mismatch"
    for source in (f"mirror oci://{proxy}/models", model_server.url("/missing/"), origin):
        assert source in error.message, error.message
    assert "404" in error.message  # what the https mirror answered
    assert not (tmp_path / "dl-test.partial").exists()


def test_a_registry_mirror_with_basic_auth_uses_the_users_config_json(
    auth_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(40_000)
    assert auth_registry.user and auth_registry.password
    credentials = Credentials(auth_registry.user, auth_registry.password)
    client = RegistryClient(Reference(auth_registry.host, "models"), credentials=credentials)
    client.upload_blob(Digest(sha(data)), len(data), data)
    client.close()
    mirror = f"oci://{auth_registry.host}/models"
    dead = "http://127.0.0.1:9/gone.bin"  # the discard port on the loopback: nothing listens
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nobody"))
    with pytest.raises(HostError) as refused:
        transfer(tmp_path, [dead], data, mirror)
    assert f"mirror {mirror}: " in refused.value.message  # named, with what went wrong
    docker = tmp_path / "docker"
    docker.mkdir()
    pair = base64.b64encode(f"{credentials.user}:{credentials.password}".encode()).decode()
    auths = {auth_registry.host: {"auth": pair}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    assert transfer(tmp_path, [dead], data, mirror) == data


def test_a_mirror_pull_killed_half_way_resumes_with_range_on_restart(
    registry: Registry, home: Path, model_server: ModelServer
) -> None:
    data = os.urandom(1024 * 1024)
    put_blob(registry.host, data)
    origin = model_server.add("/origin.bin", data)
    model_server.stop()  # only the mirror serves it
    with registry_proxy(registry.host, rate=512 * 1024) as (proxy, state):
        env = with_mirrors(home, f"oci://{proxy}/models")
        argv = [sys.executable, "-m", "webmodels", "pull", origin, "--sha256", sha(data)]
        pull = subprocess.Popen(argv, env=webmodels_env(home, **env))
        partial = _wait_for_partial(home, at_least=128 * 1024)
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
        for path in home.glob("store-v2/tmp/dl-*.partial"):
            if path.stat().st_size >= at_least:
                return path
        time.sleep(0.02)
    raise AssertionError("the mirror pull wrote no partial file")


def test_a_registry_mirror_with_token_auth_gets_a_bearer_token_for_the_blob(
    token_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(30_000)
    assert token_registry.user and token_registry.password
    credentials = Credentials(token_registry.user, token_registry.password)
    client = RegistryClient(Reference(token_registry.host, "models"), credentials=credentials)
    client.upload_blob(Digest(sha(data)), len(data), data)
    client.close()
    docker = tmp_path / "docker"
    docker.mkdir()
    pair = base64.b64encode(f"{credentials.user}:{credentials.password}".encode()).decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {token_registry.host: {"auth": pair}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    dead = "http://127.0.0.1:9/gone.bin"
    assert transfer(tmp_path, [dead], data, f"oci://{token_registry.host}/models") == data
