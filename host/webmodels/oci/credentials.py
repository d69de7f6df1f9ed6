"""Registry credentials from the Docker/ORAS ``config.json``, the file `docker login`
and `oras login` write: a credential helper named for the registry (``credHelpers``)
or for all registries (``credsStore``), else ``auths`` (base64 ``user:password`` per
registry). Only the user's file is read; a page never supplies credentials.

A helper is the program ``docker-credential-NAME`` on ``PATH``, run as Docker runs it:
``docker-credential-NAME get`` with the registry on stdin, answering
``{"ServerURL": ..., "Username": ..., "Secret": ...}`` on stdout (a non-zero exit:
no credentials); ``"Username": "<token>"`` means the secret is an identity token (an
OAuth2 refresh token, as is an ``auths`` entry's ``identitytoken``). It runs with a
timeout, so a helper that hangs (a locked keychain waiting for a prompt) costs at most
`HELPER_TIMEOUT_S` seconds and reads as none."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HELPER_TIMEOUT_S = 10.0
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
IDENTITY_TOKEN_USER = "<token>"  # a helper's answer holding an OAuth refresh token


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str
    # An OAuth2 refresh token (a helper's ``"Username": "<token>"`` answer, or an
    # ``auths`` entry's ``identitytoken``): traded at the registry's token service for
    # an access token (oci/auth.py), never sent to the registry itself.
    identity_token: str | None = None


def config_path(env: Mapping[str, str], home: Path) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (where Docker and
    ORAS both look)."""
    folder = env.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else home / ".docker" / "config.json"


def find_credentials(
    path: Path, registry: str, *, timeout_s: float = HELPER_TIMEOUT_S
) -> Credentials | None:
    """The credentials stored for ``registry`` (host[:port]): from its helper if the file
    names one and it has them, else from ``auths``; None if none or the file is
    missing or unreadable (the registry then answers 401 and the user is told)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    helper = _helper_for(document, registry)
    found = _from_helper(helper, registry, timeout_s) if helper else None
    return found or _from_auths(document, registry)


def _helper_for(document: Mapping[str, object], registry: str) -> str | None:
    """``credHelpers``' entry for the registry, else ``credsStore``."""
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _host_of(key) == registry.lower() and isinstance(name, str):
                return name
    store = document.get("credsStore")
    return store if isinstance(store, str) and store else None


def _from_helper(name: str, registry: str, timeout_s: float) -> Credentials | None:
    """``docker-credential-NAME get``, the registry on stdin, JSON on stdout."""
    program = shutil.which(f"docker-credential-{name}") if _HELPER_NAME.fullmatch(name) else None
    if program is None:
        log.warning("credential helper docker-credential-%s is not on PATH", name)
        return None
    try:
        done = subprocess.run(
            [program, "get"],
            input=registry,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("credential helper %s gave nothing for %s: %s", name, registry, exc)
        return None
    if done.returncode != 0:  # "credentials not found in native keychain"
        return None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        log.warning("credential helper %s answered no JSON for %s", name, registry)
        return None
    user = answer.get("Username") if isinstance(answer, dict) else None
    secret = answer.get("Secret") if isinstance(answer, dict) else None
    if not isinstance(user, str) or not isinstance(secret, str) or not secret:
        return None
    if user == IDENTITY_TOKEN_USER:
        return Credentials(user, "", identity_token=secret)
    return Credentials(user, secret)


def _from_auths(document: Mapping[str, object], registry: str) -> Credentials | None:
    auths = document.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _host_of(key) == registry.lower() and isinstance(entry, dict):
            token = entry.get("identitytoken")
            if isinstance(token, str) and token:  # `docker login` to an OAuth registry
                found = _decode(entry.get("auth"))
                return Credentials(found.user if found else IDENTITY_TOKEN_USER, "", token)
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
