"""Native-messaging registration: `webmodels install` / `uninstall`.

The planner is pure, so every OS's locations are tested here; the round trips run
the real CLI in a subprocess against a throwaway HOME and XDG_CONFIG_HOME.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from webmodels import NATIVE_HOST_NAME
from webmodels.config import CHROMIUM_EXTENSION_ID, FIREFOX_EXTENSION_ID, Config
from webmodels.errors import HostError
from webmodels.registration import (
    Receipt,
    Selection,
    Survey,
    System,
    check_registrations,
    execute_install,
    execute_uninstall,
    load_receipt,
    parse_selection,
    plan_install,
    plan_uninstall,
    survey,
)
from webmodels.registration.documents import (
    launcher_cli_args,
    launcher_script,
    manifest_document,
)
from webmodels.registration.locations import BROWSERS
from webmodels.registration.plans import GONE, IN_USE, KEEP, REMOVE

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/opt/python/bin/python3"
MANIFEST = f"{NATIVE_HOST_NAME}.json"
CHROMIUM_ORIGIN = f"chrome-extension://{CHROMIUM_EXTENSION_ID}/"


def config_at(home: Path) -> Config:
    return Config(home=home, log_dir=home / "logs")


def plan_for(
    platform: str,
    *,
    home: Path = Path("/home/ada"),
    env: dict[str, str] | None = None,
    browsers: list[str] | None = None,
    user_data_dir: Path | None = None,
    data_home: Path = Path("/data/webmodels"),
    python: str = PYTHON,
) -> Any:
    return plan_install(
        config_at(data_home),
        selection=parse_selection(browsers, user_data_dir),
        system=System(platform=platform, home=home, env=env or {}),
        python=python,
    )


def manifest_paths(plan: Any) -> dict[str, Path]:
    return {r.target.browser: r.manifest.path for r in plan.registrations}


# -- where each browser looks ------------------------------------------------------


def test_linux_locations_default_to_dot_config_and_dot_mozilla() -> None:
    assert manifest_paths(plan_for("linux")) == {
        "chromium": Path("/home/ada/.config/chromium/NativeMessagingHosts") / MANIFEST,
        "chrome": Path("/home/ada/.config/google-chrome/NativeMessagingHosts") / MANIFEST,
        "edge": Path("/home/ada/.config/microsoft-edge/NativeMessagingHosts") / MANIFEST,
        "brave": Path("/home/ada/.config/BraveSoftware/Brave-Browser/NativeMessagingHosts")
        / MANIFEST,
        "firefox": Path("/home/ada/.mozilla/native-messaging-hosts") / MANIFEST,
    }


def test_linux_follows_xdg_config_home_and_chrome_config_home() -> None:
    xdg = manifest_paths(plan_for("linux", env={"XDG_CONFIG_HOME": "/xdg"}))
    assert xdg["chrome"] == Path("/xdg/google-chrome/NativeMessagingHosts") / MANIFEST
    assert xdg["firefox"] == Path("/home/ada/.mozilla/native-messaging-hosts") / MANIFEST
    both = {"XDG_CONFIG_HOME": "/xdg", "CHROME_CONFIG_HOME": "/cch"}
    assert manifest_paths(plan_for("linux", env=both))["chromium"].parts[:3] == (
        "/",
        "cch",
        "chromium",
    )
    # The XDG spec says a relative value is ignored.
    relative = manifest_paths(plan_for("linux", env={"XDG_CONFIG_HOME": "rel"}))
    assert relative["chromium"].parts[:4] == ("/", "home", "ada", ".config")


def test_macos_locations_are_under_application_support() -> None:
    support = Path("/Users/ada/Library/Application Support")
    assert manifest_paths(plan_for("darwin", home=Path("/Users/ada"))) == {
        "chromium": support / "Chromium/NativeMessagingHosts" / MANIFEST,
        "chrome": support / "Google/Chrome/NativeMessagingHosts" / MANIFEST,
        "edge": support / "Microsoft Edge/NativeMessagingHosts" / MANIFEST,
        "brave": support / "BraveSoftware/Brave-Browser/NativeMessagingHosts" / MANIFEST,
        "firefox": support / "Mozilla/NativeMessagingHosts" / MANIFEST,
    }


def test_windows_writes_manifests_in_the_data_folder_and_registry_keys() -> None:
    plan = plan_for("win32", python="C:\\Python311\\python.exe")
    targets = {r.target.browser: r.target for r in plan.registrations}
    for browser in BROWSERS:
        path = Path("/data/webmodels/native-host") / browser / MANIFEST
        assert targets[browser].manifest_path == path
    hosts = f"NativeMessagingHosts\\{NATIVE_HOST_NAME}"
    assert {b: t.registry_key for b, t in targets.items()} == {
        "chromium": f"Software\\Chromium\\{hosts}",
        "chrome": f"Software\\Google\\Chrome\\{hosts}",
        "edge": f"Software\\Microsoft\\Edge\\{hosts}",
        "brave": f"Software\\BraveSoftware\\Brave-Browser\\{hosts}",
        "firefox": f"Software\\Mozilla\\{hosts}",
    }
    assert plan.launcher.path == Path("/data/webmodels/native-host/webmodels-host.bat")


def test_user_data_dir_writes_into_the_profile_folder() -> None:
    plan = plan_for("linux", browsers=["brave"], user_data_dir=Path("/p/prof"))
    assert manifest_paths(plan) == {"brave": Path("/p/prof/NativeMessagingHosts") / MANIFEST}
    assert plan.registrations[0].record().user_data_dir == Path("/p/prof")
    # Without --browser, a profile folder means Chromium.
    default = plan_for("darwin", user_data_dir=Path("/p/prof"))
    assert list(manifest_paths(default)) == ["chromium"]


@pytest.mark.parametrize(
    ("platform", "browsers", "words"),
    [
        ("linux", ["firefox"], "Chromium-family"),
        ("linux", ["all"], "Chromium-family"),
        ("linux", ["chromium", "chrome"], "exactly one --browser"),
        ("win32", ["chromium"], "registry"),
    ],
)
def test_user_data_dir_refusals(platform: str, browsers: list[str], words: str) -> None:
    with pytest.raises(HostError) as info:
        plan_for(platform, browsers=browsers, user_data_dir=Path("/p/prof"))
    assert info.value.code == "bad_request" and words in info.value.message


def test_browser_selection_accepts_all_repeats_and_refuses_unknown_names() -> None:
    assert parse_selection(None, None).browsers == BROWSERS
    assert parse_selection(["all"], None).browsers == BROWSERS
    assert parse_selection(["Firefox", "chrome", "firefox"], None).browsers == (
        "firefox",
        "chrome",
    )
    with pytest.raises(HostError) as info:
        parse_selection(["opera"], None)
    assert info.value.code == "bad_request" and "opera" in info.value.message


# -- what gets written -------------------------------------------------------------


def test_manifests_name_our_host_launcher_and_extension() -> None:
    plan = plan_for("linux")
    documents = {r.target.browser: json.loads(r.manifest.content) for r in plan.registrations}
    launcher = "/data/webmodels/native-host/webmodels-host"
    for browser, document in documents.items():
        assert document["name"] == NATIVE_HOST_NAME
        assert document["type"] == "stdio"
        assert document["path"] == launcher
        if browser == "firefox":
            assert document["allowed_extensions"] == [FIREFOX_EXTENSION_ID]
            assert "allowed_origins" not in document
        else:
            assert document["allowed_origins"] == [CHROMIUM_ORIGIN]
            assert "allowed_extensions" not in document
    assert plan.launcher.mode == 0o755
    assert plan.dirs[0] == Path("/data/webmodels/native-host")


def test_manifest_templates_match_what_install_writes() -> None:
    config = config_at(Path("/data"))
    for browser, template in (("chromium", "chromium.json.in"), ("firefox", "firefox.json.in")):
        text = (REPO / "manifests" / template).read_text(encoding="utf-8")
        text = text.replace("@HOST_PATH@", "/opt/webmodels-host")
        text = text.replace("@CHROMIUM_EXTENSION_ID@", CHROMIUM_EXTENSION_ID)
        text = text.replace("@FIREFOX_EXTENSION_ID@", FIREFOX_EXTENSION_ID)
        expected = manifest_document(browser, host_path=Path("/opt/webmodels-host"), config=config)
        assert json.loads(text) == expected


def test_posix_launcher_execs_serve_with_the_callers_arguments() -> None:
    script = launcher_script(
        python="/o p/python", cli_args=("--store", "/s $x"), platform="linux"
    ).decode()
    assert script.startswith("#!/bin/sh\n")
    last = script.splitlines()[-1]
    assert last == "exec '/o p/python' -m webmodels --store '/s $x' serve -- \"$@\""


def test_windows_launcher_is_a_batch_file_that_passes_all_arguments() -> None:
    script = launcher_script(
        python="C:\\Py 3\\python.exe", cli_args=("--store", "D:\\100%\\wm"), platform="win32"
    )
    lines = script.decode().split("\r\n")
    assert lines[0] == "@echo off"
    assert lines[2] == '"C:\\Py 3\\python.exe" -m webmodels --store "D:\\100%%\\wm" serve -- %*'
    assert script.endswith(b"\r\n")


def test_launcher_passes_on_a_store_or_config_file_that_is_not_the_default(
    tmp_path: Path,
) -> None:
    default_home, default_file = tmp_path / "default", tmp_path / "config.toml"
    defaults = {"default_home": default_home, "default_config_file": default_file}
    same = Config(home=default_home, log_dir=tmp_path, config_file=default_file)
    assert launcher_cli_args(same, **defaults) == ()
    other = Config(home=tmp_path / "mine", log_dir=tmp_path, config_file=tmp_path / "c.toml")
    assert launcher_cli_args(other, **defaults) == (
        "--config",
        str(tmp_path / "c.toml"),
        "--store",
        str(tmp_path / "mine"),
    )


def test_the_extension_id_comes_from_the_public_key() -> None:
    key = (REPO / "manifests" / "extension-public-key.txt").read_text().strip()
    digest = hashlib.sha256(base64.b64decode(key)).hexdigest()[:32]
    assert "".join(chr(ord("a") + int(c, 16)) for c in digest) == CHROMIUM_EXTENSION_ID
    probe = REPO / "tests" / "e2e" / "fixtures" / "probe-extension" / "manifest.json"
    assert json.loads(probe.read_text())["key"] == key
    extension = REPO / "extension" / "manifest.json"
    assert json.loads(extension.read_text())["key"] == key


# -- uninstall planning ------------------------------------------------------------


def installed_receipt(tmp_path: Path) -> tuple[Any, Receipt]:
    plan = plan_for("linux", home=tmp_path / "h", data_home=tmp_path / "d")
    receipt = Receipt(launcher=plan.launcher.record())
    for registration in plan.registrations:
        receipt = receipt.with_registration(registration.record())
    return plan, receipt.with_created(dirs=[tmp_path / "d", tmp_path / "d/native-host"])


def test_uninstall_plan_removes_only_what_is_still_ours(tmp_path: Path) -> None:
    plan, receipt = installed_receipt(tmp_path)
    files = {r.manifest.path: r.manifest.content for r in plan.registrations}
    paths = manifest_paths(plan)
    files[paths["chrome"]] = b"a file the user wrote"
    files[paths["edge"]] = b'{"name": "org.webmodels.host", "path": "/elsewhere"}'
    del files[paths["brave"]]
    files[plan.launcher.path] = plan.launcher.content
    uninstall = plan_uninstall(
        receipt,
        selection=parse_selection(None, None),
        survey=Survey(files=files),
        receipt_path=tmp_path / "r.json",
    )
    actions = {r.record.browser: r.action for r in uninstall.removals}
    assert actions == {
        "chromium": REMOVE,
        "chrome": KEEP,
        "edge": REMOVE,  # rewritten, but still a manifest for our host
        "brave": GONE,
        "firefox": REMOVE,
    }
    assert uninstall.launcher is not None and uninstall.launcher.action == REMOVE
    assert uninstall.remaining.registrations == () and uninstall.remaining.launcher is None
    assert uninstall.dirs == (tmp_path / "d/native-host", tmp_path / "d")  # deepest first


def test_uninstalling_one_browser_keeps_the_launcher_for_the_others(tmp_path: Path) -> None:
    _, receipt = installed_receipt(tmp_path)
    uninstall = plan_uninstall(
        receipt,
        selection=Selection(("chromium",)),
        survey=Survey(files={}),
        receipt_path=tmp_path / "r.json",
    )
    assert [r.record.browser for r in uninstall.removals] == ["chromium"]
    assert uninstall.launcher is not None and uninstall.launcher.action == IN_USE
    assert [r.browser for r in uninstall.remaining.registrations] == list(BROWSERS[1:])
    assert uninstall.not_installed == ()


def test_uninstall_plan_deletes_a_registry_key_only_while_it_points_at_us(
    tmp_path: Path,
) -> None:
    plan = plan_for("win32", data_home=tmp_path, python="C:\\py.exe", browsers=["chrome", "edge"])
    receipt = Receipt(registrations=tuple(r.record() for r in plan.registrations))
    chrome, edge = plan.registrations
    registry = {
        chrome.target.registry_key: str(chrome.manifest.path),
        edge.target.registry_key: "C:\\other\\manifest.json",
    }
    files = {r.manifest.path: r.manifest.content for r in plan.registrations}
    uninstall = plan_uninstall(
        receipt,
        selection=parse_selection(None, None),
        survey=Survey(files=files, registry=registry),
        receipt_path=tmp_path / "r.json",
    )
    assert [r.delete_registry_key for r in uninstall.removals] == [True, False]


def test_receipt_round_trips_through_json_and_refuses_damage(tmp_path: Path) -> None:
    _, receipt = installed_receipt(tmp_path)
    assert Receipt.from_json(json.loads(json.dumps(receipt.to_json())), source=tmp_path) == receipt
    path = tmp_path / "receipt.json"
    damaged = receipt.to_json()
    damaged["registrations"][0]["path"] = "/home/ada/.bashrc"  # never ours to delete
    for text in ("{", '{"layout": "native-host-receipt-v1"}', json.dumps(damaged)):
        path.write_text(text)
        with pytest.raises(HostError) as info:
            load_receipt(path)
        assert info.value.code == "internal" and str(path) in info.value.message


# -- executing plans (in-process; Windows with a registry stand-in) ----------------


class MemoryRegistry:
    """HKEY_CURRENT_USER in a dict: key -> default value (None: no value)."""

    def __init__(self) -> None:
        self.keys: dict[str, str | None] = {"Software": None}

    def get_default(self, key: str) -> str | None:
        return self.keys.get(key)

    def set_default(self, key: str, value: str) -> tuple[str, ...]:
        parts = key.split("\\")
        prefixes = ["\\".join(parts[: i + 1]) for i in range(len(parts))]
        created = tuple(p for p in prefixes if p not in self.keys)
        self.keys.update(dict.fromkeys(created))
        self.keys[key] = value
        return created

    def delete_key(self, key: str) -> bool:
        assert not any(k.startswith(key + "\\") for k in self.keys), "has subkeys"
        return self.keys.pop(key, "absent") != "absent"

    def delete_key_if_empty(self, key: str) -> bool:
        busy = any(k.startswith(key + "\\") for k in self.keys) or self.keys.get(key)
        return key in self.keys and not busy and self.delete_key(key)


def snapshot(root: Path) -> dict[str, str]:
    """Every folder and file under `root`: relative path -> kind, mode and content hash."""
    tree = {}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            tree[str(path.relative_to(root))] = f"dir {mode:o}"
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            tree[str(path.relative_to(root))] = f"file {mode:o} {digest}"
    return tree


def test_windows_round_trip_restores_files_and_registry(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "store-v2").mkdir()
    before = snapshot(tmp_path)
    registry = MemoryRegistry()
    plan = plan_for("win32", home=tmp_path / "h", data_home=tmp_path / "data", python="C:\\p.exe")

    result = execute_install(plan, registry=registry)

    assert registry.keys[f"Software\\Mozilla\\NativeMessagingHosts\\{NATIVE_HOST_NAME}"] == str(
        tmp_path / "data/native-host/firefox" / MANIFEST
    )
    assert (tmp_path / "data/native-host/webmodels-host.bat").read_bytes().startswith(b"@echo")
    receipt = result.receipt
    assert set(receipt.created_registry_keys) >= {"Software\\Chromium", "Software\\Mozilla"}
    uninstall = plan_uninstall(
        receipt,
        selection=parse_selection(None, None),
        survey=survey(receipt, registry=registry),
        receipt_path=plan.receipt_path,
    )
    execute_uninstall(uninstall, registry=registry)
    assert registry.keys == {"Software": None}
    assert snapshot(tmp_path) == before


def test_a_failed_install_still_records_what_it_wrote(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "google-chrome").write_text("a file where a folder should be")
    plan = plan_for("linux", home=home, data_home=tmp_path / "d")
    with pytest.raises(HostError):
        execute_install(plan)
    receipt = load_receipt(plan.receipt_path)
    assert receipt.launcher is not None
    assert [r.browser for r in receipt.registrations] == ["chromium"]
    assert home / ".config" / "chromium" in receipt.created_dirs


# -- checking registrations (for `webmodels doctor`) -------------------------------


def test_check_reports_installed_missing_and_broken_manifests(tmp_path: Path) -> None:
    home, config = tmp_path / "h", config_at(tmp_path / "d")
    env = {"XDG_CONFIG_HOME": str(home / ".config")}
    before = check_registrations(config, platform="linux", home=home, env=env)
    assert [(s.browser, s.installed, s.problems) for s in before] == [
        (b, False, ()) for b in BROWSERS
    ]
    plan = plan_install(
        config,
        selection=parse_selection(None, None),
        system=System("linux", home, env),
        python=sys.executable,
    )
    execute_install(plan)
    assert all(s.ok for s in check_registrations(config, platform="linux", home=home, env=env))

    chrome = manifest_paths(plan)["chrome"]
    document = json.loads(chrome.read_text())
    document["allowed_origins"] = ["chrome-extension://someoneelse/"]
    chrome.write_text(json.dumps(document))
    plan.launcher.path.chmod(0o644)
    statuses = {s.browser: s for s in check_registrations(config, home=home, env=env)}
    assert statuses["chrome"].installed
    problems = " | ".join(statuses["chrome"].problems)
    assert "not executable" in problems and CHROMIUM_ORIGIN in problems


def test_check_never_raises(tmp_path: Path) -> None:
    config = config_at(tmp_path)
    windows = check_registrations(config, platform="win32", home=tmp_path, env={})
    assert [s.installed for s in windows] == [False] * len(BROWSERS)
    odd_browsers = ["firefox", "opera"]
    odd = check_registrations(config, browsers=odd_browsers, user_data_dir=tmp_path, env={})
    assert [s.installed for s in odd] == [False, False]
    assert all(s.problems for s in odd)


# -- the real command, in a subprocess ---------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A user's home with a Chromium already set up and nothing else."""
    root = tmp_path / "world"
    chromium = root / "home" / ".config" / "chromium"
    chromium.mkdir(parents=True)
    (chromium / "Local State").write_text("{}")
    (root / "home" / ".mozilla").mkdir()
    return root


