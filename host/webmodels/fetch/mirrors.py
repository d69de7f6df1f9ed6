"""Mirrors: sources the user (or an administrator) configured that serve a file by its
SHA-256, tried before a download's own URLs.

Config ``mirrors = ["oci://REGISTRY/REPO", "https://cache.example/by-hash/"]``: an OCI
registry serves ``GET /v2/<repo>/blobs/sha256:<hex>`` (with the registry's own auth,
credentials from the Docker/ORAS ``config.json``), an https prefix serves
``<prefix><hex>``. A mirror is the user's choice, not a page's: it is fetched as the
host, with a session of its own, never with a page's limits or credentials; the bytes
are verified like any download's, and a mirror that serves wrong ones is refused and
the next source tried (fetch/transfer.py).

This module owns parsing mirrors (pure), the order of a transfer's sources and the
session each is fetched with, the one error naming every source's failure, and the
cheap probe `webmodels doctor` runs on each mirror.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.oci.auth import authorization, parse_challenge
from webmodels.oci.credentials import config_path, find_credentials
from webmodels.oci.reference import Reference, is_oci, parse_reference

MAX_MIRRORS = 16
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class Mirror:
    text: str  # as configured
    registry: Reference | None = None  # an OCI mirror
    prefix: str | None = None  # an https mirror

    def url(self, digest: Digest) -> str:
        if self.registry is not None:
            return f"{self.registry.base_url}/blobs/sha256:{digest.hex}"
        assert self.prefix is not None
        return f"{self.prefix}{digest.hex}"


def parse_mirror(text: str) -> Mirror:
    """One configured mirror; a bad one is a `bad_request` saying the forms allowed."""
    if is_oci(text):
        try:
            reference = parse_reference(text)
        except HostError as exc:
            raise HostError("bad_request", f"config key mirrors: {exc.message}") from exc
        if reference.tag or reference.digest is not None:
            raise _bad(text, "a mirror names a repository, without :TAG or @sha256:")
        return Mirror(text, registry=reference)
    parts = urlsplit(text)
    loopback = (parts.hostname or "") in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise _bad(text, "it is neither oci:// nor https:// (http:// only on the loopback)")
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise _bad(text, "it needs a host, and no user:password@, ?query or #fragment")
    if not text.endswith("/"):
        raise _bad(text, "an https mirror is a prefix the SHA-256 is appended to: end it with /")
    return Mirror(text, prefix=text)


def parse_mirrors(value: object) -> tuple[str, ...]:
    """The config key ``mirrors``: a list of mirror strings, each checked."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HostError("bad_request", "config key mirrors must be a list of strings")
    if len(value) > MAX_MIRRORS:
        raise HostError("bad_request", f"config key mirrors lists more than {MAX_MIRRORS}")
    for text in value:
        parse_mirror(text)
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Probe:
    mirror: str
    url: str  # what was asked: a registry's ``/v2/``, an https mirror's prefix
    answers: bool
    detail: str  # "HTTP 200", "HTTP 401 (asks for credentials)", or why none came


def probe_url(mirror: Mirror) -> str:
    """A registry answers ``GET /v2/`` (200, or 401 before login: both mean it is up);
    an https mirror is asked ``HEAD`` on its prefix (any HTTP answer means it is up)."""
    if mirror.registry is not None:
        return mirror.registry.base_url.rsplit("/v2/", 1)[0] + "/v2/"
    assert mirror.prefix is not None
    return mirror.prefix


def probe_mirrors(mirrors: Sequence[str], *, timeout_s: float = 3.0) -> list[Probe]:
    """Ask every mirror at once, each with a short timeout (no credentials sent)."""
    from concurrent.futures import ThreadPoolExecutor

    if not mirrors:
        return []
    with ThreadPoolExecutor(max_workers=min(len(mirrors), MAX_MIRRORS)) as pool:
        return list(pool.map(lambda text: _probe(text, timeout_s), mirrors))


def _probe(text: str, timeout_s: float) -> Probe:
    mirror = parse_mirror(text)
    url = probe_url(mirror)
    method = "GET" if mirror.registry is not None else "HEAD"
    from webmodels.fetch.session import new_session  # the session downloads use

    try:
        with (
            new_session() as session,
            session.request(
                method, url, timeout=timeout_s, allow_redirects=False, stream=True
            ) as response,
        ):
            status = response.status_code
    except requests.RequestException as exc:
        return Probe(text, url, False, f"no answer: {type(exc).__name__}")
    if status >= 500:
        return Probe(text, url, False, f"HTTP {status}")
    login = " (asks for credentials)" if status == 401 else ""
    return Probe(text, url, True, f"HTTP {status}{login}")


