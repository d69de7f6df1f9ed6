"""The registry's ``WWW-Authenticate`` challenge (RFC 7235) and the distribution token
flow: ``Basic`` → send the credentials; ``Bearer realm=…,service=…,scope=…`` → ask the
realm for a token (with the credentials if any, anonymous otherwise)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import requests

from webmodels.errors import HostError
from webmodels.oci.credentials import Credentials

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
TOKEN_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lowercased
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge:
    """The first challenge of a ``WWW-Authenticate`` header (pure)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def authorization(
    session: requests.Session, challenge: Challenge, credentials: Credentials | None
) -> str:
    """The ``Authorization`` header value that answers ``challenge``."""
    if challenge.scheme == "basic":
        if credentials is None:
            raise _no_credentials(challenge)
        pair = f"{credentials.user}:{credentials.password}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"
    if challenge.scheme == "bearer":
        return f"Bearer {_token(session, challenge, credentials)}"
    raise HostError(
        "download_failed", f"the registry asks for {challenge.scheme} auth, which is not supported"
    )


def _token(session: requests.Session, challenge: Challenge, credentials: Credentials | None) -> str:
    realm = challenge.params.get("realm")
    if not realm:
        raise HostError("download_failed", "the registry's bearer challenge names no realm")
    query = {k: v for k, v in challenge.params.items() if k in ("service", "scope")}
    auth = (credentials.user, credentials.password) if credentials else None
    try:
        reply = session.get(realm, params=query, auth=auth, timeout=TOKEN_TIMEOUT_S)
    except requests.RequestException as exc:
        raise HostError(
            "download_failed", f"cannot reach the registry's token service: {exc}"
        ) from exc
    if reply.status_code in (401, 403):
        raise _no_credentials(challenge)
    try:
        body = reply.json()
    except ValueError as exc:
        raise HostError("download_failed", "the registry's token service sent no JSON") from exc
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise HostError("download_failed", "the registry's token service sent no token")
    return token


def _no_credentials(challenge: Challenge) -> HostError:
    return HostError(
        "access_denied",
        f"the registry ({challenge.params.get('realm', 'no realm')}) refused the credentials "
        "or needs some: log in with `docker login` or `oras login` (config.json)",
    )
