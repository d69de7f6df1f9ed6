"""Registry credentials from a Docker credential helper named in ``config.json``
(``credsStore`` for every registry, ``credHelpers`` per registry): the host runs
``docker-credential-NAME get`` with the registry on stdin and reads the JSON answer,
as Docker and ORAS do. Fake helpers are real executables on ``PATH`` in a temp dir;
the registry is the real docker-registry with htpasswd auth."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from oci.test_mirrors import sha, transfer
from support.registry import Registry
from webmodels.digest import Digest
from webmodels.oci.client import RegistryClient
from webmodels.oci.credentials import Credentials, find_credentials
from webmodels.oci.reference import Reference

HELPER = """#!{python}
import json, pathlib, sys, time
here = pathlib.Path(__file__).parent
server = sys.stdin.read()
with open(here / "{name}.log", "a") as log:
    log.write(json.dumps([sys.argv[1:], server]) + "\\n")
time.sleep({sleep})
answers = json.loads((here / "{name}.json").read_text())
if server not in answers:
    print("credentials not found in native keychain")
    sys.exit(1)
user, secret = answers[server]
print(json.dumps({{"ServerURL": server, "Username": user, "Secret": secret}}))
"""


def helper(
    folder: Path, name: str, answers: dict[str, tuple[str, str]], *, sleep: float = 0
) -> Path:
    """``docker-credential-NAME`` in `folder`; it logs each call to ``NAME.log``."""
    program = folder / f"docker-credential-{name}"
    program.write_text(HELPER.format(python=sys.executable, name=name, sleep=sleep))
    program.chmod(0o755)
    (folder / f"{name}.json").write_text(json.dumps(answers))
    return folder / f"{name}.log"


def calls(log: Path) -> list[list[object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return folder


def docker_config(folder: Path, document: dict[str, object]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(document))
    return path


def test_a_registry_mirror_gets_its_credentials_from_the_creds_store_helper(
    auth_registry: Registry, bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(40_000)
    assert auth_registry.user and auth_registry.password
    pair = Credentials(auth_registry.user, auth_registry.password)
    client = RegistryClient(Reference(auth_registry.host, "models"), credentials=pair)
    client.upload_blob(Digest(sha(data)), len(data), data)
    client.close()
    log = helper(bin_dir, "fake", {auth_registry.host: (pair.user, pair.password)})
    docker = tmp_path / "docker"
    docker_config(docker, {"auths": {auth_registry.host: {}}, "credsStore": "fake"})
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    mirror = f"oci://{auth_registry.host}/models"
    assert transfer(tmp_path, ["http://127.0.0.1:9/gone.bin"], data, mirror) == data
    assert calls(log) == [[["get"], auth_registry.host]]  # as Docker runs a helper


def test_cred_helpers_name_the_helper_per_registry_over_the_creds_store(
    bin_dir: Path, tmp_path: Path
) -> None:
    store_log = helper(bin_dir, "store", {"a.example": ("s", "store-secret")})
    own_log = helper(bin_dir, "own", {"b.example:5000": ("o", "own-secret")})
    path = docker_config(
        tmp_path / "docker",
        {
            "credsStore": "store",
            "credHelpers": {"b.example:5000": "own"},
            "auths": {"c.example": {"auth": "dTpw"}},  # base64 "u:p"
        },
    )
    assert find_credentials(path, "b.example:5000") == Credentials("o", "own-secret")
    assert find_credentials(path, "a.example") == Credentials("s", "store-secret")
    # The helper has none for c.example: the plain `auths` entry is used.
    assert find_credentials(path, "c.example") == Credentials("u", "p")
    assert [c[1] for c in calls(own_log)] == ["b.example:5000"]
    assert [c[1] for c in calls(store_log)] == ["a.example", "c.example"]


def test_a_helper_that_hangs_or_is_missing_gives_no_credentials(
    bin_dir: Path, tmp_path: Path
) -> None:
    helper(bin_dir, "slow", {"a.example": ("s", "secret")}, sleep=30)
    slow = docker_config(tmp_path / "slow", {"credsStore": "slow"})
    assert find_credentials(slow, "a.example", timeout_s=0.5) is None
    missing = docker_config(tmp_path / "missing", {"credsStore": "nowhere"})
    assert find_credentials(missing, "a.example") is None
    odd = docker_config(tmp_path / "odd", {"credsStore": "../../bin/sh"})
    assert find_credentials(odd, "a.example") is None
