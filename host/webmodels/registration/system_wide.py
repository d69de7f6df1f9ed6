"""System-wide registration (``webmodels install --system``): the host manifest in the
folders every user's browser reads, and one launcher every user can run (pure).

Each user's host still keeps that user's own store and config (the launcher passes no
``--store``). ``root`` writes the same files under another folder (a package image, a
test), with the paths inside the manifests as they will be on the machine.

Sources: Chrome's "Native messaging" guide (``/etc/opt/chrome/native-messaging-hosts``,
``/etc/chromium/native-messaging-hosts``, ``/Library/Google/Chrome/NativeMessagingHosts``),
Microsoft Edge's native messaging page (``/etc/opt/edge/native-messaging-hosts``,
``/Library/Microsoft/Edge/NativeMessagingHosts``), MDN "Native manifests"
(``/usr/lib/mozilla/native-messaging-hosts``, ``/Library/Application Support/Mozilla/
NativeMessagingHosts``). Brave documents no system-wide folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.registration.documents import (
    launcher_name,
    launcher_script,
    manifest_document,
    render_manifest,
)
from webmodels.registration.locations import MANIFEST_FILE, System, Target
from webmodels.registration.plans import FileWrite, InstallPlan, Registration
from webmodels.registration.receipt import RECEIPT_FILE

_LINUX: Mapping[str, str] = {
    "chromium": "/etc/chromium/native-messaging-hosts",
    "chrome": "/etc/opt/chrome/native-messaging-hosts",
    "edge": "/etc/opt/edge/native-messaging-hosts",
    "firefox": "/usr/lib/mozilla/native-messaging-hosts",
}
_MAC: Mapping[str, str] = {
    "chromium": "/Library/Application Support/Chromium/NativeMessagingHosts",
    "chrome": "/Library/Google/Chrome/NativeMessagingHosts",
    "edge": "/Library/Microsoft/Edge/NativeMessagingHosts",
    "firefox": "/Library/Application Support/Mozilla/NativeMessagingHosts",
}
SYSTEM_BROWSERS: tuple[str, ...] = tuple(_LINUX)


def system_host_dir(system: System) -> Path:
    """Where the shared launcher (and the receipt of what was written) lives."""
    _refuse_windows(system)
    if system.is_mac:
        return Path("/Library/Application Support/webmodels")
    return Path("/usr/local/lib/webmodels")


def system_manifest_dir(browser: str, *, system: System) -> Path:
    _refuse_windows(system)
    table = _MAC if system.is_mac else _LINUX
    if browser not in table:
        raise HostError(
            "bad_request",
            f"{browser} has no documented system-wide native-messaging folder: "
            f"run `webmodels install --browser {browser}` as each user instead",
            flag="--browser",
        )
    return Path(table[browser])


def rooted(path: Path, root: Path | None) -> Path:
    """`path` as it is written: under `root` when one is given."""
    return path if root is None else root / path.relative_to(path.anchor)


def system_receipt_path(system: System, root: Path | None) -> Path:
    return rooted(system_host_dir(system) / RECEIPT_FILE, root)


def plan_system_install(
    config: Config,
    *,
    browsers: Sequence[str],
    system: System,
    python: str,
    root: Path | None = None,
) -> InstallPlan:
    """What ``install --system`` writes, without touching the disk."""
    host = system_host_dir(system) / launcher_name(system.platform)
    script = launcher_script(python=python, cli_args=(), platform=system.platform)
    launcher = FileWrite(rooted(host, root), script, 0o755)
    registrations = []
    for browser in browsers:
        path = rooted(system_manifest_dir(browser, system=system) / MANIFEST_FILE, root)
        document = manifest_document(browser, host_path=host, config=config)
        write = FileWrite(path, render_manifest(document), 0o644)
        registrations.append(Registration(Target(browser, path), write))
    dirs = tuple(
        dict.fromkeys([launcher.path.parent, *(r.manifest.path.parent for r in registrations)])
    )
    return InstallPlan(launcher, tuple(registrations), dirs, system_receipt_path(system, root))


def _refuse_windows(system: System) -> None:
    if system.is_windows:
        raise HostError(
            "bad_request",
            "install --system is not supported on Windows yet (it would write "
            "HKEY_LOCAL_MACHINE): run `webmodels install` as each user",
            flag="--system",
        )
