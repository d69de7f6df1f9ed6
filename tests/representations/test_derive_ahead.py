"""``derive`` on `models.load`: forms a page will ask for later, derived in the
background right after the model is downloaded (or at once when it is held), in the
page's own scope; the load's answer does not wait for them, and the later load in that
representation finds the form made. A real host, HTTP server and runtime worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from methods.test_sessions import configure
from privacy.test_timing import PAGE_A, integrity
from representations.test_catalog_forms import sha
from representations.test_derive import dense_model
from support.host import HostProcess
from support.httpserver import ModelServer

INT8 = {"for": "wasm", "dtype": "int8"}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    home = tmp_path_factory.mktemp("home")
    configure(home, background_compile=False)
    proc = HostProcess(home)
    yield proc
    proc.kill()


def derivations(host: HostProcess) -> int:
    return host.logged().count("derived {")


def wait_for_derivations(host: HostProcess, count: int) -> None:
    deadline = time.monotonic() + 60  # generous: a loaded machine; done in well under 1 s
    while derivations(host) < count:
        assert time.monotonic() < deadline, "the form asked ahead was never derived"
        time.sleep(0.05)


def test_a_form_asked_ahead_is_derived_after_the_download(
    host: HostProcess, model_server: ModelServer, tmp_path: Path
) -> None:
    data = dense_model(tmp_path / "dense.onnx").read_bytes()
    query = {"url": model_server.add("/dense", data), "integrity": integrity(data)}
    params: dict[str, Any] = {"query": query, "derive": [INT8]}
    got = host.result("models.load", params, context=PAGE_A)["model"]
    assert got["sha256"] == sha(data) and got.get("derived_from") is None  # the model itself
    wait_for_derivations(host, 1)
    asked = {"query": {"sha256": sha(data)}, "representation": INT8}
    form = host.result("models.load", asked, context=PAGE_A)["model"]
    assert form["derived_from"] == sha(data)
    assert form["representation"]["dtype"] == "int8"
    assert derivations(host) == 1  # found made, not derived again
    # Held now: asked ahead at once, for what the model is not yet in.
    again = {"query": {"sha256": sha(data)}, "derive": [{"dtype": "fp16"}, INT8]}
    host.result("models.load", again, context=PAGE_A)
    wait_for_derivations(host, 2)
    assert model_server.transfers("/dense") == 1


def test_a_bad_derive_is_refused_before_any_transfer(
    host: HostProcess, model_server: ModelServer
) -> None:
    data = b"never fetched"
    query = {"url": model_server.add("/never", data), "integrity": integrity(data)}
    for derive in ("int8", [{"dtype": "q2"}], [INT8] * 5):
        reply = host.call("models.load", {"query": query, "derive": derive}, context=PAGE_A)
        assert not reply["ok"] and reply["error"]["code"] == "bad_request", reply
    assert model_server.transfers("/never") == 0
