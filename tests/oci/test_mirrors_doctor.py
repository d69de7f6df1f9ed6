"""``webmodels doctor`` shows the configured mirrors, whether each answers now (a
registry's ``GET /v2/``, an https mirror's ``HEAD``, with a short timeout) and where
the setting came from: the administrator's policy (locked or not) or the user's file."""

from __future__ import annotations

import socket
from pathlib import Path

from support.httpserver import ModelServer
from webmodels.cli.doctor_cmd import check_mirrors, extra_checks
from webmodels.config import Config, load_config


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, *, policy: str = "", user: str = "") -> Config:
    (tmp_path / "policy.toml").write_text(policy, encoding="utf-8")
    (tmp_path / "user.toml").write_text(user, encoding="utf-8")
    return load_config(
        env={
            "WEBMODELS_POLICY": str(tmp_path / "policy.toml"),
            "WEBMODELS_CONFIG": str(tmp_path / "user.toml"),
            "WEBMODELS_HOME": str(tmp_path / "home"),
        }
    )


def test_doctor_shows_each_mirror_whether_it_answers_and_the_locked_policy(
    tmp_path: Path,
) -> None:
    with ModelServer() as server:
        server.add("/v2/", b"{}")
        server.add("/by-hash/", b"")
        up_registry = f"oci://127.0.0.1:{server.port}/models"
        up_prefix = server.url("/by-hash/")
        down = f"oci://127.0.0.1:{_closed_port()}/models"
        mirrors = f'["{up_registry}", "{up_prefix}", "{down}"]'
        config = _config(
            tmp_path,
            policy=f"mirrors = {{ value = {mirrors}, locked = true }}\n",
            user='mirrors = ["https://mine.example/by-hash/"]\n',  # locked: not in force
        )
        check = check_mirrors(config)
        asked = [(r.method, r.path) for r in server.requests]
    assert check.name == "mirrors" and check.status == "warn"
    assert check.details["source"] == "policy (locked)"
    assert "from policy (locked)" in check.summary
    found = {m["mirror"]: (m["answers"], m["detail"]) for m in check.details["mirrors"]}
    assert found == {
        up_registry: (True, "HTTP 200"),
        up_prefix: (True, "HTTP 200"),
        down: (False, "no answer: ConnectionError"),
    }
    assert "mine.example" not in check.summary
    assert check.fix is not None and down in check.fix and "administrator" in check.fix
    assert ("GET", "/v2/") in asked and ("HEAD", "/by-hash/") in asked
    assert "mirrors" in [
        getattr(c, "func", c).__name__.removeprefix("check_") for c in extra_checks(config)
    ]


def test_doctor_names_the_user_config_as_the_source(tmp_path: Path) -> None:
    with ModelServer() as server:
        server.add("/v2/", b"{}")
        mirror = f"oci://127.0.0.1:{server.port}/models"
        config = _config(tmp_path, user=f'mirrors = ["{mirror}"]\n')
        check = check_mirrors(config)
    assert check.status == "ok"
    assert check.details["source"] == "user config"
    assert check.summary == f"1 mirror(s) from user config: {mirror} (HTTP 200)"


def test_doctor_without_mirrors_says_so(tmp_path: Path) -> None:
    check = check_mirrors(_config(tmp_path))
    assert check.status == "ok" and "no mirrors" in check.summary
