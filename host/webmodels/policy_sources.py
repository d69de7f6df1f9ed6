"""Where an administrator's policy is read from on each platform, as one document shape.

* a TOML file (Linux's ``/etc/xdg/webmodels/config.toml``, or any file
  ``WEBMODELS_POLICY`` names);
* a property list (macOS: ``/Library/Managed Preferences/org.webmodels.plist``, what a
  configuration profile for the ``org.webmodels`` domain installs; any ``.plist`` file);
* the Windows registry (``HKLM\\Software\\Policies\\webmodels``).

Every reader gives `managed.parse_policy` the TOML policy's shape: ``key = value`` (a
default) or ``key = {value = ..., locked = true}``. A property list holds exactly that
(a dict with ``value`` and ``locked`` for a locked key). The registry has no nested
values, so it follows Chrome's own policy layout: a value directly under the key is
locked, one under its ``Recommended`` subkey is a default; strings holding JSON (lists,
tables, numbers) are decoded, multi-strings are lists, DWORD/QWORD values numbers.
Pure apart from `load_document` and `read_registry`; the registry reader is not run on
other platforms (its decoding, `registry_document`, is tested everywhere).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from webmodels.errors import HostError

BUNDLE_ID = "org.webmodels"
MAC_POLICY = Path("/Library/Managed Preferences") / f"{BUNDLE_ID}.plist"
REGISTRY_KEY = r"Software\Policies\webmodels"
REGISTRY_NAME = "HKLM\\" + REGISTRY_KEY
RECOMMENDED = "Recommended"

TOML, PLIST, REGISTRY = "TOML file", "property list", "Windows registry"

# winreg's value types (the numbers are Windows' own, so decoding is testable anywhere).
REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 4, 7, 11


def kind_of(path: Path) -> str:
    return PLIST if path.suffix == ".plist" else TOML


def load_document(path: Path) -> dict[str, Any]:
    """The policy document a TOML file or a property list holds (FileNotFoundError
    passes through; anything unreadable is a HostError)."""
    if kind_of(path) == PLIST:
        import plistlib
        from xml.parsers.expat import ExpatError

        try:
            with path.open("rb") as fh:
                document = plistlib.load(fh)
        except (OSError, plistlib.InvalidFileException, ValueError, ExpatError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise HostError("bad_request", f"cannot read policy file {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise HostError("bad_request", f"policy file {path} must hold a dictionary")
        return document
    import tomllib  # here: most hosts have no policy file, and start without a TOML parser

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise HostError("bad_request", f"cannot read policy file {path}: {exc}") from exc


def registry_value(data: object, kind: int) -> Any:
    """One registry value as a policy value."""
    if kind in (REG_DWORD, REG_QWORD) and isinstance(data, int):
        return data
    if kind == REG_MULTI_SZ and isinstance(data, list):
        return [str(v) for v in data]
    if kind in (REG_SZ, REG_EXPAND_SZ) and isinstance(data, str):
        try:
            decoded = json.loads(data)
        except ValueError:
            return data  # a plain string ("strict", a folder)
        return data if isinstance(decoded, str) else decoded
    raise HostError("bad_request", f"policy registry value of type {kind} is not supported")


def registry_document(
    locked: Iterable[tuple[str, object, int]], recommended: Iterable[tuple[str, object, int]]
) -> dict[str, Any]:
    """The policy document of the registry's (name, data, type) values: those under the
    key itself locked, those under ``Recommended`` defaults (a locked one wins)."""
    document: dict[str, Any] = {name: registry_value(d, k) for name, d, k in recommended}
    for name, data, kind in locked:
        document[name] = {"value": registry_value(data, kind), "locked": True}
    return document


def _values(key: Any) -> list[tuple[str, object, int]]:  # pragma: no cover - Windows only
    import winreg

    found = []
    index = 0
    while True:
        try:
            found.append(winreg.EnumValue(key, index))  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return found
        index += 1


def read_registry() -> Mapping[str, Any] | None:  # pragma: no cover - Windows only
    """The registry's policy document, or None where there is no policy key."""
    if sys.platform != "win32":
        return None
    import winreg

    hive = winreg.HKEY_LOCAL_MACHINE  # type: ignore[attr-defined,unused-ignore]
    try:
        root = winreg.OpenKey(hive, REGISTRY_KEY)  # type: ignore[attr-defined,unused-ignore]
    except OSError:
        return None
    with root:
        try:
            sub = winreg.OpenKey(root, RECOMMENDED)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            recommended = []
        else:
            with sub:
                recommended = _values(sub)
        return registry_document(_values(root), recommended)
