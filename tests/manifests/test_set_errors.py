"""A page's load of several files that fails for one of them says which: the reply
carries the usual code with its fixed text (what every page gets) and
``details.file``, the key the page itself gave that file in ``{files}`` (its own
input, so nothing else leaks). Through a real host process and real loopback HTTP
servers: a bad hash, a URL the page could not read (no CORS), a file past the site's
quota once its size is known, a file the page does not hold, a URL refused as input."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.catalogs import CatalogSigner
from support.host import HostProcess
from support.httpserver import ModelServer
from webmodels.errors import ERROR_CODES

SITE = "http://a.localhost:8000"
PAGE = {"partition": {"top_site": SITE, "origin": SITE}, "user_activation": True, "trusted": False}
QUOTA = 3_000_000


@pytest.fixture
def host(home: Path) -> Iterator[HostProcess]:
    (home / "no-config.toml").write_text(f"quota_per_partition_bytes = {QUOTA}\n")
    proc = HostProcess(home)
    yield proc
    proc.kill()


def served(server: ModelServer, path: str, data: bytes, *, sized: bool = True) -> dict[str, Any]:
    ref = {"sha256": hashlib.sha256(data).hexdigest(), "url": server.add(f"/{path}", data)}
    return {**ref, "size": len(data)} if sized else ref


def failed_load(host: HostProcess, files: dict[str, Any]) -> dict[str, Any]:
    reply = host.call("models.load", {"query": {"files": files}}, context=PAGE)
    assert not reply["ok"], reply
    error: dict[str, Any] = reply["error"]
    assert error["message"] == ERROR_CODES[error["code"]]  # the fixed text, nothing more
    return error


def test_a_failed_file_of_a_pages_set_is_named_by_the_pages_own_key(
    host: HostProcess, model_server: ModelServer
) -> None:
    good = served(model_server, "good.bin", os.urandom(100_000))
    bad_hash = {**served(model_server, "bad.bin", os.urandom(100_000)), "sha256": "ab" * 32}
    error = failed_load(host, {"shards/good.bin": good, "shards/bad-hash.bin": bad_hash})
    assert error == {
        **error,
        "code": "integrity_mismatch",
        "details": {"file": "shards/bad-hash.bin"},
    }

    with ModelServer(cors=None) as closed:  # a server whose responses a page cannot read
        refused = served(closed, "refused.bin", os.urandom(50_000))
        error = failed_load(host, {"a.bin": good, "no-cors.bin": refused})
    assert (error["code"], error["details"]) == ("download_failed", {"file": "no-cors.bin"})

    # No size declared: the whole-model check passes; the file's own job refuses it
    # once the server announces more than the site's quota.
    huge = served(model_server, "huge.bin", os.urandom(QUOTA + 500_000), sized=False)
    error = failed_load(host, {"a.bin": good, "params_shard_9.bin": huge})
    assert error["code"] == "quota_exceeded" and error["details"]["file"] == "params_shard_9.bin"
    assert set(error["details"]) <= {"file", "left", "needed"}

    # The site holds `good` for certain (the failed sets above may or may not have
    # kept it, as their downloads raced), so the one file it lacks is data.bin.
    host.result("models.load", {"query": {"files": {"good.bin": good}}}, context=PAGE)
    unheld = {"sha256": hashlib.sha256(b"never stored").hexdigest()}
    error = failed_load(host, {"model.onnx": {"sha256": good["sha256"]}, "data.bin": unheld})
    assert (error["code"], error["details"]) == ("not_found", {"file": "data.bin"})

    not_http = {**good, "url": "ftp://127.0.0.1/x.bin"}
    error = failed_load(host, {"a.bin": good, "b.bin": not_http})
    assert error["code"] == "bad_request" and error["details"]["file"] == "b.bin"

    # A catalog's set: its paths are the catalog's, not the page's, so a page is told
    # only the code; the user's callers (no page context) get the file.
    listed = [
        {"path": "w/a.bin", "url": good["url"], "sha256": good["sha256"], "size": good["size"]},
        {"path": "w/b.bin", **{k: bad_hash[k] for k in ("url", "sha256", "size")}},
    ]
    signer = CatalogSigner("pub")
    entry = {
        "name": "pub/shards",
        "version": "1.0.0",
        "files": [f | {"role": "weights"} for f in listed],
    }
    url = model_server.add(
        "/catalog.json", signer.sign(1, [entry]), content_type="application/json"
    )
    host.result("manage.catalogs.add", {"source": url, "key": signer.public})
    query = {"query": {"name": "pub/shards", "version": "^1"}}
    for_page = host.call("models.load", query, context=PAGE)["error"]
    for_user = host.call("models.load", query)["error"]
    assert (for_page["code"], for_page["details"]) == ("integrity_mismatch", {})
    assert for_user["code"] == "integrity_mismatch" and for_user["details"]["file"] == "w/b.bin"
