"""The install receipt: what `install` wrote, so `uninstall` removes exactly that.

Stored as ``<home>/native-host/receipt.json``::

    {
      "layout": "native-host-receipt-v1",
      "launcher": {"path": "...", "sha256": "..."},
      "registrations": [
        {"browser": "chromium", "path": "...", "sha256": "...",
         "registry_key": null, "user_data_dir": null}
      ],
      "created_dirs": ["..."],
      "created_registry_keys": ["..."]
    }

This module is pure: converting to and from JSON and merging; reading and
writing the file is in `webmodels.registration.execute`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from webmodels.errors import HostError
from webmodels.registration.locations import MANIFEST_FILE

T = TypeVar("T")

RECEIPT_LAYOUT = "native-host-receipt-v1"
RECEIPT_FILE = "receipt.json"
NATIVE_HOST_DIR = "native-host"
LAUNCHER_NAMES = ("webmodels-host", "webmodels-host.bat")


def native_host_dir(home: Path) -> Path:
    """``<home>/native-host``: the launcher, the receipt and (Windows) the manifests."""
    return home / NATIVE_HOST_DIR


def receipt_path(home: Path) -> Path:
    return native_host_dir(home) / RECEIPT_FILE


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: Path
    sha256: str


@dataclass(frozen=True, slots=True)
class RegistrationRecord:
    browser: str
    manifest: FileRecord
    registry_key: str | None = None
    user_data_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    launcher: FileRecord | None = None
    registrations: tuple[RegistrationRecord, ...] = ()
    created_dirs: tuple[Path, ...] = ()
    created_registry_keys: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return (
            self.launcher is None
            and not self.registrations
            and not self.created_dirs
            and not self.created_registry_keys
        )

    def with_registration(self, record: RegistrationRecord) -> Receipt:
        """Add `record`, replacing an older record of the same browser and file."""
        kept = tuple(
            r
            for r in self.registrations
            if (r.browser, r.manifest.path) != (record.browser, record.manifest.path)
        )
        return replace(self, registrations=(*kept, record))

    def with_created(
        self, *, dirs: Iterable[Path] = (), registry_keys: Iterable[str] = ()
    ) -> Receipt:
        return replace(
            self,
            created_dirs=_union(self.created_dirs, dirs),
            created_registry_keys=_union(self.created_registry_keys, registry_keys),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": RECEIPT_LAYOUT,
            "launcher": _file_json(self.launcher) if self.launcher else None,
            "registrations": [_registration_json(r) for r in self.registrations],
            "created_dirs": [str(d) for d in self.created_dirs],
            "created_registry_keys": list(self.created_registry_keys),
        }

    @classmethod
    def from_json(cls, value: object, *, source: Path) -> Receipt:
        try:
            return _parse_receipt(value)
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged_receipt(source, str(exc)) from exc


def damaged_receipt(source: Path, reason: str) -> HostError:
    return HostError(
        "internal",
        f"the install receipt {source} is damaged ({reason}); remove the manifests "
        "by hand, delete the receipt and run `webmodels install` again",
        path=str(source),
    )


def _union(old: tuple[T, ...], new: Iterable[T]) -> tuple[T, ...]:
    items = list(old)
    items += [n for n in new if n not in items]
    return tuple(items)


def _file_json(record: FileRecord) -> dict[str, str]:
    return {"path": str(record.path), "sha256": record.sha256}


def _registration_json(record: RegistrationRecord) -> dict[str, Any]:
    return {
        "browser": record.browser,
        **_file_json(record.manifest),
        "registry_key": record.registry_key,
        "user_data_dir": str(record.user_data_dir) if record.user_data_dir else None,
    }


def _parse_receipt(value: object) -> Receipt:
    if not isinstance(value, Mapping) or value.get("layout") != RECEIPT_LAYOUT:
        raise ValueError(f"not a {RECEIPT_LAYOUT} document")
    launcher = _parse_file(value["launcher"]) if value.get("launcher") is not None else None
    if launcher is not None and launcher.path.name not in LAUNCHER_NAMES:
        raise ValueError(f"{launcher.path} is not a launcher")
    return Receipt(
        launcher=launcher,
        registrations=tuple(_parse_registration(r) for r in value["registrations"]),
        created_dirs=tuple(Path(_text(d)) for d in value["created_dirs"]),
        created_registry_keys=tuple(_text(k) for k in value["created_registry_keys"]),
    )


def _parse_file(value: object) -> FileRecord:
    if not isinstance(value, Mapping):
        raise TypeError("a file record must be an object")
    path = Path(_text(value["path"]))
    if not path.is_absolute():
        raise ValueError(f"relative path {path}")
    return FileRecord(path=path, sha256=_text(value["sha256"]))


def _parse_registration(value: object) -> RegistrationRecord:
    if not isinstance(value, Mapping):
        raise TypeError("a registration must be an object")
    key = value.get("registry_key")
    profile = value.get("user_data_dir")
    manifest = _parse_file(value)
    # Uninstall deletes what the receipt names: never anything but our manifests.
    if manifest.path.name != MANIFEST_FILE:
        raise ValueError(f"{manifest.path} is not a {MANIFEST_FILE}")
    return RegistrationRecord(
        browser=_text(value["browser"]),
        manifest=manifest,
        registry_key=_text(key) if key is not None else None,
        user_data_dir=Path(_text(profile)) if profile is not None else None,
    )


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"expected a string, got {value!r}")
    return value
