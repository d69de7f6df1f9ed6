"""`webmodels catalog add|ls|show|rm`, `pull NAME@RANGE`, `resolve` and `update`,
as a user runs them (real processes, a real HTTP server for models and catalogs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(run_cli(home, "--json", *args).stdout)


def test_add_ls_show_rm(home: Path, tmp_path: Path, model_server: ModelServer) -> None:
    signer = CatalogSigner("acme")
    data = tiny_model(tmp_path / "m.onnx").read_bytes()
    document = signer.sign(1, [entry(data, "acme/model", "1.0.0", task="demo")])
    url = model_server.add("/catalog.json", document, content_type="application/json")
    added = run_cli(home, "catalog", "add", url, "--key", signer.public).stdout
    assert "added: acme version 1, 1 models" in added
    key_file = tmp_path / "acme.pub"
    key_file.write_text(signer.public + "\n")
    again = run_cli(home, "catalog", "add", url, "--key", str(key_file)).stdout
    assert "already installed" in again
    [listed] = cli_json(home, "catalog", "ls")
    assert (listed["name"], listed["version"], listed["models"], listed["source"]) == (
        "acme",
        1,
        1,
        url,
    )
    shown = run_cli(home, "catalog", "show", "acme").stdout
    assert "acme/model" in shown and "1.0.0" in shown and "demo" in shown
    # Refusals: another key for the name, a tampered file, garbage.
    other = CatalogSigner("acme")
    refused = run_cli(
        home,
        "catalog",
        "add",
        str(other.write(tmp_path / "o.json", 5, [])),
        "--key",
        other.public,
        check=False,
    )
    assert refused.returncode != 0 and "configured with another key" in refused.stderr
    bad_key = run_cli(home, "catalog", "add", url, "--key", other.public, check=False)
    assert bad_key.returncode != 0 and "does not trust" in bad_key.stderr
    assert "removed catalog acme" in run_cli(home, "catalog", "rm", "acme").stdout
    assert cli_json(home, "catalog", "ls") == []
    assert run_cli(home, "catalog", "rm", "acme", check=False).returncode != 0


def test_pull_by_name_resolve_and_ls(home: Path, tmp_path: Path, model_server: ModelServer) -> None:
    signer = CatalogSigner("acme")
    v1 = tiny_model(tmp_path / "1.onnx", seed=1).read_bytes()
    v2 = tiny_model(tmp_path / "2.onnx", seed=2).read_bytes()
    catalog = signer.write(
        tmp_path / "c.json",
        1,
        [
            entry(v1, "acme/model", "1.2.0", urls=(model_server.add("/v1", v1),)),
            entry(v2, "acme/model", "2.0.0", urls=(model_server.add("/v2", v2),)),
        ],
    )
    run_cli(home, "catalog", "add", str(catalog), "--key", signer.public)
    explained = cli_json(home, "resolve", "acme/model@^1")
    assert (explained["version"], explained["at_hand"]) == ("1.2.0", False)
    assert any("to download" in step for step in explained["steps"])
    pulled = run_cli(home, "pull", "acme/model@^1").stdout
    assert "downloaded" in pulled and model_server.transfers("/v1") == 1
    again = run_cli(home, "pull", "acme/model@^1").stdout
    assert "already stored (acme/model@1.2.0)" in again and model_server.transfers("/v1") == 1
    assert cli_json(home, "resolve", "acme/model@^1")["at_hand"] is True
    listed = run_cli(home, "ls").stdout
    assert "acme/model" in listed and "1.2.0" in listed
    missing = run_cli(home, "pull", "acme/model@^3", check=False)
    assert missing.returncode != 0 and "no catalog" in missing.stderr
    bad = run_cli(home, "pull", "acme/model@>=>1", check=False)
    assert bad.returncode != 0 and "PUBLISHER/MODEL@RANGE" in bad.stderr


def test_update_fetches_newer_versions_within_each_sites_range(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    signer = CatalogSigner("acme")
    v10, v11, v20 = (tiny_model(tmp_path / f"{n}.onnx", seed=n).read_bytes() for n in (10, 11, 20))
    e10 = entry(v10, "acme/model", "1.0.0", urls=(model_server.add("/v10", v10),))
    e11 = entry(v11, "acme/model", "1.1.0", urls=(model_server.add("/v11", v11),))
    e20 = entry(v20, "acme/model", "2.0.0", urls=(model_server.add("/v20", v20),))
    source = signer.write(tmp_path / "catalog.json", 1, [e10])
    run_cli(home, "catalog", "add", str(source), "--key", signer.public)
    site = {
        "partition": {"top_site": "https://a.example", "origin": "https://a.example"},
        "user_activation": True,
    }
    host = HostProcess(home)
    try:
        reply = host.call(
            "models.load", {"query": {"name": "acme/model", "version": "^1"}}, context=site
        )
        assert reply["result"]["model"]["version"] == "1.0.0"
    finally:
        host.close()
    assert "every model in use is the newest" in run_cli(home, "update").stdout
    signer.write(source, 2, [e10, e11, e20])  # the publisher ships 1.1.0 and 2.0.0
    checked = run_cli(home, "update", "--check").stdout
    assert "would download: acme/model@1.1.0 for 1 site\n" in checked
    assert "2.0.0" not in checked  # outside the range the site asked for
    report = cli_json(home, "update")
    assert report["catalogs"] == [{"name": "acme", "state": "updated to version 2"}]
    assert [d["version"] for d in report["downloads"]] == ["1.1.0"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stored = {m["sha256"]: m for m in cli_json(home, "ls")}
        if entry(v11, "x/y", "1.0.0")["sha256"] in stored:
            break
        time.sleep(0.3)
    got = stored[entry(v11, "x/y", "1.0.0")["sha256"]]
    assert got["sites"] == [{"top_site": "https://a.example", "origin": "https://a.example"}]
    assert model_server.transfers("/v20") == 0
    # The site now holds 1.1.0: a load by name gets it with no transfer.
    host = HostProcess(home)
    try:
        model_server.reset_stats()
        reply = host.call(
            "models.load", {"query": {"name": "acme/model", "version": "^1"}}, context=site
        )
        assert reply["result"]["model"]["version"] == "1.1.0"
        assert model_server.requests == []
        # Forgetting the site forgets the ranges it asked for: nothing is fetched for it.
        host.result("manage.clear_site", {"top_site": "https://a.example"})
    finally:
        host.close()
    v12 = tiny_model(tmp_path / "12.onnx", seed=12).read_bytes()
    e12 = entry(v12, "acme/model", "1.2.0", urls=(model_server.add("/v12", v12),))
    signer.write(source, 3, [e10, e11, e12, e20])
    assert cli_json(home, "update", "--check")["downloads"] == []
