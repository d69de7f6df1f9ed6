"""`webmodels update --check` says who asked for a range: the user's own pull is no
site. Run as a user runs it, with a signed catalog and a local HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

from support.catalogs import CatalogSigner, entry
from support.host import run_cli
from support.httpserver import ModelServer
from support.models import tiny_model


def test_update_check_names_the_users_own_pull_not_a_site(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    signer = CatalogSigner("acme")
    v10, v11 = (tiny_model(tmp_path / f"{n}.onnx", seed=n).read_bytes() for n in (10, 11))
    e10 = entry(v10, "acme/model", "1.0.0", urls=(model_server.add("/v10", v10),))
    e11 = entry(v11, "acme/model", "1.1.0", urls=(model_server.add("/v11", v11),))
    source = signer.write(tmp_path / "catalog.json", 1, [e10])
    run_cli(home, "catalog", "add", str(source), "--key", signer.public)
    run_cli(home, "pull", "acme/model@^1")
    signer.write(source, 2, [e10, e11])

    checked = run_cli(home, "update", "--check").stdout
    assert "would download: acme/model@1.1.0 for you (webmodels pull)\n" in checked
    assert "site" not in checked
    [planned] = json.loads(run_cli(home, "update", "--check", "--json").stdout)["downloads"]
    assert (planned["sites"], planned["user"]) == (0, True)
