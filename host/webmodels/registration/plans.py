"""Plan-then-execute for `install` and `uninstall` (pure).

A plan says everything a command will do; ``--dry-run`` prints it and
`webmodels.registration.execute` carries it out. Planning never touches the
disk: uninstall plans from the receipt and a `Survey` of what is there now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.registration.documents import (
    is_our_launcher,
    launcher_name,
    launcher_script,
    manifest_document,
    names_our_host,
    render_manifest,
    sha256_hex,
)
from webmodels.registration.locations import Selection, System, Target, resolve_targets
from webmodels.registration.receipt import (
    FileRecord,
    Receipt,
    RegistrationRecord,
    native_host_dir,
    receipt_path,
)

T = TypeVar("T")

# What uninstall does with one file.
REMOVE = "remove"  # still ours: delete it
KEEP = "keep"  # changed since install: leave it alone
GONE = "gone"  # already deleted by someone else
IN_USE = "in_use"  # the launcher, while other registrations still need it


@dataclass(frozen=True, slots=True)
class FileWrite:
    path: Path
    content: bytes
    mode: int

    @property
    def sha256(self) -> str:
        return sha256_hex(self.content)

    def record(self) -> FileRecord:
        return FileRecord(path=self.path, sha256=self.sha256)


@dataclass(frozen=True, slots=True)
class Registration:
    target: Target
    manifest: FileWrite

    def record(self) -> RegistrationRecord:
        return RegistrationRecord(
            browser=self.target.browser,
            manifest=self.manifest.record(),
            registry_key=self.target.registry_key,
            user_data_dir=self.target.user_data_dir,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "browser": self.target.browser,
            "manifest_path": str(self.manifest.path),
            "registry_key": self.target.registry_key,
            "user_data_dir": _optional_str(self.target.user_data_dir),
            "manifest": json.loads(self.manifest.content),
        }


@dataclass(frozen=True, slots=True)
class InstallPlan:
    launcher: FileWrite
    registrations: tuple[Registration, ...]
    dirs: tuple[Path, ...]  # created when missing, in this order
    receipt_path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "launcher": {
                "path": str(self.launcher.path),
                "sha256": self.launcher.sha256,
                "content": self.launcher.content.decode("utf-8"),
            },
            "registrations": [r.to_json() for r in self.registrations],
            "dirs": [str(d) for d in self.dirs],
            "receipt_path": str(self.receipt_path),
        }


def plan_install(
    config: Config,
    *,
    selection: Selection,
    system: System,
    python: str,
    launcher_args: Sequence[str] = (),
) -> InstallPlan:
    """Everything `install` writes for `selection`, without touching the disk.

    `python` is the interpreter the launcher runs (``sys.executable``);
    `launcher_args` are global flags passed on to ``webmodels serve``.
    """
    if not python or not _is_absolute(python, system):
        raise HostError("internal", f"cannot tell this Python's absolute path ({python!r})")
    host_dir = native_host_dir(config.home)
    script = launcher_script(python=python, cli_args=launcher_args, platform=system.platform)
    launcher = FileWrite(host_dir / launcher_name(system.platform), script, 0o755)
    registrations = tuple(
        _registration(target, host_path=launcher.path, config=config)
        for target in resolve_targets(selection, system=system, data_home=config.home)
    )
    dirs = _unique([host_dir, *(r.manifest.path.parent for r in registrations)])
    return InstallPlan(launcher, registrations, dirs, receipt_path(config.home))


def _is_absolute(path: str, system: System) -> bool:
    # A Windows path such as C:\Python\python.exe is not absolute to PosixPath.
    return Path(path).is_absolute() or (system.is_windows and path[1:3] in (":\\", ":/"))


def _registration(target: Target, *, host_path: Path, config: Config) -> Registration:
    document = manifest_document(target.browser, host_path=host_path, config=config)
    return Registration(target, FileWrite(target.manifest_path, render_manifest(document), 0o644))


def _unique(items: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)
class Survey:
    """What is on disk (and in the registry) now, read just before planning."""

    files: Mapping[Path, bytes]  # path -> content; a missing file is absent
    registry: Mapping[str, str] = field(default_factory=dict)  # key -> default value


@dataclass(frozen=True, slots=True)
class Removal:
    record: RegistrationRecord
    action: str  # REMOVE, KEEP or GONE
    delete_registry_key: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "browser": self.record.browser,
            "manifest_path": str(self.record.manifest.path),
            "registry_key": self.record.registry_key,
            "user_data_dir": _optional_str(self.record.user_data_dir),
            "action": self.action,
            "delete_registry_key": self.delete_registry_key,
        }


@dataclass(frozen=True, slots=True)
class LauncherRemoval:
    record: FileRecord
    action: str  # REMOVE, KEEP, GONE or IN_USE


@dataclass(frozen=True, slots=True)
class UninstallPlan:
    removals: tuple[Removal, ...]
    launcher: LauncherRemoval | None
    dirs: tuple[Path, ...]  # created by install: removed when empty, deepest first
    registry_keys: tuple[str, ...]  # created by install: removed when empty, deepest first
    remaining: Receipt  # recorded afterwards (less the folders and keys removed)
    receipt_path: Path
    not_installed: tuple[str, ...]  # selected browsers with nothing recorded

    def to_json(self) -> dict[str, Any]:
        launcher = self.launcher
        return {
            "registrations": [r.to_json() for r in self.removals],
            "launcher": {"path": str(launcher.record.path), "action": launcher.action}
            if launcher
            else None,
            "dirs": [str(d) for d in self.dirs],
            "registry_keys": list(self.registry_keys),
            "receipt_path": str(self.receipt_path),
            "not_installed": list(self.not_installed),
        }


def survey_paths(receipt: Receipt) -> tuple[Path, ...]:
    """The files uninstall must look at before planning."""
    launcher = (receipt.launcher.path,) if receipt.launcher else ()
    return (*(r.manifest.path for r in receipt.registrations), *launcher)


def plan_uninstall(
    receipt: Receipt, *, selection: Selection, survey: Survey, receipt_path: Path
) -> UninstallPlan:
    """Undo the recorded registrations that `selection` names, and nothing else."""
    chosen = [r for r in receipt.registrations if _selected(r, selection)]
    left = tuple(r for r in receipt.registrations if not _selected(r, selection))
    launcher = _launcher_removal(receipt.launcher, survey=survey, in_use=bool(left))
    keep_launcher = launcher is not None and launcher.action == IN_USE
    return UninstallPlan(
        removals=tuple(_removal(r, survey) for r in chosen),
        launcher=launcher,
        dirs=tuple(sorted(receipt.created_dirs, key=lambda p: len(p.parts), reverse=True)),
        registry_keys=tuple(
            sorted(receipt.created_registry_keys, key=lambda k: k.count("\\"), reverse=True)
        ),
        remaining=Receipt(
            launcher=receipt.launcher if keep_launcher else None,
            registrations=left,
            created_dirs=receipt.created_dirs,
            created_registry_keys=receipt.created_registry_keys,
        ),
        receipt_path=receipt_path,
        not_installed=tuple(
            b for b in selection.browsers if not any(r.browser == b for r in chosen)
        ),
    )


def _selected(record: RegistrationRecord, selection: Selection) -> bool:
    return record.browser in selection.browsers and record.user_data_dir == selection.user_data_dir


def _removal(record: RegistrationRecord, survey: Survey) -> Removal:
    content = survey.files.get(record.manifest.path)
    if content is None:
        action = GONE
    elif sha256_hex(content) == record.manifest.sha256 or names_our_host(content):
        action = REMOVE
    else:
        action = KEEP
    key = record.registry_key
    # The key is ours while it still points at our manifest, even if the file is gone.
    ours = key is not None and survey.registry.get(key) == str(record.manifest.path)
    return Removal(record, action, delete_registry_key=ours and action != KEEP)


def _launcher_removal(
    record: FileRecord | None, *, survey: Survey, in_use: bool
) -> LauncherRemoval | None:
    if record is None:
        return None
    content = survey.files.get(record.path)
    if in_use:
        action = IN_USE
    elif content is None:
        action = GONE
    else:
        action = REMOVE if is_our_launcher(content, sha256=record.sha256) else KEEP
    return LauncherRemoval(record, action)


def _optional_str(path: Path | None) -> str | None:
    return None if path is None else str(path)
