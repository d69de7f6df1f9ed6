"""Forms a trusted catalog declares, beyond a load by name: a load by hash gets them
too, and ``webmodels ls`` and the popup's ``manage.list`` list a stored one under its
model; ``webmodels derive
--format ort`` makes ONNX Runtime's own format from the command line. A real host,
catalog, HTTP server and ``python -m webmodels`` processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from representations.test_catalog_forms import World, page, sha
from representations.test_derive import dense_model
from support.host import run_cli
from support.httpserver import ModelServer
from webmodels.config import Config
from webmodels.store.store import Store


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ModelServer() as server:
        made = World(tmp_path_factory.mktemp("declared"), server)
        yield made
        made.host.kill()


def test_a_load_by_hash_gets_the_form_its_catalog_declares(world: World) -> None:
    params = {"query": {"sha256": sha(world.source)}, "representation": {"dtype": "fp16"}}
    reply = world.host.call("models.load", params, context=page("a"))
    assert reply["ok"], reply
    got = reply["result"]["model"]
    assert got["sha256"] == sha(world.fp16) and got["derived_from"] == sha(world.source)
    assert got["representation"]["source"] == "catalog"
    assert world.server.transfers("/dense-fp16") == 1
    assert world.server.transfers("/dense") == 0  # the source is neither fetched nor derived
    assert "derived {" not in world.host.logged()
    again = world.host.call("models.load", params, context=page("a"))["result"]["model"]
    assert again == got and world.server.transfers("/dense-fp16") == 1  # held now
    # A recipe the catalog does not declare is not a catalog form: no URL, not held.
    other = params | {"representation": {"dtype": "int8", "format": "ort"}}
    refused = world.host.call("models.load", other, context=page("a"))
    assert refused["error"]["code"] == "not_found", refused


def test_ls_lists_a_stored_declared_form_under_its_model(world: World) -> None:
    source = {"query": {"name": "acme/dense", "version": "1.0.0"}}
    assert world.host.call("models.load", source, context=page("b"))["ok"]
    fp16 = source | {"representation": {"dtype": "fp16"}}  # stored by a load by name
    assert world.host.call("models.load", fp16, context=page("b"))["ok"]
    listing = run_cli(world.host.home, "ls").stdout.splitlines()
    print("\n".join(listing))
    source_row = next(i for i, line in enumerate(listing) if sha(world.source)[:12] in line)
    form_row = listing[source_row + 1]
    assert sha(world.fp16)[:12] in form_row and "└" in form_row
    assert "fp16 form (catalog)" in form_row
    rows = json.loads(run_cli(world.host.home, "--json", "ls").stdout)
    form: dict[str, Any] = next(r for r in rows if r.get("sha256") == sha(world.fp16))
    assert form["derived_from"] == sha(world.source)
    assert form["representation"]["source"] == "catalog"
    # The popup's list (manage.list) says the same, so it shows the form under its model.
    managed = world.host.result("manage.list")["models"]
    card = next(m for m in managed if m["sha256"] == sha(world.fp16))
    assert card["derived_from"] == sha(world.source)
    assert card["representation"] == {
        "dtype": "fp16",
        "format": "onnx",
        "opset": None,
        "source": "catalog",
    }


def test_derive_format_ort_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = dense_model(tmp_path / "dense.onnx")
    with Store.open(Config(home=home, log_dir=home / "logs")) as store:
        store.import_file(model, name="tests/dense", version="1.0.0")
    derived = run_cli(home, "--json", "derive", "tests/dense", "--format", "ort")
    made = json.loads(derived.stdout)
    assert made["recipe"]["format"] == "ort" and made["recipe"]["dtype"] == "fp32"
    assert made["tools"]["deterministic"] == "no"
    with Store.open(Config(home=home, log_dir=home / "logs")) as store:
        data = store.locate(next(r for r in store.list_models() if r.format == "ort").digest)
        assert data.path.read_bytes()[4:8] == b"ORTM"  # ORT's flatbuffer, not ONNX
    listing = run_cli(home, "ls").stdout
    assert "fp32 ort form" in listing
