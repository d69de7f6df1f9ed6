"""OCI references, the auth challenge and config.json credentials (pure, no sockets)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from webmodels.errors import HostError
from webmodels.oci.auth import parse_challenge
from webmodels.oci.credentials import find_credentials
from webmodels.oci.reference import parse_reference

HEX = "ab" * 32


def test_tags_digests_and_ports_are_told_apart() -> None:
    ref = parse_reference("oci://127.0.0.1:5000/org/models/tiny:v1.2")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "org/models/tiny",
        "v1.2",
        None,
    )
    assert ref.base_url == "http://127.0.0.1:5000/v2/org/models/tiny"
    pinned = parse_reference(f"oci://ghcr.io/org/tiny@sha256:{HEX}")
    assert pinned.tag is None and pinned.manifest_ref == f"sha256:{HEX}"
    assert pinned.base_url.startswith("https://ghcr.io/")  # plain HTTP only on the loopback
    assert parse_reference("oci://localhost/tiny").manifest_ref == "latest"
    assert parse_reference("oci://[::1]:5000/tiny").base_url == "http://[::1]:5000/v2/tiny"


@pytest.mark.parametrize(
    "text",
    [
        "https://x.example/a:b",
        "oci://registry-only",
        "oci://r.example/UPPER:tag",
        "oci://r.example/a@md5:00",
        f"oci://r.example/a:bad/tag@sha256:{HEX}",
    ],
)
def test_bad_references_are_refused_with_the_form_to_use(text: str) -> None:
    with pytest.raises(HostError) as caught:
        parse_reference(text)
    assert caught.value.code == "bad_request" and "oci://REGISTRY/REPOSITORY:TAG" in str(
        caught.value
    )


def test_a_bearer_challenge_gives_realm_service_and_scope() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:org/tiny:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:org/tiny:pull,push",
    }
    assert parse_challenge('Basic realm="x"').scheme == "basic"


def test_credentials_come_from_the_auths_of_config_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    auth = base64.b64encode(b"alice:pa:ss").decode()
    path.write_text(json.dumps({"auths": {"https://r.example:5000/v1/": {"auth": auth}}}))
    found = find_credentials(path, "r.example:5000")
    assert found is not None and (found.user, found.password) == ("alice", "pa:ss")
    assert find_credentials(path, "other.example") is None
    assert find_credentials(tmp_path / "missing.json", "r.example:5000") is None
