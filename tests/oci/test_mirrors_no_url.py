"""A catalog entry with a sha256 but no URL at all is offered to the configured mirrors
by its digest: ``webmodels pull NAME`` and a page's load by name fetch it from a mirror.
When no mirror has it, a page's answer is the one without mirrors (`not_found`, the same
reply): a page cannot tell from it whether the user has mirrors.
Real subprocess hosts, the CLI in this process, a loopback HTTP server as an https mirror."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from oci.test_mirrors import PAGE, sha, stored, with_mirrors
from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, webmodels_env
from support.httpserver import ModelServer
from webmodels.catalogs import keeper
from webmodels.cli.main import main
from webmodels.config import load_config
from webmodels.store import Store


def _catalog(home: Path, *files: tuple[bytes, str]) -> None:
    """Installed in this process (as `webmodels catalog add` does): a CLI call less."""
    signer = CatalogSigner()
    document = signer.sign(1, [entry(data, name, "1.0.0") for data, name in files])  # no urls
    with Store.open(load_config(env=webmodels_env(home))) as store:
        keeper.add(store.index, document, key=signer.public, source=None)


NAMED = {"name": "acme/other", "version": "^1"}


def _load(host: HostProcess, name: str) -> dict[str, Any]:
    reply: dict[str, Any] = host.call(
        "models.load", {"query": {"name": name, "version": "^1"}}, context=PAGE
    )
    reply.pop("id", None)
    return reply


def test_an_entry_without_urls_comes_from_a_mirror_and_a_miss_reads_as_without_mirrors(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page, cli, absent = os.urandom(50_000), os.urandom(50_000), os.urandom(1000)
    _catalog(home, (page, "acme/model"), (cli, "acme/cli"), (absent, "acme/other"))
    plain = HostProcess(home)
    try:
        without = _load(plain, "acme/other")
        unknown = plain.result("models.availability", {"query": NAMED}, context=PAGE)
    finally:
        plain.close()
    with ModelServer() as mirror:
        mirror.add(f"/by-hash/{sha(page)}", page)
        mirror.add(f"/by-hash/{sha(cli)}", cli)
        mirrors = with_mirrors(home, mirror.url("/by-hash/"))
        host = HostProcess(home, **mirrors)
        try:
            loaded = _load(host, "acme/model")
            host.backlog.clear()  # the first load's progress events
            missed = _load(host, "acme/other")
            events = list(host.backlog)
            offered = host.result("models.availability", {"query": NAMED}, context=PAGE)
        finally:
            host.close()
        for variable, value in webmodels_env(home, **mirrors).items():
            monkeypatch.setenv(variable, value)
        assert main(["--json", "pull", "acme/cli@^1"]) == 0  # in this process: faster
        pulled = json.loads(capsys.readouterr().out)
        asked = [r.path for r in mirror.requests]
    assert loaded["ok"], loaded
    assert loaded["result"]["model"]["sha256"] == sha(page)
    assert pulled["model"]["sha256"] == sha(cli)
    assert stored(home, sha(page)) == page and stored(home, sha(cli)) == cli
    assert asked == [f"/by-hash/{h}" for h in (sha(page), sha(absent), sha(cli))]
    assert without["error"]["code"] == "not_found"
    # The page cannot tell that the user has mirrors: same reply, no events, and the
    # entry is "unavailable" either way.
    assert missed == without and events == []
    assert offered == unknown == {"availability": "unavailable"}
