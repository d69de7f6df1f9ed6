"""Where each browser looks for a native-messaging host manifest (pure).

Everything that depends on the machine (platform, home folder, environment) is
passed in as a `System`, so the rules for every OS are tested on any OS.

Sources: Chrome's "Native messaging" guide (native messaging host location),
MDN "Native manifests" (Firefox), Chromium ``chrome_paths_linux.cc``
(``CHROME_CONFIG_HOME`` beats ``XDG_CONFIG_HOME``) and ``chrome_paths.cc``
(``DIR_USER_NATIVE_MESSAGING`` is ``<user data dir>/NativeMessagingHosts`` on
Linux and macOS; Windows reads only the registry).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from webmodels import NATIVE_HOST_NAME
from webmodels.errors import HostError

BROWSERS: tuple[str, ...] = ("chromium", "chrome", "edge", "brave", "firefox")
CHROMIUM_FAMILY: tuple[str, ...] = ("chromium", "chrome", "edge", "brave")
MANIFEST_FILE = f"{NATIVE_HOST_NAME}.json"
HOSTS_DIR = "NativeMessagingHosts"  # Chromium family (and Firefox on macOS)
REGISTRY_ROOT = "HKEY_CURRENT_USER"

# Folder under the XDG config folder on Linux (and the BSDs).
_LINUX_DIRS: Mapping[str, str] = {
    "chromium": "chromium",
    "chrome": "google-chrome",
    "edge": "microsoft-edge",
    "brave": "BraveSoftware/Brave-Browser",
}
# Folder under ~/Library/Application Support on macOS.
_MAC_DIRS: Mapping[str, str] = {
    "chromium": "Chromium",
    "chrome": "Google/Chrome",
    "edge": "Microsoft Edge",
    "brave": "BraveSoftware/Brave-Browser",
    "firefox": "Mozilla",
}
# Key under HKEY_CURRENT_USER on Windows; the manifest itself may live anywhere.
_WINDOWS_KEYS: Mapping[str, str] = {
    "chromium": "Software\\Chromium",
    "chrome": "Software\\Google\\Chrome",
    "edge": "Software\\Microsoft\\Edge",
    "brave": "Software\\BraveSoftware\\Brave-Browser",
    "firefox": "Software\\Mozilla",
}


@dataclass(frozen=True, slots=True)
class System:
    """The parts of the machine that decide where manifests go."""

    platform: str  # a `sys.platform` value: "linux", "darwin", "win32", ...
    home: Path  # the user's home folder
    env: Mapping[str, str]

    @classmethod
    def current(
        cls,
        *,
        platform: str | None = None,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> System:
        """This machine, with any of its parts replaced (tests, `doctor`)."""
        return cls(
            platform=sys.platform if platform is None else platform,
            home=Path.home() if home is None else home,
            env=dict(os.environ) if env is None else env,
        )

    @property
    def is_windows(self) -> bool:
        return self.platform == "win32"

    @property
    def is_mac(self) -> bool:
        return self.platform == "darwin"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which registrations a command acts on."""

    browsers: tuple[str, ...]
    user_data_dir: Path | None = None  # a Chromium profile folder given by the user


@dataclass(frozen=True, slots=True)
class Target:
    """Where one browser will find our manifest."""

    browser: str
    manifest_path: Path
    registry_key: str | None = None  # under HKEY_CURRENT_USER; Windows only
    user_data_dir: Path | None = None


def parse_selection(
    browsers: Sequence[str] | None,
    user_data_dir: Path | None,
    *,
    profile_default: Sequence[str] = ("chromium",),
) -> Selection:
    """Turn ``--browser`` (repeatable, ``all`` accepted) and ``--user-data-dir``
    into a `Selection`. Without ``--browser`` every browser is meant, or
    `profile_default` when a profile folder is given."""
    if not browsers:
        names = tuple(profile_default) if user_data_dir else BROWSERS
    else:
        names = _expand_browsers(browsers)
    if user_data_dir is None:
        return Selection(browsers=names)
    _refuse_non_chromium(names)
    return Selection(browsers=names, user_data_dir=user_data_dir.expanduser().absolute())


def _refuse_non_chromium(browsers: Sequence[str]) -> None:
    if any(b not in CHROMIUM_FAMILY for b in browsers):
        raise HostError(
            "bad_request",
            "--user-data-dir is for Chromium-family browsers; Firefox reads native hosts "
            "from one per-user folder: drop --user-data-dir or choose "
            "--browser chromium, chrome, edge or brave",
            flag="--user-data-dir",
        )


def _expand_browsers(values: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        name = value.strip().lower()
        if name not in (*BROWSERS, "all"):
            raise HostError(
                "bad_request",
                f"unknown browser {value!r}: choose one of {', '.join(BROWSERS)} or all",
                flag="--browser",
            )
        for item in BROWSERS if name == "all" else (name,):
            if item not in names:
                names.append(item)
    return tuple(names)


def resolve_targets(selection: Selection, *, system: System, data_home: Path) -> tuple[Target, ...]:
    """Where each selected browser reads our manifest.

    `data_home` is ``config.home``: on Windows the manifests live there, and the
    registry points at them.
    """
    if selection.user_data_dir is not None:
        return _profile_targets(selection, system=system)
    return tuple(_default_target(b, system=system, data_home=data_home) for b in selection.browsers)


def _profile_targets(selection: Selection, *, system: System) -> tuple[Target, ...]:
    if system.is_windows:
        raise HostError(
            "bad_request",
            "on Windows Chromium finds native hosts only through the registry, not in a "
            "profile folder: drop --user-data-dir",
            flag="--user-data-dir",
        )
    _refuse_non_chromium(selection.browsers)
    if len(selection.browsers) != 1:
        raise HostError(
            "bad_request",
            "--user-data-dir is one browser's profile folder: give exactly one --browser",
            flag="--browser",
        )
    assert selection.user_data_dir is not None
    path = selection.user_data_dir / HOSTS_DIR / MANIFEST_FILE
    return (Target(selection.browsers[0], path, user_data_dir=selection.user_data_dir),)


def _default_target(browser: str, *, system: System, data_home: Path) -> Target:
    if system.is_windows:
        key = f"{_WINDOWS_KEYS[browser]}\\NativeMessagingHosts\\{NATIVE_HOST_NAME}"
        path = data_home / "native-host" / browser / MANIFEST_FILE
        return Target(browser, path, registry_key=key)
    return Target(browser, manifest_dir(browser, system=system) / MANIFEST_FILE)


def manifest_dir(browser: str, *, system: System) -> Path:
    """The per-user manifest folder of `browser` on macOS, Linux and other POSIX."""
    if system.is_mac:
        return system.home / "Library" / "Application Support" / _MAC_DIRS[browser] / HOSTS_DIR
    if browser == "firefox":
        return system.home / ".mozilla" / "native-messaging-hosts"
    return chromium_config_home(system) / _LINUX_DIRS[browser] / HOSTS_DIR


def chromium_config_home(system: System) -> Path:
    """The folder that holds Chromium-family user data folders on Linux.

    Chromium reads ``CHROME_CONFIG_HOME`` first, then ``XDG_CONFIG_HOME``; the XDG
    spec says to ignore a relative value.
    """
    for name in ("CHROME_CONFIG_HOME", "XDG_CONFIG_HOME"):
        value = system.env.get(name, "")
        if value and Path(value).is_absolute():
            return Path(value)
    return system.home / ".config"


def registry_display(key: str) -> str:
    return f"{REGISTRY_ROOT}\\{key}"
