"""A real OCI registry for the tests: Debian's ``docker-registry`` (CNCF Distribution
2.8), started with a temp config on 127.0.0.1 and a free port, its storage in a temp
folder; optionally behind htpasswd (basic) auth. No Docker daemon is needed.

Without the binary (scripts/setup-optional installs it) the tests skip, or fail under
``CI=true`` like the browser tests.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from support.registry_token import ISSUER, SERVICE, TokenService, token_service

BINARY = "docker-registry"


@dataclass(frozen=True, slots=True)
class Registry:
    host: str  # "127.0.0.1:PORT"
    storage: Path  # the filesystem driver's root
    user: str | None = None
    password: str | None = None

    def blob_file(self, hex_digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        return (
            self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"
        )


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the registry tests must run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(folder: Path, port: int, auth: str) -> Path:
    text = (
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"{auth}"
    )
    path = folder / "config.yml"
    path.write_text(text)
    return path


def _htpasswd(folder: Path, user: str, password: str) -> Path:
    import bcrypt  # the registry's htpasswd auth accepts bcrypt hashes only

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    path = folder / "htpasswd"
    path.write_text(f"{user}:{hashed}\n")
    return path


@dataclass(frozen=True, slots=True)
class _Started:
    registry: Registry
    process: subprocess.Popen[bytes]


def start_registry(
    folder: Path,
    *,
    user: str | None = None,
    password: str | None = None,
    token: TokenService | None = None,
) -> _Started:
    binary = shutil.which(BINARY) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )
    if binary is None:
        skip_or_fail("docker-registry is not installed (scripts/setup-optional installs it)")
    assert binary is not None
    folder.mkdir(parents=True, exist_ok=True)
    auth = ""
    if token is not None:
        auth = (
            f"auth:\n  token:\n    realm: {token.realm}\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {token.root_cert}\n"
        )
    elif user and password:
        htpasswd = _htpasswd(folder, user, password)
        auth = f"auth:\n  htpasswd:\n    realm: webmodels-test\n    path: {htpasswd}\n"
    port = _free_port()
    config = _config(folder, port, auth)
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    registry = Registry(f"127.0.0.1:{port}", folder / "storage", user, password)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(folder / 'registry.log').read_text()}")
        try:
            requests.get(f"http://{registry.host}/v2/", timeout=1)
            return _Started(registry, process)
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("docker-registry did not start within 20 s")


def _stop(started: _Started) -> None:
    started.process.terminate()
    try:
        started.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        started.process.kill()
        started.process.wait()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    started = start_registry(tmp_path / "registry")
    yield started.registry
    _stop(started)


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    started = start_registry(tmp_path / "auth-registry", user="alice", password="s3cret-pw")
    yield started.registry
    _stop(started)


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[Registry]:
    """Bearer-token auth: the registry sends clients to a token service that checks
    basic credentials (Distribution's ``auth: token``)."""
    folder = tmp_path / "token-registry"
    folder.mkdir()
    with token_service(folder, user="bob", password="t0ken-pw") as service:
        started = start_registry(folder, token=service)
        yield dataclasses.replace(started.registry, user=service.user, password=service.password)
        _stop(started)