def _bad(text: str, why: str) -> HostError:
    return HostError(
        "bad_request",
        f"config key mirrors: {text!r} is not a mirror ({why}); give "
        "oci://REGISTRY/REPOSITORY or https://HOST/PREFIX/",
    )


class RegistryAuth(requests.auth.AuthBase):
    """Answers an OCI registry's ``401`` challenge (basic, or a bearer token) once and
    sends the request again, as `requests`' digest auth does; the answer is kept for
    the next requests (a resumed ``Range`` request, another blob)."""

    def __init__(self, session: requests.Session, credentials_file: Path, registry: str) -> None:
        self.session = session
        self.credentials_file = credentials_file
        self.registry = registry
        self.header: str | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.header:
            request.headers["Authorization"] = self.header
        request.hooks["response"].append(self._on_401)
        return request

    def _on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge:
            return response  # the adapter's send below runs no hooks: asked once only
        credentials = find_credentials(self.credentials_file, self.registry)
        self.header = authorization(self.session, parse_challenge(challenge), credentials)
        _ = response.content  # a short 401 body: read, so the connection is reused
        response.close()
        again = response.request.copy()
        again.headers["Authorization"] = self.header
        retried: requests.Response = response.connection.send(again, **kwargs)
        retried.history.append(response)
        retried.request = again
        return retried


class Sources:
    """The URLs one transfer tries, in order: each mirror by the file's digest, then the
    download's own URLs; and how each is fetched. Mirrors, and the ``oci://`` URLs of
    a catalog entry (`host_oci`: never a page's), are the user's choice: fetched with
    the host's own session and the registry's auth. The others use the transfer's
    session, which fetch/guard.py limits for a page."""

    def __init__(
        self,
        urls: Sequence[str],
        mirrors: Sequence[str],
        digest: Digest,
        session: requests.Session,
        *,
        new_session: Callable[[], requests.Session],
        host_oci: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.session = session
        self.names: dict[str, str] = {}  # URL fetched as the host -> what the user wrote
        self.auth: dict[str, requests.auth.AuthBase | None] = {}
        oci_urls = [u for u in urls if host_oci and is_oci(u)]
        self.host_session = new_session() if mirrors or oci_urls else None
        self._credentials = config_path(os.environ if env is None else env, Path.home())
        mirrored = [self._add(parse_mirror(t), digest, f"mirror {t}") for t in mirrors]
        self.mirrors = set(mirrored)
        own = [  # the download's URLs in their order, an oci:// one as its blob URL
            self._add(Mirror(u, registry=parse_reference(u)), digest, u) if u in oci_urls else u
            for u in urls
        ]
        self.urls = list(dict.fromkeys([*mirrored, *own]))

    def _add(self, mirror: Mirror, digest: Digest, name: str) -> str:
        """`mirror`'s URL for `digest`, fetched as the host (the first name is kept)."""
        url = mirror.url(digest)
        if url not in self.names and self.host_session is not None:
            self.names[url] = name
            registry = mirror.registry.registry if mirror.registry else None
            self.auth[url] = (
                RegistryAuth(self.host_session, self._credentials, registry) if registry else None
            )
        return url

    def is_mirror(self, url: str) -> bool:
        return url in self.mirrors

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        if self.host_session is not None and url in self.names:
            return self.host_session.get(url, auth=self.auth[url], **kwargs)
        return self.session.get(url, **kwargs)

    def close(self) -> None:
        if self.host_session is not None:
            self.host_session.close()

    def failed(self, failures: Mapping[str, HostError]) -> HostError:
        """One error naming each source's failure. Its code comes from the download's
        own URLs when they failed (what a page learns must not depend on the user's
        mirrors), an integrity problem before an HTTP error."""
        own = {u: e for u, e in failures.items() if u not in self.mirrors}
        error = _most_telling(own or dict(failures))
        summary = "; ".join(f"{self.names.get(u, u)}: {_reason(u, e)}" for u, e in failures.items())
        return HostError(error.code, f"no source served the file: {summary}", **error.details)


def _most_telling(errors: Mapping[str, HostError]) -> HostError:
    for error in errors.values():
        if error.code == "integrity_mismatch":
            return error
    return list(errors.values())[-1]


def _reason(url: str, error: HostError) -> str:
    return error.message.removeprefix(f"{url}: ")
