"""`webmodels install --system`: the host manifest in the browsers' system-wide folders
and one launcher for every user, written under a root folder here (never the real /)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from webmodels import NATIVE_HOST_NAME
from webmodels.cli.main import main
from webmodels.config import CHROMIUM_EXTENSION_ID, FIREFOX_EXTENSION_ID

MANIFEST = f"{NATIVE_HOST_NAME}.json"
CHROMIUM_DIRS = ("etc/chromium", "etc/opt/chrome", "etc/opt/edge")
LAUNCHER = "/usr/local/lib/webmodels/webmodels-host"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WEBMODELS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WEBMODELS_CONFIG", str(tmp_path / "none.toml"))
    return tmp_path / "root"


@pytest.mark.skipif(os.name != "posix" or os.uname().sysname != "Linux", reason="Linux folders")
def test_install_system_writes_every_browsers_system_folder_and_uninstall_takes_it_back(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--system", "--root", str(cli)]) == 0
    assert "webmodels uninstall --system" in capsys.readouterr().out
    for folder in CHROMIUM_DIRS:
        document = json.loads((cli / folder / "native-messaging-hosts" / MANIFEST).read_text())
        assert document["path"] == LAUNCHER  # as it will be on the machine, not under root
        assert document["allowed_origins"] == [f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"]
    firefox = json.loads((cli / "usr/lib/mozilla/native-messaging-hosts" / MANIFEST).read_text())
    assert firefox["allowed_extensions"] == [FIREFOX_EXTENSION_ID]
    launcher = cli / LAUNCHER.lstrip("/")
    mode = launcher.stat().st_mode
    assert mode & stat.S_IXOTH and mode & stat.S_IROTH  # every user's browser runs it
    assert "--store" not in launcher.read_text()  # each user keeps their own store
    assert main(["uninstall", "--system", "--root", str(cli)]) == 0
    assert not list(cli.rglob(MANIFEST)) and not launcher.exists()


def test_install_system_refuses_what_it_cannot_do(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--system", "--browser", "brave", "--root", str(cli)]) == 1
    assert "no documented system-wide" in capsys.readouterr().err
    assert main(["install", "--root", str(cli)]) == 1
    assert "--root goes with --system" in capsys.readouterr().err
    assert not cli.exists()
