"""Through a real host: a page's `models.load` of URLs it chose fetches only what the
page could read with `fetch()` (fetch/access.py); URLs from the user's catalogs are
not limited. The host runs with no local-network allowance
(WEBMODELS_LOCAL_NETWORK_ORIGINS=""), as a user's host does; every server listens on
127.0.0.1 only."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, run_cli
from support.httpserver import Fault, ModelServer
from support.models import tiny_model
from webmodels.errors import ERROR_CODES

# What a page sees: the dispatcher gives pages the fixed meaning of the code (errors.py).
PAGE_DOWNLOAD_FAILED = ERROR_CODES["download_failed"]


def page(origin: str) -> dict[str, Any]:
    return {"partition": {"top_site": origin, "origin": origin}, "user_activation": True}


def inline(url: str, data: bytes, **extra: Any) -> dict[str, Any]:
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"url": url, "integrity": integrity, **extra}


class Pages:
    """One host on one store; `load` returns the reply and the progress events."""

    def __init__(self, home: Path, **env: str) -> None:
        self.host = HostProcess(home, WEBMODELS_LOCAL_NETWORK_ORIGINS="", **env)
        self._id = 0

    def load(self, query: dict[str, Any], context: Any) -> tuple[Any, list[Any]]:
        self._id += 1
        self.host.send({"id": self._id, "method": "models.load", "params": {"query": query},
                        "context": context})  # fmt: skip
        events = []
        while True:
            message = self.host.recv(timeout=60)
            if message.get("id") != self._id:
                continue
            if "event" not in message:
                return message, events
            events.append(message)


@pytest.fixture
def pages(home: Path) -> Iterator[Pages]:
    made = Pages(home)
    yield made
    made.host.kill()


def assert_refused(reply: Any) -> None:
    assert reply["ok"] is False
    assert reply["error"] == {"code": "download_failed", "message": PAGE_DOWNLOAD_FAILED,
                              "details": {}}  # fmt: skip


def test_a_public_page_cannot_make_the_host_fetch_from_loopback(
    pages: Pages, model_server: ModelServer, tmp_path: Path
) -> None:
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    url = model_server.add("admin/delete", data)

    reply, events = pages.load(inline(url, data), page("https://shop.example"))
    named, _ = pages.load(
        inline(url, data, name="acme/model", version="1.0.0"), page("https://shop.example")
    )

    assert_refused(reply)
    assert_refused(named)  # an inline descriptor's URL is the page's choice too
    assert events == []
    assert model_server.accepted == 0  # not even a connection


def test_a_loopback_page_loads_from_a_loopback_server_that_allows_it(
    pages: Pages, model_server: ModelServer, tmp_path: Path
) -> None:
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    url = model_server.add("model.onnx", data)
    origin = f"http://x.localhost:{model_server.port}"

    reply, events = pages.load(inline(url, data), page(origin))

    assert reply["ok"], reply
    assert (events[-1]["loaded"], events[-1]["total"]) == (len(data), len(data))
    assert [r.origin for r in model_server.requests] == [origin]


def test_a_page_cannot_read_a_response_without_cors(
    pages: Pages, model_server: ModelServer, tmp_path: Path
) -> None:
    model_server.cors = None
    data = tiny_model(tmp_path / "m.onnx", weight_bytes=4 << 20).read_bytes()
    url = model_server.add("model.onnx", data)

    reply, events = pages.load(inline(url, data), page(f"http://x.localhost:{model_server.port}"))

    assert_refused(reply)
    assert events == []  # no progress, so no Content-Length either


def test_netrc_credentials_never_go_to_a_url_a_page_chose(
    home: Path, model_server: ModelServer, tmp_path: Path
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / ".netrc").write_text("machine 127.0.0.1 login alice password s3cret\n")
    (user / ".netrc").chmod(0o600)
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    url = model_server.add("model.onnx", data)
    pages = Pages(home, HOME=str(user), NETRC=str(user / ".netrc"))
    try:
        reply, _ = pages.load(inline(url, data), page(f"http://x.localhost:{model_server.port}"))
    finally:
        pages.host.kill()

    assert reply["ok"], reply
    assert [r.authorization for r in model_server.requests] == [None]


def test_wrong_bytes_tell_the_page_no_hash(
    pages: Pages, model_server: ModelServer, tmp_path: Path
) -> None:
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("wrong_bytes", after_bytes=100, times=None))
    served = bytes(data[:100]) + bytes(b ^ 0xFF for b in data[100:])

    reply, _ = pages.load(inline(url, data), page(f"http://x.localhost:{model_server.port}"))

    assert reply["error"]["code"] == "integrity_mismatch"
    text = str(reply["error"])
    assert hashlib.sha256(served).hexdigest() not in text
    assert hashlib.sha256(data).hexdigest() not in text
    assert reply["error"]["details"] == {}


def test_urls_with_credentials_are_refused(pages: Pages, model_server: ModelServer) -> None:
    url = model_server.url("model.onnx").replace("://", "://alice:s3cret@")

    reply, _ = pages.load(inline(url, b"x"), page("http://x.localhost"))

    assert reply["error"]["code"] == "bad_request"
    assert model_server.accepted == 0


def test_catalog_urls_are_not_limited(
    home: Path, pages: Pages, model_server: ModelServer, tmp_path: Path
) -> None:
    """The user's catalog chose this loopback URL, not the page: a public page may
    load the model by name (the user's own mirrors may well be on the LAN)."""
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    model_server.cors = None
    url = model_server.add("m.onnx", data)
    signer = CatalogSigner("acme")
    document = signer.write(
        tmp_path / "catalog.json", 1, [entry(data, "acme/m", "1.0.0", urls=(url,))]
    )
    run_cli(home, "catalog", "add", str(document), "--key", signer.public)

    reply, _ = pages.load({"name": "acme/m", "version": "^1"}, page("https://shop.example"))

    assert reply["ok"], reply
    assert [r.origin for r in model_server.requests] == [None]