def run_cli(world: Path, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env.pop("CHROME_CONFIG_HOME", None)
    env |= {
        "HOME": str(world / "home"),
        "XDG_CONFIG_HOME": str(world / "home" / ".config"),
        "XDG_DATA_HOME": str(world / "home" / ".local" / "share"),
        "WEBMODELS_LOG_DIR": str(world.parent / "logs"),  # the CLI's log, outside the tree
    }
    command = [sys.executable, "-m", "webmodels", "--store", str(world / "store"), *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def test_install_then_uninstall_leaves_the_tree_as_it_was(world: Path) -> None:
    before = snapshot(world)

    out = run_cli(world, "install").stdout

    manifest = world / "home/.config/chromium/NativeMessagingHosts" / MANIFEST
    assert str(manifest) in out and "written" in out
    for path in manifest_paths(plan_for("linux", home=world / "home")).values():
        assert json.loads(path.read_text())["name"] == NATIVE_HOST_NAME
    launcher = world / "store/native-host/webmodels-host"
    assert launcher.stat().st_mode & 0o777 == 0o755
    assert f"--store {world / 'store'} serve -- " in launcher.read_text()

    run_cli(world, "uninstall")
    assert snapshot(world) == before


def test_the_launcher_starts_the_host_on_the_installed_store(world: Path) -> None:
    run_cli(world, "install", "--browser", "chromium")
    launcher = world / "store/native-host/webmodels-host"
    # As Chrome on Windows does: the caller, then an option-like argument.
    caller = (CHROMIUM_ORIGIN, "--parent-window=0")
    done = subprocess.run(
        [launcher, *caller], stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr  # stdin closed at once: a clean exit
    assert (world / "store/logs/host.log").is_file()  # the store given to install


def test_dry_run_changes_nothing_and_json_shows_the_plan(world: Path) -> None:
    before = snapshot(world)

    text = run_cli(world, "install", "--dry-run").stdout
    plan = json.loads(run_cli(world, "--json", "install", "--dry-run").stdout)

    assert "would write" in text and "nothing was changed" in text
    assert plan["ok"] is True and plan["dry_run"] is True
    assert [r["browser"] for r in plan["registrations"]] == list(BROWSERS)
    assert plan["registrations"][0]["manifest"]["allowed_origins"] == [CHROMIUM_ORIGIN]
    run_cli(world, "install")
    removal = json.loads(run_cli(world, "--json", "uninstall", "--dry-run").stdout)
    assert {r["action"] for r in removal["registrations"]} == {REMOVE}
    assert (world / "store/native-host/receipt.json").is_file()
    run_cli(world, "uninstall")
    assert snapshot(world) == before


def test_uninstall_leaves_a_file_the_user_replaced(world: Path) -> None:
    run_cli(world, "install", "--browser", "chromium", "--browser", "chrome")
    mine = world / "home/.config/chromium/NativeMessagingHosts" / MANIFEST
    mine.write_text("my own host, not yours")

    out = run_cli(world, "uninstall").stdout

    assert mine.read_text() == "my own host, not yours"
    assert "kept: changed since install" in out
    assert not (world / "home/.config/google-chrome").exists()
    assert not (world / "store").exists()


def test_partial_uninstall_and_repeats_are_safe(world: Path) -> None:
    before = snapshot(world)
    run_cli(world, "install")
    run_cli(world, "install", "--browser", "firefox")  # again: still one record each

    run_cli(world, "uninstall", "--browser", "chromium")
    assert not (world / "home/.config/chromium/NativeMessagingHosts").exists()
    assert (world / "home/.config/chromium/Local State").is_file()
    assert (world / "store/native-host/webmodels-host").is_file()  # others still need it
    run_cli(world, "uninstall", "--browser", "chromium")  # nothing left to do

    run_cli(world, "uninstall")
    run_cli(world, "uninstall")
    assert snapshot(world) == before


def test_user_data_dir_round_trip(world: Path) -> None:
    before = snapshot(world)
    profile = world / "profile"
    run_cli(world, "install", "--browser", "chromium", "--user-data-dir", profile)
    assert (profile / "NativeMessagingHosts" / MANIFEST).is_file()
    assert not (world / "home/.config/chromium/NativeMessagingHosts").exists()
    run_cli(world, "uninstall", "--user-data-dir", profile)
    assert snapshot(world) == before


def test_user_data_dir_with_firefox_is_refused(world: Path) -> None:
    before = snapshot(world)
    args = ("install", "--browser", "firefox", "--user-data-dir", world / "p")

    done = run_cli(world, *args, check=False)
    as_json = run_cli(world, "--json", *args, check=False)

    assert done.returncode == 1 and "[bad_request]" in done.stderr
    assert "Chromium-family" in done.stderr
    assert json.loads(as_json.stdout)["error"]["code"] == "bad_request"
    assert snapshot(world) == before


def test_permission_errors_name_the_path(world: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = world / "locked"
    locked.mkdir(mode=0o500)
    done = run_cli(world, "install", "--user-data-dir", locked, check=False)
    assert done.returncode == 1 and "[access_denied]" in done.stderr
    assert str(locked / "NativeMessagingHosts") in done.stderr


def test_permission_errors_become_access_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as above for root, who is never refused: the OS says no on replace."""

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(dst))

    plan = plan_for("linux", home=tmp_path / "h", data_home=tmp_path / "d", browsers=["edge"])
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(HostError) as info:
        execute_install(plan)
    assert info.value.code == "access_denied"
    assert info.value.details["path"] == str(plan.launcher.path)
    assert str(plan.launcher.path) in info.value.message
    assert list(plan.launcher.path.parent.iterdir()) == []  # no temporary file left behind
