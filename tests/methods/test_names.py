"""Models by name and version range through a real host
(docs/design.md#names-versions-and-sources): catalogs, pre-installed folders and inline
descriptors, substitution, and privacy — a name query resolves the same for every site,
and what another site stored is never given without a transfer."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model

SIG_IN = [{"name": "x", "type": "float32", "dims": ["N", 4]}]
SIG_OUT = [{"name": "y", "type": "float32", "dims": ["N", 4]}]


def page(site: str) -> dict[str, Any]:
    origin = f"http://{site}.localhost:8000"
    return {"partition": {"top_site": origin, "origin": origin}, "user_activation": True}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity_model(path: Path, elem: int) -> bytes:
    """`y = x` on [N, 4] of element type `elem`: an "equivalent" of the tiny model."""
    x = helper.make_tensor_value_info("x", elem, ["N", 4])
    y = helper.make_tensor_value_info("y", elem, ["N", 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "eq", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path.read_bytes()


class Setup:
    """A pre-installed folder, a model server, a signed catalog the host trusts."""

    def __init__(self, home: Path, tmp: Path, server: ModelServer) -> None:
        self.home, self.tmp, self.server = home, tmp, server
        self.folder = tmp / "preinstalled"
        self.folder.mkdir()
        self.listed: list[dict[str, Any]] = []
        self.signer = CatalogSigner("acme")
        self.version = 0

    def preinstall(self, name: str, version: str, data: bytes, file: str) -> None:
        (self.folder / file).write_bytes(data)
        manifest = self.folder / "models.json"
        models = json.loads(manifest.read_text())["models"] if manifest.exists() else []
        models.append({"file": file, "sha256": sha(data), "name": name, "version": version})
        manifest.write_text(json.dumps({"version": 1, "models": models}))

    def serve(self, path: str, data: bytes) -> str:
        return self.server.add(path, data)

    def catalog(self, *entries: dict[str, Any]) -> None:
        self.version += 1
        document = self.signer.write(
            self.tmp / f"catalog-{self.version}.json", self.version, list(entries)
        )
        run_cli(self.home, "catalog", "add", str(document), "--key", self.signer.public)

    def host(self) -> HostProcess:
        return HostProcess(self.home, WEBMODELS_PREINSTALLED=str(self.folder))


@pytest.fixture
def setup(home: Path, tmp_path: Path, model_server: ModelServer) -> Setup:
    return Setup(home, tmp_path, model_server)


def load(host: HostProcess, query: dict[str, Any], context: Any, **params: Any) -> Any:
    return host.call("models.load", {"query": query, **params}, context=context)


def test_a_range_gets_the_preinstalled_version_with_no_transfer(setup: Setup) -> None:
    v14 = tiny_model(setup.tmp / "m14.onnx", seed=14).read_bytes()
    v2 = tiny_model(setup.tmp / "m2.onnx", seed=2).read_bytes()
    setup.preinstall("acme/model", "1.4.0", v14, "m14.onnx")
    setup.catalog(
        entry(v14, "acme/model", "1.4.0", urls=(setup.serve("/m14", v14),)),
        entry(v2, "acme/model", "2.0.0", urls=(setup.serve("/m2", v2),)),
    )
    host = setup.host()
    try:
        reply = load(host, {"name": "acme/model", "version": "^1"}, page("a"))
        model = reply["result"]["model"]
        assert (model["sha256"], model["version"], model["source"]) == (
            sha(v14),
            "1.4.0",
            "preinstalled",
        )
        assert model["name"] == "acme/model" and model["substituted"] is False
        assert setup.server.requests == []  # no network at all
        two = load(host, {"name": "acme/model", "version": ">=2"}, page("a"))["result"]["model"]
        assert (two["version"], two["source"]) == ("2.0.0", "downloaded")
        assert setup.server.transfers("/m2") == 1
        seen = host.result(
            "models.availability", {"query": {"name": "acme/model"}}, context=page("b")
        )
        assert seen == {"availability": "downloadable"}  # 2.0.0: b has not obtained it
    finally:
        host.kill()


def test_none_fetches_the_newest_and_compatible_takes_what_is_at_hand(setup: Setup) -> None:
    v14 = tiny_model(setup.tmp / "m14.onnx", seed=14).read_bytes()
    v15 = tiny_model(setup.tmp / "m15.onnx", seed=15).read_bytes()
    setup.preinstall("acme/model", "1.4.0", v14, "m14.onnx")
    setup.catalog(entry(v15, "acme/model", "1.5.0", urls=(setup.serve("/m15", v15),)))
    host = setup.host()
    try:
        q = {"name": "acme/model", "version": "^1.2"}
        subst = load(host, q, page("a"), substitute="compatible")["result"]["model"]
        assert (subst["version"], subst["substituted"], subst["source"]) == (
            "1.4.0",
            True,
            "preinstalled",
        )
        assert setup.server.requests == []
        assert host.result("models.availability", {"query": q}, context=page("a")) == {
            "availability": "downloadable"
        }
        newest = load(host, q, page("a"))["result"]["model"]
        assert (newest["version"], newest["substituted"], newest["sha256"]) == (
            "1.5.0",
            False,
            sha(v15),
        )
        assert setup.server.transfers("/m15") == 1
        again = load(host, q, page("a"), substitute="compatible")["result"]["model"]
        assert (again["version"], again["substituted"]) == ("1.5.0", False)  # now at hand
        listed = run_cli(setup.home, "ls", WEBMODELS_PREINSTALLED=str(setup.folder)).stdout
        assert "acme/model" in listed and "1.5.0" in listed
    finally:
        host.kill()


def test_an_equivalent_is_given_only_with_a_compatible_signature(setup: Setup) -> None:
    wanted = tiny_model(setup.tmp / "m.onnx", seed=1).read_bytes()
    fp16 = identity_model(setup.tmp / "fp16.onnx", TensorProto.FLOAT16)
    other = identity_model(setup.tmp / "other.onnx", TensorProto.FLOAT)
    setup.preinstall("acme/model-fp16", "1.0.0", fp16, "fp16.onnx")
    setup.preinstall("acme/model-opset", "1.0.0", other, "other.onnx")
    setup.catalog(
        entry(
            wanted,
            "acme/model",
            "1.0.0",
            urls=(setup.serve("/m", wanted),),
            inputs=SIG_IN,
            outputs=SIG_OUT,
            equivalents=("acme/model-fp16@1.0.0", "acme/model-opset@1.0.0"),
        ),
        # The catalog claims float32 for the fp16 file: the file itself says otherwise.
        entry(fp16, "acme/model-fp16", "1.0.0", inputs=SIG_IN, outputs=SIG_OUT),
        entry(other, "acme/model-opset", "1.0.0"),
    )
    host = setup.host()
    try:
        q = {"name": "acme/model", "version": "1"}
        given = load(host, q, page("a"), substitute="equivalent")["result"]["model"]
        assert (given["name"], given["sha256"], given["substituted"]) == (
            "acme/model-opset",
            sha(other),
            True,
        )
        assert setup.server.requests == []
        plain = load(host, q, page("b"), substitute="compatible")["result"]["model"]
        assert (plain["sha256"], plain["substituted"]) == (sha(wanted), False)
        assert setup.server.transfers("/m") == 1
    finally:
        host.kill()


def test_an_equivalent_with_a_wrong_signature_is_not_given(setup: Setup) -> None:
    wanted = tiny_model(setup.tmp / "m.onnx", seed=1).read_bytes()
    fp16 = identity_model(setup.tmp / "fp16.onnx", TensorProto.FLOAT16)
    setup.preinstall("acme/model-fp16", "1.0.0", fp16, "fp16.onnx")
    setup.catalog(
        entry(
            wanted,
            "acme/model",
            "1.0.0",
            urls=(setup.serve("/m", wanted),),
            inputs=SIG_IN,
            outputs=SIG_OUT,
            equivalents=("acme/model-fp16@1.0.0",),
        ),
        entry(fp16, "acme/model-fp16", "1.0.0", inputs=SIG_IN, outputs=SIG_OUT),
    )
    host = setup.host()
    try:
        given = load(host, {"name": "acme/model"}, page("a"), substitute="equivalent")
        assert given["result"]["model"]["sha256"] == sha(wanted)
        assert setup.server.transfers("/m") == 1
        explained = run_cli(
            setup.home,
            "resolve",
            "acme/model@1",
            "--substitute",
            "equivalent",
            WEBMODELS_PREINSTALLED=str(setup.folder),
        ).stdout
        assert "acme/model@1.0.0" in explained  # now stored: at hand for the user
    finally:
        host.kill()


def test_another_sites_download_is_not_given_by_name_without_a_transfer(setup: Setup) -> None:
    v1 = tiny_model(setup.tmp / "m1.onnx", seed=1).read_bytes()
    setup.catalog(entry(v1, "acme/model", "1.0.0", urls=(setup.serve("/m1", v1),)))
    host = setup.host()
    try:
        q = {"name": "acme/model", "version": "^1"}
        never = host.call(
            "models.availability",
            {"query": {"name": "acme/model", "version": "^1"}},
            context=page("b"),
        )
        assert load(host, q, page("a"))["ok"]
        held = host.call("models.availability", {"query": q}, context=page("b"))
        assert held["result"] == never["result"] == {"availability": "downloadable"}
        assert load(host, q, page("b"), substitute="compatible")["ok"]
        assert setup.server.transfers("/m1") == 2  # b's load was a real transfer
    finally:
        host.kill()


def test_inline_descriptor_and_errors(setup: Setup) -> None:
    data = tiny_model(setup.tmp / "m.onnx", seed=5).read_bytes()
    url = setup.serve("/inline", data)
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    host = setup.host()
    try:
        inline = {"name": "someone/thing", "version": "0.3.1", "url": url, "integrity": integrity}
        model = load(host, inline, page("a"))["result"]["model"]
        assert (model["name"], model["version"], model["sha256"]) == (
            "someone/thing",
            "0.3.1",
            sha(data),
        )
        for query, code in [
            ({"name": "nobody/knows", "version": "^1"}, "not_found"),
            ({"name": "Not A Name"}, "bad_request"),
            ({"name": "acme/model", "version": ">=>1"}, "bad_request"),
            ({**inline, "version": "^0.3"}, "bad_request"),  # inline needs its exact version
        ]:
            reply = load(host, query, page("a"))
            assert reply["error"]["code"] == code, (query, reply)
        bad = load(host, {"name": "acme/model"}, page("a"), substitute="anything")
        assert bad["error"]["code"] == "bad_request"
    finally:
        host.kill()


def test_several_catalogs_each_with_its_own_key(setup: Setup) -> None:
    mine = tiny_model(setup.tmp / "a.onnx", seed=1).read_bytes()
    theirs = tiny_model(setup.tmp / "b.onnx", seed=2).read_bytes()
    setup.catalog(entry(mine, "acme/model", "1.0.0", urls=(setup.serve("/a", mine),)))
    other = CatalogSigner("other")
    document = other.write(
        setup.tmp / "other.json",
        1,
        [entry(theirs, "other/thing", "2.0.0", urls=(setup.serve("/b", theirs),))],
    )
    run_cli(setup.home, "catalog", "add", str(document), "--key", other.public)
    host = setup.host()
    try:
        a = load(host, {"name": "acme/model"}, page("a"))["result"]["model"]
        b = load(host, {"name": "other/thing", "version": "2"}, page("a"))["result"]["model"]
        assert (a["sha256"], b["sha256"]) == (sha(mine), sha(theirs))
        run_cli(setup.home, "catalog", "rm", "other")
        gone = load(host, {"name": "other/thing"}, page("b"))
        assert gone["error"]["code"] == "not_found"
    finally:
        host.kill()


def test_catalogs_are_managed_by_trusted_callers_only(setup: Setup) -> None:
    data = tiny_model(setup.tmp / "m.onnx", seed=9).read_bytes()
    signer = CatalogSigner("web")
    document = signer.sign(2, [entry(data, "acme/model", "1.0.0")])
    url = setup.serve("/catalog.json", document)
    host = setup.host()
    try:
        denied = host.call(
            "manage.catalogs.add", {"source": url, "key": signer.public}, context=page("a")
        )
        assert denied["error"]["code"] == "access_denied"
        wrong = host.call("manage.catalogs.add", {"source": url, "key": CatalogSigner().public})
        assert (
            wrong["error"]["code"] == "bad_request"
            and "does not trust" in wrong["error"]["message"]
        )
        added = host.result("manage.catalogs.add", {"source": url, "key": signer.public})
        assert added["changed"] is True and added["catalog"]["name"] == "web"
        [listed] = host.result("manage.catalogs.list")["catalogs"]
        assert (listed["name"], listed["version"], listed["models"], listed["source"]) == (
            "web",
            2,
            1,
            url,
        )
        seen = host.result(
            "models.availability", {"query": {"name": "acme/model"}}, context=page("a")
        )
        assert seen == {"availability": "unavailable"}  # listed, but no URL to fetch from
        assert host.result("manage.catalogs.remove", {"name": "web"}) == {"removed": True}
        assert host.result("manage.catalogs.list") == {"catalogs": [], "next_cursor": None}
        gone = host.call(
            "models.availability", {"query": {"name": "acme/model"}}, context=page("a")
        )
        assert gone["error"]["code"] == "not_found"
    finally:
        host.kill()
