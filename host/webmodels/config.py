"""One frozen `Config`, built once: locked policy > flag > environment > config file >
policy > default (the system-wide policy file: managed.py).

Nothing here reads the environment at import time; `load_config` takes the
environment as an argument so tests and the CLI pass exactly what they mean.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from webmodels import STORE_LAYOUT, STORE_LAYOUT_V1
from webmodels.errors import HostError
from webmodels.managed import Policy, read_policy, sources

APP_NAME = "webmodels"

# The extension's fixed IDs. The Chromium ID is derived from the public key in
# manifests/extension-public-key.txt (a test checks it); Firefox uses the gecko id.
CHROMIUM_EXTENSION_ID = "nkalnjoncikobhonhokfhfdgffafbfch"
FIREFOX_EXTENSION_ID = "webmodels@webmodels.org"

ENV_HOME = "WEBMODELS_HOME"
ENV_CONFIG = "WEBMODELS_CONFIG"
ENV_PREINSTALLED = "WEBMODELS_PREINSTALLED"
ENV_LOG_DIR = "WEBMODELS_LOG_DIR"
ENV_LOG_LEVEL = "WEBMODELS_LOG_LEVEL"
ENV_LOCAL_NETWORK_ORIGINS = "WEBMODELS_LOCAL_NETWORK_ORIGINS"
ENV_STORE_SEGMENTS = "WEBMODELS_STORE_SEGMENTS"  # "1": as `[store] segments = true`


@dataclass(frozen=True, slots=True)
class Config:
    home: Path  # the data folder; the store lives in home / "store-v2"
    log_dir: Path
    preinstalled_dirs: tuple[Path, ...] = ()
    config_file: Path | None = None
    log_level: str = "INFO"
    chromium_extension_ids: tuple[str, ...] = (CHROMIUM_EXTENSION_ID,)
    firefox_extension_ids: tuple[str, ...] = (FIREFOX_EXTENSION_ID,)
    # Bounds (STYLE habit 7): every buffer and pool has one.
    max_workers: int = 8
    # Common models: keys that may sign commons lists, one list each (base64 raw
    # Ed25519, or "project"; None: the project's keys, commons/trust.py), and the probe budget.
    commons_keys: tuple[str, ...] | None = None
    commons_lists: tuple[Path, ...] = ()  # signed list files installed at start (a fleet's)
    probe_budget: int = 16
    probe_window_hours: float = 24.0
    # A download a page starts without a user gesture may be at most this big
    # (docs/design.md#privacy: starting a large download needs user activation).
    download_without_activation_bytes: int = 10_000_000
    # What one partition may hold in the store (docs/design.md#privacy: over it the requester gets
    # quota_exceeded; nothing of another site is ever evicted).
    quota_per_partition_bytes: int = 10 << 30
    # What the whole store may hold (None: as much as the disk takes). Once it is
    # reached every page's download or upload gets quota_exceeded, whatever its size
    # (a size-dependent answer would tell a page how much other sites hold), and
    # nothing is evicted.
    quota_total_bytes: int | None = None
    # Without quota_total_bytes, pages get quota_exceeded while less than this share of
    # the disk's size is free (one store-wide state, the same for every site and size).
    quota_keep_free_fraction: float = 0.1
    # Page origins (or "*") whose chosen model URLs may reach loopback and private
    # addresses, like Chrome's LocalNetworkAccessAllowedForUrls policy. Default: none;
    # a page reaches only addresses its own `fetch()` could (fetch/access.py).
    local_network_origins: tuple[str, ...] = ()
    # `webmodels gc` removes files kept in the store's quarantine folder this long.
    quarantine_days: float = 30.0
    # Sources that serve a file by its SHA-256 ("oci://REGISTRY/REPO", "https://…/"),
    # tried before a download's own URLs, as the host (fetch/mirrors.py, docs/oci.md).
    mirrors: tuple[str, ...] = ()
    # `[store] segments` (default true): new files are kept as segments (docs/segments.md),
    # so variants of one model share their tensors on disk, and files kept whole convert
    # in the background; false keeps new files whole (both read either way).
    store_segments: bool = True
    # The privacy mode where the user chose none in the popup (a locked policy: always).
    privacy_mode: str = "strict"
    # The administrator's policy (managed.py) and where each setting came from.
    policy: Policy = field(default_factory=Policy)
    sources: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def store_dir(self) -> Path:
        """``store-v2``, or ``store-v1`` while that one waits to be moved (store/layout.py)."""
        v1, v2 = self.home / STORE_LAYOUT_V1, self.home / STORE_LAYOUT
        return v1 if not v2.exists() and v1.is_dir() else v2


@dataclass(frozen=True, slots=True)
class Flags:
    """What the command line said (None: not given)."""

    home: Path | None = None
    config_file: Path | None = None
    preinstalled: Sequence[Path] | None = None
    log_dir: Path | None = None
    log_level: str | None = None


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def system_preinstalled_dirs() -> tuple[Path, ...]:
    """Folders an OS package or an administrator fills with models (and models.json)."""
    if sys.platform == "win32":
        base = os.environ.get("PROGRAMDATA")
        return (Path(base) / APP_NAME / "models",) if base else ()
    dirs = platformdirs.site_data_dir(APP_NAME, appauthor=False, multipath=True)
    return tuple(Path(d) / "models" for d in dirs.split(os.pathsep) if d)


def _mirrors(value: object) -> tuple[str, ...]:
    if value == []:  # most configs: no mirrors, and fetch/mirrors.py loads `requests`
        return ()
    from webmodels.fetch.mirrors import parse_mirrors

    return parse_mirrors(value)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        fh = path.open("rb")
    except FileNotFoundError:  # most installs: no config file, and no TOML parser loaded
        return {}
    except OSError as exc:
        raise HostError("bad_request", f"cannot read config file {path}: {exc}") from exc
    import tomllib  # here: every host start reads this module, few have a config file

    try:
        with fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HostError("bad_request", f"cannot read config file {path}: {exc}") from exc


def _paths(value: object, *, where: str) -> tuple[Path, ...]:
    if isinstance(value, str):
        return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(Path(v).expanduser() for v in value)
    raise HostError("bad_request", f"{where} must be a list of folders")


def load_config(flags: Flags | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting once, in the order locked policy > flag > env > config file
    > policy > default."""
    env = os.environ if env is None else env
    policy = read_policy(env)
    flags, env = policy.without_overrides(flags or Flags(), env)
    config_file = flags.config_file or _env_path(env, ENV_CONFIG) or default_config_file()
    user_values = read_config_file(config_file)
    file_values = policy.merged(user_values)

    explicit_home = flags.home or _env_path(env, ENV_HOME) or _file_path(file_values, "home")
    home = explicit_home or Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    log_dir = (
        flags.log_dir
        or _env_path(env, ENV_LOG_DIR)
        or _file_path(file_values, "log_dir")
        # A store moved elsewhere (tests, portable installs) keeps its logs beside it.
        or (home / "logs" if explicit_home else None)
        or Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    )
    if flags.preinstalled is not None:
        preinstalled = tuple(flags.preinstalled)
    elif env.get(ENV_PREINSTALLED):
        preinstalled = _paths(env[ENV_PREINSTALLED], where=ENV_PREINSTALLED)
    else:
        preinstalled = _paths(file_values.get("preinstalled", []), where="preinstalled")
    if file_values.get("system_preinstalled", True) is not False:
        preinstalled += tuple(p for p in system_preinstalled_dirs() if p not in preinstalled)
    level = flags.log_level or env.get(ENV_LOG_LEVEL) or file_values.get("log_level") or "INFO"
    return Config(
        home=home.expanduser().absolute(),
        log_dir=log_dir.expanduser().absolute(),
        preinstalled_dirs=tuple(p.absolute() for p in preinstalled),
        config_file=config_file,
        log_level=str(level).upper(),
        chromium_extension_ids=_extension_ids(file_values.get("chromium_extension_ids", [])),
        commons_keys=_strings(file_values.get("commons_keys"), where="commons_keys"),
        commons_lists=_paths(file_values.get("commons_lists", []), where="commons_lists"),
        probe_budget=int(
            _positive(file_values.get("probe_budget", 16), where="probe_budget", whole=True)
        ),
        probe_window_hours=_positive(
            file_values.get("probe_window_hours", 24.0), where="probe_window_hours"
        ),
        download_without_activation_bytes=int(
            _positive(
                file_values.get("download_without_activation_bytes", 10_000_000),
                where="download_without_activation_bytes",
                whole=True,
            )
        ),
        quota_per_partition_bytes=int(
            _positive(
                file_values.get("quota_per_partition_bytes", 10 << 30),
                where="quota_per_partition_bytes",
                whole=True,
            )
        ),
        quota_total_bytes=(
            None
            if file_values.get("quota_total_bytes") is None
            else int(
                _positive(file_values["quota_total_bytes"], where="quota_total_bytes", whole=True)
            )
        ),
        quota_keep_free_fraction=_fraction(
            file_values.get("quota_keep_free_fraction", 0.1), where="quota_keep_free_fraction"
        ),
        local_network_origins=_local_network_origins(env, file_values),
        quarantine_days=_positive(
            file_values.get("quarantine_days", 30.0), where="quarantine_days"
        ),
        mirrors=_mirrors(file_values.get("mirrors", [])),
        privacy_mode=_privacy_mode(file_values.get("privacy_mode", "strict")),
        store_segments=_store_segments(file_values.get("store", {}), env),
        policy=policy,
        sources=sources(
            _KNOWN_KEYS,
            policy=policy,
            flags_given={f.name for f in fields(flags) if getattr(flags, f.name) is not None},
            env=env,
            user_values=user_values,
        ),
        extra={k: v for k, v in file_values.items() if k not in _KNOWN_KEYS},
    )


