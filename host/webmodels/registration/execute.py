"""Carrying out install and uninstall plans: the only module here that writes.

Every file is written atomically (a process-unique temporary file in the same
folder, then ``os.replace``), so a browser never reads half a manifest. OS
errors become `HostError`s that name the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from webmodels.errors import HostError
from webmodels.registration.documents import MAX_MANIFEST_BYTES
from webmodels.registration.locations import registry_display
from webmodels.registration.plans import (
    REMOVE,
    FileWrite,
    InstallPlan,
    Registration,
    Removal,
    Survey,
    UninstallPlan,
    survey_paths,
)
from webmodels.registration.receipt import Receipt, damaged_receipt


class Registry(Protocol):
    """Default values of keys under HKEY_CURRENT_USER (Windows only)."""

    def get_default(self, key: str) -> str | None: ...

    def set_default(self, key: str, value: str) -> tuple[str, ...]:
        """Set the default value, creating the key; return the keys created, parents first."""
        ...

    def delete_key(self, key: str) -> bool: ...

    def delete_key_if_empty(self, key: str) -> bool: ...


def system_registry() -> Registry | None:
    """The Windows registry on Windows; None elsewhere."""
    if sys.platform == "win32":
        from webmodels.registration.windows_registry import WindowsRegistry

        return WindowsRegistry()
    return None


@contextmanager
def os_errors(action: str, where: Path | str) -> Iterator[None]:
    """Translate OS errors at the edge into `HostError`s that say what to do."""
    try:
        yield
    except PermissionError as exc:
        raise HostError(
            "access_denied",
            f"cannot {action} {where}: permission denied; fix its permissions or choose "
            "another location (--user-data-dir, --store)",
            path=str(where),
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise HostError("disk_full", f"cannot {action} {where}: no space left") from exc
        reason = exc.strerror or str(exc)
        raise HostError("internal", f"cannot {action} {where}: {reason}", path=str(where)) from exc


def atomic_write(path: Path, content: bytes, *, mode: int) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.incomplete")
    with os_errors("write", path):
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(temp, mode)  # os.open's mode is filtered by the umask
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise


def ensure_dir(path: Path) -> tuple[Path, ...]:
    """Create `path` and its missing parents; return those created, parents first."""
    missing: list[Path] = []
    with os_errors("inspect", path):
        probe = path
        while not probe.exists() and probe.parent != probe:
            missing.append(probe)
            probe = probe.parent
    created: list[Path] = []
    for folder in reversed(missing):
        with os_errors("create folder", folder):
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    raise HostError(
                        "bad_request", f"{folder} is in the way: it should be a folder"
                    ) from None
                continue
        created.append(folder)
    return tuple(created)


def load_receipt(path: Path) -> Receipt:
    with os_errors("read", path):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Receipt()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise damaged_receipt(path, str(exc)) from exc
    return Receipt.from_json(value, source=path)


def save_receipt(path: Path, receipt: Receipt) -> None:
    text = json.dumps(receipt.to_json(), indent=2) + "\n"
    atomic_write(path, text.encode("utf-8"), mode=0o644)


@dataclass(frozen=True, slots=True)
class InstallResult:
    plan: InstallPlan
    created_dirs: tuple[Path, ...]
    receipt: Receipt


@dataclass(slots=True)
class _Progress:
    """What install has done so far; recorded even when a later step fails."""

    receipt: Receipt
    created_dirs: list[Path] = field(default_factory=list)
    created_keys: list[str] = field(default_factory=list)

    def result(self) -> Receipt:
        return self.receipt.with_created(dirs=self.created_dirs, registry_keys=self.created_keys)


def execute_install(plan: InstallPlan, *, registry: Registry | None = None) -> InstallResult:
    progress = _Progress(receipt=load_receipt(plan.receipt_path))
    try:
        _install(plan, progress, registry)
    except BaseException:
        # Record what was written, so that uninstall can still remove it.
        with contextlib.suppress(HostError):
            _save_if_any(plan.receipt_path, progress.result())
        raise
    receipt = progress.result()
    save_receipt(plan.receipt_path, receipt)
    return InstallResult(plan, tuple(progress.created_dirs), receipt)


def _install(plan: InstallPlan, progress: _Progress, registry: Registry | None) -> None:
    # One browser at a time (its folders, then its manifest), so that a failure
    # leaves the browsers before it fully registered. The folders are plan.dirs.
    _write(plan.launcher, progress)
    progress.receipt = replace(progress.receipt, launcher=plan.launcher.record())
    for registration in plan.registrations:
        _write(registration.manifest, progress)
        progress.receipt = progress.receipt.with_registration(registration.record())
        progress.created_keys += _set_key(registration, registry)


def _write(file: FileWrite, progress: _Progress) -> None:
    progress.created_dirs += ensure_dir(file.path.parent)
    atomic_write(file.path, file.content, mode=file.mode)


def _set_key(registration: Registration, registry: Registry | None) -> tuple[str, ...]:
    key = registration.target.registry_key
    if key is None:
        return ()
    registry = _need(registry)
    with os_errors("set registry key", registry_display(key)):
        return registry.set_default(key, str(registration.manifest.path))


def _need(registry: Registry | None) -> Registry:
    if registry is None:
        raise HostError("internal", "this plan needs the Windows registry, which is not here")
    return registry


def _save_if_any(path: Path, receipt: Receipt) -> None:
    if not receipt.is_empty:
        save_receipt(path, receipt)


def survey(receipt: Receipt, *, registry: Registry | None = None) -> Survey:
    """Read what uninstall needs to decide what is still ours."""
    files = {p: c for p in survey_paths(receipt) if (c := _read_small(p)) is not None}
    values: dict[str, str] = {}
    for key in (r.registry_key for r in receipt.registrations if r.registry_key):
        with os_errors("read registry key", registry_display(key)):
            value = _need(registry).get_default(key)
        if value is not None:
            values[key] = value
    return Survey(files=files, registry=values)


def _read_small(path: Path) -> bytes | None:
    with os_errors("read", path):
        try:
            with path.open("rb") as fh:
                return fh.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return b""  # something else lives there now: not ours


@dataclass(frozen=True, slots=True)
class UninstallResult:
    plan: UninstallPlan
    removed_dirs: tuple[Path, ...]
    removed_registry_keys: tuple[str, ...]
    receipt: Receipt  # what is still recorded


def execute_uninstall(plan: UninstallPlan, *, registry: Registry | None = None) -> UninstallResult:
    for removal in plan.removals:
        _remove_registration(removal, registry)
    if plan.launcher is not None and plan.launcher.action == REMOVE:
        remove_file(plan.launcher.record.path)
    left = plan.remaining
    forget = not left.registrations and left.launcher is None
    if forget:
        remove_file(plan.receipt_path)
    removed_dirs = tuple(d for d in plan.dirs if remove_dir_if_empty(d))
    removed_keys = tuple(k for k in plan.registry_keys if _delete_key_if_empty(k, registry))
    if forget:
        return UninstallResult(plan, removed_dirs, removed_keys, Receipt())
    left = replace(
        left,
        created_dirs=tuple(d for d in left.created_dirs if d.is_dir()),
        created_registry_keys=tuple(k for k in left.created_registry_keys if k not in removed_keys),
    )
    save_receipt(plan.receipt_path, left)
    return UninstallResult(plan, removed_dirs, removed_keys, left)


def _remove_registration(removal: Removal, registry: Registry | None) -> None:
    record = removal.record
    if removal.action == REMOVE:
        remove_file(record.manifest.path)
    if removal.delete_registry_key and record.registry_key:
        with os_errors("delete registry key", registry_display(record.registry_key)):
            _need(registry).delete_key(record.registry_key)


def _delete_key_if_empty(key: str, registry: Registry | None) -> bool:
    if registry is None:
        return False
    with os_errors("delete registry key", registry_display(key)):
        return registry.delete_key_if_empty(key)


def remove_file(path: Path) -> None:
    with os_errors("remove", path), contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_dir_if_empty(path: Path) -> bool:
    with os_errors("remove folder", path):
        try:
            if any(path.iterdir()):
                return False
            path.rmdir()
        except (FileNotFoundError, NotADirectoryError):
            return False
    return True
