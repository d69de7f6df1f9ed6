"""Registry credentials from the Docker/ORAS ``config.json`` (``auths``: base64
``user:password`` per registry), the file `docker login` and `oras login` write.
Only the user's file is read; a page never supplies credentials."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str


def config_path(env: Mapping[str, str], home: Path) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (where Docker and
    ORAS both look)."""
    folder = env.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else home / ".docker" / "config.json"


def find_credentials(path: Path, registry: str) -> Credentials | None:
    """The credentials stored for ``registry`` (host[:port]); None if none or the file is
    missing or unreadable (the registry then answers 401 and the user is told)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _host_of(key) == registry.lower() and isinstance(entry, dict):
            return _decode(entry.get("auth"))
    return None


def _host_of(key: str) -> str:
    """Keys may be a bare host or a URL (``https://index.docker.io/v1/``)."""
    text = key.lower().split("://", 1)[-1]
    return text.split("/", 1)[0]


def _decode(value: object) -> Credentials | None:
    if not isinstance(value, str):
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = text.partition(":")
    return Credentials(user, password) if colon else None
