"""`webmodels commons show|verify|update`, in text and JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from privacy.signing import Signer, entry, trusting_config
from support.host import run_cli

MAGIKA = "fe2d2eb49c5f88a9e0a6c048e15d6ffdf86235519c2afc535044de433169ec8c"


def test_show_adopts_the_shipped_list(home: Path) -> None:
    (shown,) = json.loads(run_cli(home, "--json", "commons", "show").stdout)["lists"]
    assert shown["in_force"] and shown["project"] and shown["version"] == 2
    assert MAGIKA in [m["sha256"] for m in shown["models"]]
    text = run_cli(home, "commons", "show").stdout
    assert "fe2d2eb49c5f88a9" in text and "1.0.3" in text
    assert "True" not in text and "in force" in text


def test_show_without_a_trusted_list(home: Path) -> None:
    env = trusting_config(home, Signer())  # trusts only a key that signed nothing
    shown = json.loads(run_cli(home, "--json", "commons", "show", **env).stdout)
    assert shown == {"ok": True, "lists": []}
    assert run_cli(home, "commons", "show", **env).stdout == "no commons list in force\n"


def test_verify_does_not_install(home: Path, tmp_path: Path) -> None:
    signer = Signer()
    env = trusting_config(home, signer)
    path = signer.write(tmp_path / "list.json", 4, [entry(b"abc", name="x/y")])
    verified = json.loads(run_cli(home, "--json", "commons", "verify", str(path), **env).stdout)
    assert verified["valid"] and verified["list"]["version"] == 4
    assert verified["list"]["models"] == [entry(b"abc", name="x/y")]
    shown = json.loads(run_cli(home, "--json", "commons", "show", **env).stdout)
    assert shown["lists"] == []


def test_update_then_refuse_an_expired_list(home: Path, tmp_path: Path) -> None:
    signer = Signer()
    env = trusting_config(home, signer)
    path = signer.write(tmp_path / "v1.json", 1, [entry(b"abc")])
    updated = json.loads(run_cli(home, "--json", "commons", "update", str(path), **env).stdout)
    assert updated["updated"] and updated["list"]["version"] == 1
    again = json.loads(run_cli(home, "--json", "commons", "update", str(path), **env).stdout)
    assert again["updated"] is False
    expired = signer.write(tmp_path / "v2.json", 2, [], expires_in=timedelta(days=-1))
    result = run_cli(home, "--json", "commons", "update", str(expired), check=False, **env)
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "bad_request" and "expired" in error["message"]
    missing = run_cli(home, "commons", "verify", str(tmp_path / "none.json"), check=False)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