_KNOWN_KEYS = {
    "home",
    "chromium_extension_ids",
    "log_dir",
    "preinstalled",
    "system_preinstalled",
    "log_level",
    "commons_keys",
    "commons_lists",
    "probe_budget",
    "probe_window_hours",
    "download_without_activation_bytes",
    "quota_per_partition_bytes",
    "quota_total_bytes",
    "quota_keep_free_fraction",
    "local_network_origins",
    "quarantine_days",
    "mirrors",
    "privacy_mode",
    "store",
}


def _store_segments(table: object, env: Mapping[str, str]) -> bool:
    if env.get(ENV_STORE_SEGMENTS):
        return env[ENV_STORE_SEGMENTS] == "1"
    if not isinstance(table, dict):
        raise HostError("bad_request", "[store] in the config file must be a table")
    value = table.get("segments", True)
    if not isinstance(value, bool):
        raise HostError("bad_request", "[store] segments in the config file must be true or false")
    return value


def _privacy_mode(value: object) -> str:
    if value not in ("strict", "relaxed"):
        raise HostError("bad_request", "config key privacy_mode must be strict or relaxed")
    return str(value)


def _local_network_origins(env: Mapping[str, str], values: Mapping[str, Any]) -> tuple[str, ...]:
    """Space-separated in the environment, a list in the config file."""
    if ENV_LOCAL_NETWORK_ORIGINS in env:
        return tuple(env[ENV_LOCAL_NETWORK_ORIGINS].split())
    value = values.get("local_network_origins", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HostError("bad_request", "config key local_network_origins must list origins")
    return tuple(value)


def _strings(value: object, *, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise HostError("bad_request", f"config key {where} must be a non-empty list of strings")


def _extension_ids(value: object) -> tuple[str, ...]:
    """The project's extension ID and those of the Chromium-family extension builds a
    fleet signs itself (a self-hosted CRX has its own ID, docs/fleet.md)."""
    if isinstance(value, list) and all(
        isinstance(v, str) and re.fullmatch("[a-p]{32}", v) for v in value
    ):
        return tuple(dict.fromkeys([CHROMIUM_EXTENSION_ID, *value]))
    raise HostError(
        "bad_request", "config key chromium_extension_ids must be a list of extension IDs"
    )


def _positive(value: object, *, where: str, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise HostError("bad_request", f"config key {where} must be a positive number")
    if whole and not isinstance(value, int):
        raise HostError("bad_request", f"config key {where} must be a whole number")
    return value


def _fraction(value: object, *, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise HostError("bad_request", f"config key {where} must be a number from 0 to below 1")
    return float(value)


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    return Path(value).expanduser() if value else None


def _file_path(values: Mapping[str, Any], key: str) -> Path | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HostError("bad_request", f"config key {key!r} must be a path string")
    return Path(value).expanduser()
