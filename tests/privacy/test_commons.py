"""The signed commons list: what is refused, what the host keeps, and that a common
stored model reaches a site that never obtained it without touching the network."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from privacy.signing import Signer, entry, trusting_config
from support.contexts import page_context
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model
from webmodels.commons.gate import shipped_document, trusted_keys
from webmodels.commons.lists import check_succession, verify_list
from webmodels.errors import HostError

B = "https://b.example"
PAGE_B = page_context(B)
MAGIKA = "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c"


def integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def altered(document: bytes) -> bytes:
    """The same envelope and signature over a payload with one entry changed."""
    envelope = json.loads(document)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["models"][0]["size"] += 1
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(envelope).encode()


def bad_signature(document: bytes) -> bytes:
    envelope = json.loads(document)
    signature = bytearray(base64.b64decode(envelope["signature"]))
    signature[0] ^= 1
    envelope["signature"] = base64.b64encode(bytes(signature)).decode()
    return json.dumps(envelope).encode()


def refused(document: bytes, keys: Any) -> str:
    with pytest.raises(HostError) as caught:
        verify_list(document, keys, now=datetime.now(UTC))
    return caught.value.message


def test_good_list_verifies() -> None:
    signer = Signer()
    listed = verify_list(
        signer.sign(3, [entry(b"m")]), [signer.key.public_key()], now=datetime.now(UTC)
    )
    assert listed.version == 3 and [m.size for m in listed.models] == [1]


def test_bad_signature_altered_entry_expiry_and_stranger_are_refused() -> None:
    signer, stranger = Signer(), Signer()
    keys = [signer.key.public_key()]
    good = signer.sign(1, [entry(b"model bytes")])
    assert "signature" in refused(bad_signature(good), keys)
    assert "signature" in refused(altered(good), keys)
    expired = signer.sign(1, [entry(b"m")], expires_in=timedelta(seconds=-1))
    assert "expired" in refused(expired, keys)
    assert "does not trust" in refused(stranger.sign(1, [entry(b"m")]), keys)
    assert "not a signed commons list" in refused(b'{"payload": 1}', keys)


def test_rollback_is_refused() -> None:
    signer = Signer()
    keys = [signer.key.public_key()]
    v1 = verify_list(signer.sign(1, [entry(b"a")]), keys, now=datetime.now(UTC))
    v2 = verify_list(signer.sign(2, [entry(b"a")]), keys, now=datetime.now(UTC))
    v2_other = verify_list(signer.sign(2, [entry(b"b")]), keys, now=datetime.now(UTC))
    check_succession(v2, v1)
    check_succession(v2, v2)  # the same list again is harmless
    with pytest.raises(HostError, match="older"):
        check_succession(v1, v2)
    with pytest.raises(HostError, match="other contents"):
        check_succession(v2_other, v2)


def test_shipped_list_verifies_with_the_shipped_key() -> None:
    listed = verify_list(shipped_document(), trusted_keys(None), now=datetime.now(UTC))
    sizes = {m.digest.hex: m.size for m in listed.models}
    assert sizes[MAGIKA] == 3_163_737
    assert len(sizes) == 5  # the real models of docs/models.md


def test_refused_lists_leave_the_last_good_one_in_force(home: Path, tmp_path: Path) -> None:
    signer = Signer()
    env = trusting_config(home, signer)
    good = signer.write(tmp_path / "v2.json", 2, [entry(b"a")])
    run_cli(home, "commons", "update", str(good), **env)
    candidates = {
        "older": signer.sign(1, [entry(b"a")]),
        "same version, other contents": signer.sign(2, [entry(b"b")]),
        "expired": signer.sign(3, [entry(b"a")], expires_in=timedelta(seconds=-1)),
        "bad signature": bad_signature(signer.sign(3, [entry(b"a")])),
        "altered entry": altered(signer.sign(3, [entry(b"a")])),
        "untrusted key": Signer().sign(3, [entry(b"a")]),
    }
    for why, document in candidates.items():
        path = tmp_path / "candidate.json"
        path.write_bytes(document)
        result = run_cli(home, "commons", "update", str(path), check=False, **env)
        assert result.returncode == 1, why
        assert "commons list refused" in result.stderr, why
    (shown,) = json.loads(run_cli(home, "--json", "commons", "show", **env).stdout)["lists"]
    assert shown["version"] == 2 and shown["in_force"]
    assert shown["models"] == [entry(b"a")]


def test_common_stored_model_is_visible_without_a_transfer(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    common = tiny_model(tmp_path / "common.onnx", seed=1).read_bytes()
    private = tiny_model(tmp_path / "private.onnx", seed=2).read_bytes()
    signer = Signer()
    env = trusting_config(home, signer)
    run_cli(home, "import", str(tmp_path / "common.onnx"), str(tmp_path / "private.onnx"), **env)
    listed = signer.write(tmp_path / "list.json", 1, [entry(common)])
    run_cli(home, "commons", "update", str(listed), **env)
    common_url = model_server.add("/common.onnx", common)
    private_url = model_server.add("/private.onnx", private)
    digest = entry(common)["sha256"]
    host = HostProcess(home, **env)
    try:
        query = {"url": common_url, "integrity": integrity(common)}
        assert host.result("models.availability", {"query": query}, context=PAGE_B) == {
            "availability": "available"
        }
        loaded = host.result("models.load", {"query": query}, context=PAGE_B)
        assert loaded["model"]["sha256"] == digest
        assert host.result("cos.lookup", {"sha256": digest}, context=PAGE_B)["found"] is True
        read = host.result("models.read", {"sha256": digest, "length": 16}, context=PAGE_B)
        assert base64.b64decode(read["data"]) == common[:16]
        assert model_server.requests == []  # a common model skips the network
        # A stored model that is not common stays invisible to B.
        private_query = {"url": private_url, "integrity": integrity(private)}
        assert host.result("models.availability", {"query": private_query}, context=PAGE_B) == {
            "availability": "downloadable"
        }
    finally:
        host.close()
