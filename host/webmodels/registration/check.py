"""Is the host registered with each browser, and would the browser accept it?

`check_registrations` never raises: `webmodels doctor` shows one line per
browser, and a browser that is not installed is simply "not installed".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels import NATIVE_HOST_NAME
from webmodels.config import Config
from webmodels.errors import HostError
from webmodels.registration.documents import MAX_MANIFEST_BYTES, extension_origin
from webmodels.registration.execute import Registry, system_registry
from webmodels.registration.locations import (
    BROWSERS,
    CHROMIUM_FAMILY,
    Selection,
    System,
    Target,
    registry_display,
    resolve_targets,
)


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    browser: str
    manifest_path: Path
    installed: bool  # a manifest for our host is where the browser looks
    problems: tuple[str, ...] = ()  # why the browser would refuse or fail to start it

    @property
    def ok(self) -> bool:
        return self.installed and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "browser": self.browser,
            "manifest_path": str(self.manifest_path),
            "installed": self.installed,
            "problems": list(self.problems),
        }


def check_registrations(
    config: Config,
    *,
    platform: str | None = None,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    browsers: Sequence[str] = BROWSERS,
    user_data_dir: Path | None = None,
    registry: Registry | None = None,
) -> list[RegistrationStatus]:
    """One status per browser in `browsers` (per-user registrations only)."""
    system = System.current(platform=platform, home=home, env=env)
    if registry is None and system.is_windows:
        registry = system_registry()
    statuses = []
    for browser in browsers:
        try:
            selection = Selection((browser,), user_data_dir)
            (target,) = resolve_targets(selection, system=system, data_home=config.home)
        except (HostError, KeyError) as exc:
            reason = exc.message if isinstance(exc, HostError) else f"unknown browser {exc}"
            statuses.append(RegistrationStatus(browser, Path(), False, (reason,)))
            continue
        statuses.append(_check_target(target, config=config, system=system, registry=registry))
    return statuses


def _check_target(
    target: Target, *, config: Config, system: System, registry: Registry | None
) -> RegistrationStatus:
    path = target.manifest_path
    key = target.registry_key
    if key is not None:
        try:
            value = registry.get_default(key) if registry is not None else None
        except OSError as exc:
            problem = f"cannot read {registry_display(key)}: {exc}"
            return RegistrationStatus(target.browser, path, False, (problem,))
        if value is None:
            return RegistrationStatus(target.browser, path, False)
        path = Path(value)  # the browser follows the registry, wherever it points
    try:
        with path.open("rb") as fh:
            content = fh.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        missing = (f"{registry_display(key)} points at a missing file",) if key else ()
        return RegistrationStatus(target.browser, path, False, missing)
    except OSError as exc:
        return RegistrationStatus(target.browser, path, True, (f"cannot read it: {exc}",))
    host_check = _windows_host_problem if system.is_windows else _posix_host_problem
    problems = manifest_problems(
        content, browser=target.browser, config=config, host_problem=host_check
    )
    return RegistrationStatus(target.browser, path, True, problems)


def manifest_problems(
    content: bytes,
    *,
    browser: str,
    config: Config,
    host_problem: Callable[[Path], str | None],
) -> tuple[str, ...]:
    """Why `browser` would refuse this manifest or fail to start its host (pure
    but for `host_problem`, which looks at the host program)."""
    if len(content) > MAX_MANIFEST_BYTES:
        return ("the manifest is over 1 MiB; browsers refuse it",)
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return (f"the manifest is not valid JSON ({exc})",)
    if not isinstance(document, dict):
        return ("the manifest is not a JSON object",)
    problems = []
    if document.get("name") != NATIVE_HOST_NAME:
        problems.append(f"it names host {document.get('name')!r}, not {NATIVE_HOST_NAME!r}")
    if document.get("type") != "stdio":
        problems.append(f"its type is {document.get('type')!r}, not 'stdio'")
    problems += _path_problems(document.get("path"), host_problem)
    problems += _allowed_problems(document, browser=browser, config=config)
    return tuple(problems)


def _path_problems(value: object, host_problem: Callable[[Path], str | None]) -> list[str]:
    if not isinstance(value, str) or not value:
        return ["it has no host path"]
    path = Path(value)
    if not path.is_absolute():
        return [f"its host path {value} is not absolute"]
    problem = host_problem(path)
    return [problem] if problem else []


def _allowed_problems(document: dict[str, Any], *, browser: str, config: Config) -> list[str]:
    if browser in CHROMIUM_FAMILY:
        field = "allowed_origins"
        wanted = [extension_origin(i) for i in config.chromium_extension_ids]
    else:
        field, wanted = "allowed_extensions", list(config.firefox_extension_ids)
    allowed = document.get(field)
    if not isinstance(allowed, list):
        return [f"it has no {field} list"]
    return [f"its {field} does not include {w}" for w in wanted if w not in allowed]


def _posix_host_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"the host program {path} does not exist; run `webmodels install` again"
    if not os.access(path, os.X_OK):
        return f"the host program {path} is not executable (chmod 755 it)"
    return None


def _windows_host_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"the host program {path} does not exist; run `webmodels install` again"
    return None
