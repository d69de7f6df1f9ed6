"""Forms a trusted catalog declares (``representations`` in its entry): a load asking
for one gets the catalog's own file, downloaded and verified by hash, before the host
would derive one; hostile declarations are refused with the catalog."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from representations.test_derive import dense_model
from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model
from webmodels.catalogs.documents import parse_payload
from webmodels.errors import HostError

NAME = {"name": "acme/dense", "version": "1.0.0"}


def page(site: str) -> dict[str, Any]:
    origin = f"http://{site}.localhost:8000"
    return {"partition": {"top_site": origin, "origin": origin}, "user_activation": True}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def declared(data: bytes, url: str, **recipe: Any) -> dict[str, Any]:
    return {**recipe, "sha256": sha(data), "size": len(data), "urls": [url]}


class World:
    def __init__(self, tmp: Path, server: ModelServer) -> None:
        self.source = dense_model(tmp / "dense.onnx").read_bytes()
        self.fp16 = tiny_model(tmp / "fp16.onnx", seed=16).read_bytes()  # the publisher's
        self.int8 = tiny_model(tmp / "int8.onnx", seed=8).read_bytes()
        self.server = server
        forms = [
            declared(self.fp16, server.add("/dense-fp16", self.fp16), dtype="fp16"),
            # The catalog's hash is the check: other bytes at its URL are refused.
            declared(self.int8, server.add("/dense-int8", b"not the declared bytes"), dtype="int8"),
        ]
        src = entry(self.source, **NAME, urls=(server.add("/dense", self.source),))
        signer = CatalogSigner("acme")
        home = tmp / "home"
        home.mkdir()
        document = signer.write(tmp / "catalog.json", 1, [src | {"representations": forms}])
        run_cli(home, "catalog", "add", str(document), "--key", signer.public)
        self.host = HostProcess(home)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ModelServer() as server:
        made = World(tmp_path_factory.mktemp("forms"), server)
        yield made
        made.host.kill()


def load(world: World, site: str, dtype: str) -> Any:
    params = {"query": NAME, "representation": {"dtype": dtype}}
    return world.host.call("models.load", params, context=page(site))


def test_a_declared_form_is_the_catalogs_file_not_a_derivation(world: World) -> None:
    reply = load(world, "a", "fp16")
    assert reply["ok"], reply
    got = reply["result"]["model"]
    assert got["sha256"] == sha(world.fp16) and got["derived_from"] == sha(world.source)
    assert got["representation"] == {
        "dtype": "fp16",
        "format": "onnx",
        "opset": None,
        "source": "catalog",
    }
    assert (got["name"], got["version"]) == ("acme/dense", "1.0.0")
    assert world.server.transfers("/dense-fp16") == 1
    assert world.server.transfers("/dense") == 0  # the source is not needed at all
    assert "derived {" not in world.host.logged()
    # Held now: no second transfer for this site; another site downloads it itself.
    assert load(world, "a", "fp16")["result"]["model"]["sha256"] == got["sha256"]
    assert world.server.transfers("/dense-fp16") == 1
    assert load(world, "b", "fp16")["result"]["model"] == got
    assert world.server.transfers("/dense-fp16") == 2


def test_a_declared_form_whose_bytes_differ_is_refused_never_derived(world: World) -> None:
    reply = load(world, "c", "int8")
    assert not reply["ok"] and reply["error"]["code"] == "integrity_mismatch", reply
    assert world.server.transfers("/dense-int8") >= 1
    assert "derived {" not in world.host.logged()


def test_the_model_itself_is_still_the_source(world: World) -> None:
    fp32 = load(world, "d", "fp32")["result"]["model"]
    assert fp32["sha256"] == sha(world.source) and fp32["derived_from"] is None
    assert world.server.transfers("/dense") == 1


FORM = {"dtype": "fp16", "sha256": "ab" * 32, "size": 3, "urls": ["https://e.test/m"]}


@pytest.mark.parametrize(
    "forms",
    [
        "fp16",
        [FORM] * 17,
        [FORM, FORM],
        ["fp16"],
        [FORM | {"dtype": "q2"}],
        [FORM | {"format": "tflite"}],
        [FORM | {"dtype": "fp32"}],  # the model itself
        [FORM | {"opset": 3}],
        [FORM | {"opset": True}],
        [FORM | {"opset": "18"}],
        [FORM | {"size": -1}],
        [FORM | {"size": None}],
        [FORM | {"sha256": "xyz"}],
        [FORM | {"urls": ["file:///etc/passwd"]}],
        [FORM | {"urls": ["https://e.test/"] * 9}],
        [FORM | {"compiled_for": "x"}],
    ],
)
def test_hostile_declarations_refuse_the_catalog(forms: Any) -> None:
    model = entry(b"m", "acme/m", "1.0.0", representations=forms)
    payload = {"catalog": "acme", "version": 1, "expires": "2099-01-01T00:00:00Z"}
    with pytest.raises(HostError, match="catalog refused"):
        parse_payload(json.dumps(payload | {"models": [model]}).encode())


def test_declarations_round_trip() -> None:
    model = entry(b"m", "acme/m", "1.0.0", representations=[FORM | {"opset": 18}])
    payload = {"catalog": "acme", "version": 1, "expires": "2099-01-01T00:00:00Z"}
    (parsed,) = parse_payload(json.dumps(payload | {"models": [model]}).encode())[3]
    assert parsed.to_json()["representations"] == [FORM | {"format": "onnx", "opset": 18}]
