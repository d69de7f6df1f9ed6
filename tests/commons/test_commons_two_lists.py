"""Two commons lists in force at once — the shipped one and a user's, signed with a
throw-away key the config trusts — each with its own version and rollback protection;
a model on either is common to a site that never obtained it (a real host process)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from privacy.signing import Signer, entry
from support.contexts import page_context
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import real_model, tiny_model

B = "https://b.example"
PAGE_B = page_context(B)


def trusting(home: Path, *signers: Signer) -> dict[str, str]:
    """A config trusting the project's keys and `signers`' keys."""
    keys = ["project", *(s.public for s in signers)]
    path = home / "config.toml"
    path.write_text(f"commons_keys = {json.dumps(keys)}\n", encoding="utf-8")
    return {"WEBMODELS_CONFIG": str(path)}


def cli_json(home: Path, *args: str, **env: str) -> Any:
    return json.loads(run_cli(home, "--json", *args, **env).stdout)


def availability(host: HostProcess, server: ModelServer, name: str, data: bytes) -> str:
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    query = {"url": server.add(f"/{name}", data), "integrity": integrity}
    found = host.result("models.availability", {"query": query}, context=PAGE_B)
    return str(found["availability"])


def test_shipped_and_users_lists_are_in_force_together(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    started = time.monotonic()
    user = Signer()
    env = trusting(home, user)
    shipped_model = real_model("magika")  # on the shipped list
    own = tiny_model(tmp_path / "own.onnx", seed=7)
    other = tiny_model(tmp_path / "other.onnx", seed=8)
    run_cli(home, "import", str(shipped_model), str(own), str(other), **env)
    # The user's version 1 installs beside the shipped version 2 (it used to be refused
    # as "older than the current 2", and to replace the shipped list when newer).
    listed = user.write(tmp_path / "mine.json", 1, [entry(own.read_bytes())])
    assert cli_json(home, "commons", "add", str(listed), **env)["updated"] is True
    lists = cli_json(home, "commons", "ls", **env)["lists"]
    assert sorted((x["project"], x["version"], x["in_force"]) for x in lists) == [
        (False, 1, True),
        (True, 2, True),
    ]
    host = HostProcess(home, **env)
    try:
        assert availability(host, model_server, "magika.onnx", shipped_model.read_bytes()) == (
            "available"
        )
        assert availability(host, model_server, "own.onnx", own.read_bytes()) == "available"
        assert availability(host, model_server, "other.onnx", other.read_bytes()) == (
            "downloadable"  # stored, on no list: still invisible to B
        )
        assert model_server.requests == []
        shown = host.result("manage.commons.list")["lists"]  # what the popup shows
        assert sorted((x["project"], x["in_force"]) for x in shown) == [(False, True), (True, True)]
    finally:
        host.close()
    print(f"wall time {time.monotonic() - started:.1f} s")


def test_rollback_of_one_keys_list_is_refused_while_another_key_installs(
    home: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    user, admin = Signer(), Signer()
    env = trusting(home, user, admin)
    run_cli(home, "commons", "add", str(user.write(tmp_path / "u3.json", 3, [entry(b"u")])), **env)
    rollback = user.write(tmp_path / "u2.json", 2, [entry(b"u")])
    refused = run_cli(home, "commons", "add", str(rollback), check=False, **env)
    assert refused.returncode == 1 and "older than the current 3" in refused.stderr
    # Another key's version 1 installs: each key's list is checked against its own.
    admin_v1 = admin.write(tmp_path / "a1.json", 1, [entry(b"a")])
    assert cli_json(home, "commons", "add", str(admin_v1), **env)["updated"] is True
    lists = cli_json(home, "commons", "ls", **env)["lists"]  # the shipped v2 beside them
    assert sorted((x["version"], x["in_force"]) for x in lists) == [(1, True), (2, True), (3, True)]
    # Removing one key's list (named by the start of its id) leaves the others.
    (user_list,) = [x for x in lists if x["version"] == 3]
    removed = cli_json(home, "commons", "rm", user_list["key_id"][:8], **env)
    assert removed["removed"] == user_list["key_id"]
    left = cli_json(home, "commons", "ls", **env)["lists"]
    assert sorted(x["version"] for x in left if x["in_force"]) == [1, 2]
    print(f"wall time {time.monotonic() - started:.1f} s")
