"""Identity tokens (an OAuth2 refresh token a credential helper answers as
``{"Username": "<token>", "Secret": TOKEN}``, or an ``auths`` entry's
``identitytoken``) against the real registry with token auth: traded at the realm with
the refresh-token grant (a form POST), or, where the token service refuses the POST,
with a GET carrying the token as basic auth; never sent to the registry itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci.oauth_service import OAuthLog, oauth_service
from oci.test_credential_helpers import bin_dir, docker_config, helper
from oci.test_mirrors import sha, transfer
from support.registry import _stop, start_registry
from webmodels.digest import Digest
from webmodels.oci.client import RegistryClient
from webmodels.oci.credentials import find_credentials
from webmodels.oci.reference import Reference

__all__ = ["bin_dir"]
REFRESH = "refresh-7f3a-identity-token"


@pytest.fixture(params=[False, True], ids=["post-grant", "post-refused"])
def oauth_registry(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, OAuthLog, bool]]:
    folder = tmp_path / "oauth-registry"
    folder.mkdir()
    with oauth_service(folder, refresh_token=REFRESH, refuse_post=request.param) as (service, log):
        started = start_registry(folder, token=service)
        yield started.registry.host, log, request.param
        _stop(started)


def test_an_identity_token_from_a_helper_gets_access_tokens_for_push_and_pull(
    oauth_registry: tuple[str, OAuthLog, bool],
    bin_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, log, post_refused = oauth_registry
    helper(bin_dir, "oauth", {host: ("<token>", REFRESH)})
    config = docker_config(tmp_path / "docker", {"credsStore": "oauth"})
    monkeypatch.setenv("DOCKER_CONFIG", str(config.parent))
    data = os.urandom(20_000)
    credentials = find_credentials(config, host)
    client = RegistryClient(Reference(host, "models"), credentials=credentials)
    try:
        client.upload_blob(Digest(sha(data)), len(data), data)  # push: the client's auth
    finally:
        client.close()
    mirror = f"oci://{host}/models"  # pull: a job's transfer, auth from config.json
    assert transfer(tmp_path, ["http://127.0.0.1:9/gone.bin"], data, mirror) == data
    posts = [fields for method, fields, _ in log.requests if method == "POST"]
    assert posts and all(p["grant_type"] == "refresh_token" for p in posts)
    assert all(p["refresh_token"] == REFRESH and p["client_id"] for p in posts)
    assert any("push" in p.get("scope", "") for p in posts)
    gets = [header for method, _, header in log.requests if method == "GET"]
    if post_refused:  # each refused POST is followed by a GET with the token as basic auth
        assert len(gets) == len(posts) and all(h and h.startswith("Basic ") for h in gets)
    else:
        assert gets == []


def test_a_docker_login_identitytoken_entry_is_an_identity_token(tmp_path: Path) -> None:
    config = docker_config(
        tmp_path / "docker",
        {"auths": {"r.example": {"auth": "", "identitytoken": REFRESH}}},
    )
    found = find_credentials(config, "r.example")
    assert found is not None and found.identity_token == REFRESH and found.password == ""
