"""`webmodels share`/`unshare` and `webmodels settings`: the popup's controls from the
command line, run as a user runs them, and seen by pages through a real host."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from support.host import HostProcess, run_cli
from support.models import tiny_model

SITE = "http://b.localhost:8000"


def page(top: str) -> dict[str, Any]:
    return {"partition": {"top_site": top, "origin": top}, "user_activation": True}


def seen_by(home: Path, sha: str) -> str:
    host = HostProcess(home)
    try:
        reply = host.result("models.availability", {"query": {"sha256": sha}}, context=page(SITE))
        return str(reply["availability"])
    finally:
        host.kill()


def test_share_by_name_lets_the_site_see_the_model_and_unshare_takes_it_back(
    home: Path, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=2048)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    run_cli(home, "import", str(model), "--name", "acme/tiny", "--model-version", "1.0.0")
    hidden = seen_by(home, sha)
    assert hidden != "available"

    shared = run_cli(home, "share", "acme/tiny@1.0.0", SITE)
    assert f"shared {sha} with {SITE}" in shared.stdout
    assert seen_by(home, sha) == "available"
    [listed] = json.loads(run_cli(home, "ls", "--json").stdout)
    assert listed["shared_with"] == [SITE]

    reply = json.loads(run_cli(home, "unshare", sha[:8], SITE, "--json").stdout)
    assert reply["model"]["shared_with"] == []
    assert seen_by(home, sha) == hidden


def test_share_refuses_what_it_cannot_name(home: Path, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    run_cli(home, "import", str(model))
    missing = run_cli(home, "share", "acme/none", SITE, check=False)
    assert missing.returncode == 1
    assert "no stored model named 'acme/none'" in missing.stderr
    bad_site = run_cli(
        home, "share", hashlib.sha256(model.read_bytes()).hexdigest(), "a/b/c", check=False
    )
    assert bad_site.returncode == 1, bad_site.stdout
    assert "SITE must look like https://example.com" in bad_site.stderr


def test_settings_get_and_set_the_privacy_mode_a_running_host_uses(home: Path) -> None:
    assert run_cli(home, "settings").stdout.split() == ["privacy_mode", "strict", "(default)"]
    run_cli(home, "settings", "set", "privacy_mode", "relaxed")
    assert run_cli(home, "settings", "get", "privacy_mode").stdout == "relaxed\n"
    assert json.loads(run_cli(home, "settings", "--json").stdout) == {
        "privacy_mode": "relaxed",
        "sources": {"privacy_mode": "settings"},
    }
    host = HostProcess(home)
    try:
        assert host.result("manage.settings.get") == {"privacy_mode": "relaxed"}
    finally:
        host.kill()

    bad_value = run_cli(home, "settings", "set", "privacy_mode", "open", check=False)
    assert bad_value.returncode == 1
    assert "privacy_mode must be one of relaxed, strict, not 'open'" in bad_value.stderr
    bad_key = run_cli(home, "--json", "settings", "set", "colour", "red", check=False)
    assert json.loads(bad_key.stdout)["error"]["message"].startswith("unknown setting 'colour'")
    assert run_cli(home, "settings", "get", "privacy_mode").stdout == "relaxed\n"
