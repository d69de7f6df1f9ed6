"""The registry's ``WWW-Authenticate`` challenge (RFC 7235) and the distribution token
flow: ``Basic`` → send the credentials; ``Bearer realm=…,service=…,scope=…`` → ask the
realm for a token (with the credentials if any, anonymous otherwise; an identity token
is traded with the OAuth2 refresh-token grant)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import requests

from webmodels.errors import HostError
from webmodels.oci.credentials import IDENTITY_TOKEN_USER, Credentials

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
TOKEN_TIMEOUT_S = 30
CLIENT_ID = "webmodels"  # the OAuth2 client_id the token spec asks a refresh grant for


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
        if credentials is None or credentials.identity_token:  # a token is no password
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
    try:
        if credentials is not None and credentials.identity_token:
            reply = _refresh_grant(session, realm, query, credentials.identity_token)
        else:
            auth = (credentials.user, credentials.password) if credentials else None
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


def _refresh_grant(
    session: requests.Session, realm: str, query: dict[str, str], token: str
) -> requests.Response:
    """The OAuth2 refresh-token grant of the distribution token spec: a form POST to
    the realm. A token service that refuses the POST (404, 405, or 401 as some
    answer it) is asked as Docker asks it then: GET with the token as basic auth."""
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT_ID}
    reply = session.post(realm, data={**form, **query}, timeout=TOKEN_TIMEOUT_S)
    if reply.status_code not in (401, 404, 405):
        return reply
    reply.close()
    auth = (IDENTITY_TOKEN_USER, token)
    return session.get(realm, params=query, auth=auth, timeout=TOKEN_TIMEOUT_S)


def _no_credentials(challenge: Challenge) -> HostError:
    return HostError(
        "access_denied",
        f"the registry ({challenge.params.get('realm', 'no realm')}) refused the credentials "
        "or needs some: log in with `docker login` or `oras login` (config.json)",
    )
