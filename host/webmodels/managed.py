"""Managed policy: the system-wide config file an administrator deploys to a fleet.

The policy file has the user config file's keys (mirrors, commons_keys, preinstalled,
privacy_mode, the quotas, ...). A plain value is a default the user may change; a value
written as ``key = { value = ..., locked = true }`` is locked: the command line, the
environment, the user's config file and ``settings set`` (CLI or popup) cannot change
it. The order, strongest first: locked policy > flag > environment > user config file >
policy (unlocked) > built-in default (docs/fleet.md).

Where it lives: the platform's site config folder (``/etc/xdg/webmodels/config.toml``
on Linux), macOS's managed preferences (a property list) or the Windows registry
(policy_sources.py reads each). ``WEBMODELS_POLICY`` names another file (TOML, or a
``.plist``) only where no system-wide policy exists (tests, portable installs): a
user's environment cannot replace a deployed policy. Pure apart from `read_policy`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import platformdirs

from webmodels.errors import HostError
from webmodels.policy_sources import (
    MAC_POLICY,
    REGISTRY,
    REGISTRY_NAME,
    kind_of,
    load_document,
    read_registry,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    F = TypeVar("F", bound=DataclassInstance)

ENV_POLICY = "WEBMODELS_POLICY"
APP_NAME = "webmodels"
LOCKED_MESSAGE = "{key} is set by your administrator ({path}) and cannot be changed here"

# Where each source of a setting comes from, as `doctor` and `settings get` name it.
LOCKED = "policy (locked)"
FLAG = "command line"
ENV = "environment"
USER = "user config"
POLICY = "policy"
SETTING = "settings"  # the popup's or `webmodels settings set`'s choice, kept in the store
DEFAULT = "default"

# The settings a flag or an environment variable can also give: (Flags field, env var).
OVERRIDES: Mapping[str, tuple[str | None, str | None]] = {
    "home": ("home", "WEBMODELS_HOME"),
    "log_dir": ("log_dir", "WEBMODELS_LOG_DIR"),
    "preinstalled": ("preinstalled", "WEBMODELS_PREINSTALLED"),
    "log_level": ("log_level", "WEBMODELS_LOG_LEVEL"),
    "local_network_origins": (None, "WEBMODELS_LOCAL_NETWORK_ORIGINS"),
}


@dataclass(frozen=True, slots=True)
class Policy:
    path: Path | None = None  # the file read (None: no policy)
    values: Mapping[str, Any] = field(default_factory=dict)  # unwrapped, locked or not
    locked: frozenset[str] = frozenset()
    kind: str | None = None  # policy_sources: TOML file, property list, Windows registry
    registry: str | None = None  # the registry key read (then `path` is None)

    @property
    def source(self) -> str | None:
        """Where the policy was read, as `doctor` and refusals name it."""
        return self.registry or (None if self.path is None else str(self.path))

    def merged(self, user_values: Mapping[str, Any]) -> dict[str, Any]:
        """The config file values in force: unlocked policy under the user's file,
        locked policy over it."""
        defaults = {k: v for k, v in self.values.items() if k not in self.locked}
        return {**defaults, **user_values, **{k: self.values[k] for k in self.locked}}

    def without_overrides(self, flags: F, env: Mapping[str, str]) -> tuple[F, dict[str, str]]:
        """`flags` and `env` with every flag and variable of a locked setting removed."""
        fields = {OVERRIDES[k][0]: None for k in self.locked if k in OVERRIDES}
        fields.pop(None, None)
        names = {OVERRIDES[k][1] for k in self.locked if k in OVERRIDES}
        kept = {k: v for k, v in env.items() if k not in names}
        return dataclasses.replace(flags, **{str(k): v for k, v in fields.items()}), kept

    def check_unlocked(self, key: str) -> None:
        """Refuse to change a locked setting (``settings set``, the popup)."""
        if key in self.locked:
            raise HostError("access_denied", LOCKED_MESSAGE.format(key=key, path=self.source))


def parse_policy(
    document: Mapping[str, Any],
    *,
    path: Path | None = None,
    kind: str | None = None,
    registry: str | None = None,
) -> Policy:
    """A parsed TOML policy: ``key = value`` or ``key = {value = ..., locked = true}``."""
    values: dict[str, Any] = {}
    locked: set[str] = set()
    for key, raw in document.items():
        if isinstance(raw, dict) and "value" in raw:
            extra = set(raw) - {"value", "locked"}
            if extra or not isinstance(raw.get("locked", False), bool):
                raise HostError(
                    "bad_request",
                    f"policy key {key} takes {{ value = ..., locked = true|false }} only",
                )
            values[key] = raw["value"]
            if raw.get("locked", False):
                locked.add(key)
        else:
            values[key] = raw
    return Policy(path=path, values=values, locked=frozenset(locked), kind=kind, registry=registry)


def system_policy_files() -> tuple[Path, ...]:
    """The system-wide policy files, first found wins. On Linux ``/etc/xdg`` comes
    first whatever ``XDG_CONFIG_DIRS`` says (a user sets that variable)."""
    dirs = platformdirs.site_config_dir(APP_NAME, appauthor=False, multipath=True)
    found = [Path(d) / "config.toml" for d in dirs.split(os.pathsep) if d]
    if sys.platform.startswith("linux"):
        found.insert(0, Path("/etc/xdg") / APP_NAME / "config.toml")
    elif sys.platform == "darwin":
        found.insert(0, MAC_POLICY)
    return tuple(dict.fromkeys(found))


def read_policy(env: Mapping[str, str], *, system_files: Sequence[Path] | None = None) -> Policy:
    """The policy in force: the Windows registry's, else the first system-wide file that
    exists, else the file ``WEBMODELS_POLICY`` names, else none."""
    if system_files is None and (document := read_registry()) is not None:
        return parse_policy(document, kind=REGISTRY, registry=REGISTRY_NAME)
    candidates = system_policy_files() if system_files is None else tuple(system_files)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None and env.get(ENV_POLICY):
        path = Path(env[ENV_POLICY]).expanduser()
    if path is None:
        return Policy()
    try:
        document = load_document(path)
    except FileNotFoundError:
        return Policy(path=path, kind=kind_of(path))
    return parse_policy(document, path=path, kind=kind_of(path))


def sources(
    keys: Collection[str],
    *,
    policy: Policy,
    flags_given: Collection[str],
    env: Mapping[str, str],
    user_values: Mapping[str, Any],
) -> dict[str, str]:
    """Where each setting's value came from (`flags_given`: the Flags fields set)."""
    found: dict[str, str] = {}
    for key in sorted(set(keys) | set(policy.values) | set(user_values)):
        flag, variable = OVERRIDES.get(key, (None, None))
        if key in policy.locked:
            found[key] = LOCKED
        elif flag is not None and flag in flags_given:
            found[key] = FLAG
        elif variable is not None and env.get(variable):
            found[key] = ENV
        elif key in user_values:
            found[key] = USER
        elif key in policy.values:
            found[key] = POLICY
        else:
            found[key] = DEFAULT
    return found
