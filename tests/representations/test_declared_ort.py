"""A form a trusted catalog declares in ONNX Runtime's own format (``format: "ort"``):
once a page holds it, a session over it loads the flatbuffer with the ORT option and
runs like its source, whether the page names the form's hash or asks its model in
that representation (then the catalog's file, never a derivation, downloaded by the
session itself when the site does not hold it yet). A real host, catalog, HTTP server
and runtime worker."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from representations.test_catalog_forms import NAME, declared, page, sha
from representations.test_derive import dense_model
from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, webmodels_env
from support.httpserver import ModelServer
from support.runtime_models import wire
from webmodels.cli.main import main
from webmodels.representations.convert import to_ort

ORT = {"format": "ort"}
NO_GESTURE_LIMIT = 1000  # bytes: the smallest the setting takes


class World:
    def __init__(self, tmp: Path, server: ModelServer) -> None:
        self.source = dense_model(tmp / "dense.onnx").read_bytes()
        self.ort = to_ort(self.source)  # the publisher's, made by ONNX Runtime
        assert self.ort[4:8] == b"ORTM"
        self.server = server
        form = declared(self.ort, server.add("/dense-ort", self.ort), format="ort")
        src = entry(self.source, **NAME, urls=(server.add("/dense", self.source),))
        signer = CatalogSigner("acme")
        home = tmp / "home"
        home.mkdir()
        document = signer.write(tmp / "catalog.json", 1, [src | {"representations": [form]}])
        with pytest.MonkeyPatch.context() as env:  # the command runs in this process
            for key, value in webmodels_env(home).items():
                env.setenv(key, value)
            assert main(["catalog", "add", str(document), "--key", signer.public]) == 0
        # A page without a gesture may download at most this much (the ORT file is more).
        config = tmp / "config.toml"
        config.write_text(f"download_without_activation_bytes = {NO_GESTURE_LIMIT}\n")
        self.host = HostProcess(home, WEBMODELS_CONFIG=str(config))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ModelServer() as server:
        made = World(tmp_path_factory.mktemp("ort"), server)
        yield made
        made.host.kill()


def load(world: World, site: str, representation: Any = None) -> Any:
    params: dict[str, Any] = {"query": NAME}
    if representation is not None:
        params["representation"] = representation
    return world.host.result("models.load", params, context=page(site))["model"]


def run(world: World, site: str, params: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    created = world.host.call("sessions.create", params, context=page(site))
    assert created["ok"], created
    x = np.random.default_rng(5).standard_normal((3, 8)).astype(np.float32)
    ran = world.host.result(
        "sessions.run",
        {"session_id": created["result"]["session_id"], "feeds": {"x": wire("float32", x)}},
        context=page(site),
    )
    y = np.frombuffer(base64.b64decode(ran["outputs"]["y"]["data"]), dtype="<f4")
    return created["result"], y


def test_a_session_over_a_declared_ort_form_loads_it_as_ort(world: World) -> None:
    got = load(world, "a", ORT)
    assert got["sha256"] == sha(world.ort) and got["derived_from"] == sha(world.source)
    assert got["representation"]["format"] == "ort"
    _, from_form = run(world, "a", {"sha256": sha(world.ort)})  # by the form's own hash
    source = load(world, "a")  # the page holds its model too now
    assert source["sha256"] == sha(world.source)
    _, from_source = run(world, "a", {"sha256": sha(world.source)})
    np.testing.assert_allclose(from_form, from_source, rtol=1e-5, atol=1e-5)
    # Asked as a representation of its model: the catalog's file, not a derivation.
    created, asked = run(world, "a", {"sha256": sha(world.source), "representation": ORT})
    assert created["derived_from"] == sha(world.source)
    assert created["representation"] == {
        "dtype": "fp32",
        "format": "ort",
        "opset": None,
        "source": "catalog",
    }
    np.testing.assert_allclose(asked, from_source, rtol=1e-5, atol=1e-5)
    assert "derived {" not in world.host.logged()
    assert world.server.transfers("/dense-ort") == 1


def test_a_session_downloads_the_declared_form_a_site_does_not_hold(world: World) -> None:
    """`sessions.create` in a declared representation the site does not hold yet: the
    host downloads the catalog's file (the site's own transfer, verified) and runs it,
    instead of refusing or deriving a form of its own."""
    before = world.server.transfers("/dense-ort")
    params = {"sha256": sha(world.source), "representation": ORT}
    # A site that cannot see the model gets no form of it, and nothing is fetched.
    reply = world.host.call("sessions.create", params, context=page("b"))
    assert not reply["ok"] and reply["error"]["code"] == "not_found", reply
    assert world.server.transfers("/dense-ort") == before
    load(world, "b")  # holds the model now, not its ORT form
    # The download is the page's, under its rules: past the limit without a gesture,
    # refused before any transfer.
    assert len(world.ort) > NO_GESTURE_LIMIT
    no_gesture = page("b") | {"user_activation": False}
    reply = world.host.call("sessions.create", params, context=no_gesture)
    assert not reply["ok"] and reply["error"]["code"] == "user_activation_required", reply
    assert world.server.transfers("/dense-ort") == before
    created, asked = run(world, "b", params)
    assert created["representation"]["source"] == "catalog"
    assert created["derived_from"] == sha(world.source)
    assert world.server.transfers("/dense-ort") == before + 1
    assert "derived {" not in world.host.logged()
    _, from_source = run(world, "b", {"sha256": sha(world.source)})
    np.testing.assert_allclose(asked, from_source, rtol=1e-5, atol=1e-5)
    # Now the site holds it: the next session neither downloads nor derives.
    run(world, "b", params)
    assert world.server.transfers("/dense-ort") == before + 1
    assert load(world, "b", ORT)["sha256"] == sha(world.ort)  # its own now, as if loaded
