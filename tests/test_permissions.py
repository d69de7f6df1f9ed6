"""The host's files are the user's alone (host/webmodels/permissions.py; PRIVACY.md,
hole 7): with the common umask 022, a real host and the CLI create folders 0700 and
files 0600 (blobs 0400), an older install's loose paths are tightened when the host
starts, `webmodels doctor` warns about a loosened file, and a pre-installed folder
keeps its own mode."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.idle import PAGE, store_for_page
from support.models import tiny_model
from webmodels.config import Config
from webmodels.logs import setup_logging
from webmodels.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX mode bits")


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The usual umask, which made the index 0644 before; hosts inherit it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root: Path, *, skip: Path | None = None) -> dict[str, int]:
    found = {}
    for path in [root, *root.rglob("*")]:
        if skip is not None and (path == skip or skip in path.parents):
            continue
        if not path.is_symlink():
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def loose(found: dict[str, int]) -> dict[str, str]:
    """Folders not 0700, files readable or writable by anyone but the user."""
    return {
        path: oct(mode)
        for path, mode in found.items()
        if mode & 0o077 or (mode & 0o700 != 0o700 and mode & 0o100)
    }


def test_a_fresh_install_is_private_under_umask_022(home: Path, model_server: ModelServer) -> None:
    data = tiny_model(home.parent / "m.onnx", seed=3).read_bytes()
    digest = hashlib.sha256(data).digest()
    url = model_server.add("/m.onnx", data)
    home.rmdir()  # fresh: the host makes its data folder
    host = HostProcess(home)
    try:
        store_for_page(host, os.urandom(3 << 20))  # an upload: tmp file, blob
        query = {"url": url, "integrity": "sha256-" + base64.b64encode(digest).decode()}
        host.result("models.load", {"query": query}, context=PAGE)  # a download
        while_running = modes(home)
    finally:
        host.close()
    run_cli(home, "ls")  # the CLI's log and its own store access
    after = modes(home)
    print(f"\n{len(after)} paths under the home, e.g. {sorted(after.items())[:6]}")
    assert "store-v2/index.sqlite3-wal" in while_running  # SQLite's own files were checked
    assert any(p.startswith("logs/host.log") for p in after)
    assert not loose(while_running) and not loose(after)
    assert after["."] == 0o700 and after["store-v2/index.sqlite3"] == 0o600


def test_the_library_creates_private_files_whatever_the_umask(tmp_path: Path) -> None:
    """No restricted umask here (the CLI and host set one): the modes are explicit."""
    home = tmp_path / "home"
    config = Config(home=home, log_dir=home / "logs")
    setup_logging(config, name="lib.log")
    with Store.open(config) as store:
        store.import_file(tiny_model(tmp_path / "m.onnx"))
    found = modes(home)
    assert "store-v2/index.sqlite3" in found and "logs/lib.log" in found
    assert not loose(found), found


def test_an_old_install_is_tightened_when_the_host_starts(home: Path, tmp_path: Path) -> None:
    run_cli(home, "import", str(tiny_model(tmp_path / "m.onnx")))
    pre = home / "system-models"  # a pre-installed folder that happens to live here
    model = tiny_model(pre / "tiny" / "model.onnx", seed=9)
    entry = {"file": "tiny/model.onnx", "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    (pre / "models.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    for path in [home, *home.rglob("*")]:  # what an install made under umask 022 was
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert loose(modes(home))
    host = HostProcess(home, WEBMODELS_PREINSTALLED=str(pre))
    try:
        assert host.result("models.list", context=PAGE)["models"]  # started, pre-installed
    finally:
        host.close()
    assert not loose(modes(home, skip=pre)), modes(home, skip=pre)
    assert set(modes(pre).values()) == {0o755, 0o644}  # not the host's to change


def test_doctor_warns_about_a_loosened_file(home: Path, tmp_path: Path) -> None:
    home.rmdir()  # the CLI makes its data folder
    run_cli(home, "import", str(tiny_model(tmp_path / "m.onnx")))
    assert permissions_check(home)["status"] == "ok"
    index = home / "store-v2" / "index.sqlite3"
    os.chmod(index, 0o644)
    check = permissions_check(home)
    assert check["status"] == "warn" and str(index) in check["details"]["loose"]
    assert "chmod" in check["fix"]


def permissions_check(home: Path) -> dict[str, object]:
    result = run_cli(home, "doctor", "--json", "--probe-timeout", "30", check=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return checks["permissions"]  # type: ignore[no-any-return]
