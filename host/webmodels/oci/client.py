"""The OCI distribution HTTP API over `requests`, for one repository.

Why not the `oras` PyPI SDK: it pulls a whole artifact into a folder and pushes from
files, with its own auth and retry loop; the store needs each blob streamed through
its hashing writer, resumed with ``Range`` into a partial file, and verified by digest
before anything is published, which the SDK does not expose. The API itself is small
(GET/HEAD manifests and blobs, the monolithic POST+PUT upload).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import requests

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.oci.artifact import ACCEPT, MAX_MANIFEST_BYTES
from webmodels.oci.auth import authorization, parse_challenge
from webmodels.oci.credentials import Credentials
from webmodels.oci.index import DOCKER_LIST_TYPE, INDEX_TYPE, choose_manifest, is_index
from webmodels.oci.reference import Reference

TIMEOUT_S = (10, 60)  # connect, read (between chunks)
CHUNK = 1024 * 1024
MANIFEST_ACCEPT = ", ".join((ACCEPT, INDEX_TYPE, DOCKER_LIST_TYPE))


@dataclass(frozen=True, slots=True)
class BlobReply:
    offset: int  # where the bytes start: 0 when the registry ignored the Range
    chunks: Iterator[bytes]


class RegistryClient:
    def __init__(
        self,
        reference: Reference,
        *,
        credentials: Credentials | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.reference = reference
        self.credentials = credentials
        self.session = session or requests.Session()
        self._authorization: str | None = None

    def close(self) -> None:
        self.session.close()

    # -- reading ----------------------------------------------------------------

    def get_manifest(self) -> tuple[bytes, Digest]:
        """The artifact manifest's bytes and their digest (checked against a digest
        reference). A tag (or digest) naming an image index is followed to the index's model
        manifest, or this platform's (oci/index.py), fetched by digest and checked against it."""
        body, digest = self._fetch_manifest(self.reference.manifest_ref, MAX_MANIFEST_BYTES)
        _check(digest, self.reference.digest, "manifest")
        if not is_index(body):
            return body, digest
        chosen = choose_manifest(body)
        body, digest = self._fetch_manifest(f"sha256:{chosen.digest.hex}", chosen.size)
        _check(digest, chosen.digest, "index's chosen manifest")
        if is_index(body):
            raise HostError("bad_request", "the image index names another index: not followed")
        return body, digest

    def _fetch_manifest(self, ref: str, limit: int) -> tuple[bytes, Digest]:
        reply = self._send("GET", f"/manifests/{ref}", accept=MANIFEST_ACCEPT, stream=True)
        body = _read_bounded(reply, limit)
        return body, Digest(hashlib.sha256(body).hexdigest())

    def open_blob(self, digest: Digest, *, offset: int = 0) -> BlobReply:
        """The blob's bytes from ``offset`` (a 200 to a Range request: from 0)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        reply = self._send("GET", f"/blobs/sha256:{digest.hex}", headers=headers, stream=True)
        start = offset if reply.status_code == 206 else 0
        return BlobReply(start, reply.iter_content(CHUNK))

    def has_blob(self, digest: Digest) -> bool:
        reply = self._send("HEAD", f"/blobs/sha256:{digest.hex}", allow={404})
        return reply.status_code == 200

    # -- writing ----------------------------------------------------------------

    def upload_blob(self, digest: Digest, size: int, data: BinaryIO | io.RawIOBase | bytes) -> None:
        """Monolithic upload: POST a session, then PUT the bytes with ``?digest=``."""
        started = self._send("POST", "/blobs/uploads/", headers={"Content-Length": "0"})
        location = started.headers.get("Location")
        if not location:
            raise HostError("download_failed", "the registry opened no upload session")
        url = requests.compat.urljoin(self._url(""), location)
        joiner = "&" if "?" in url else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        self._send("PUT", f"{url}{joiner}digest=sha256:{digest.hex}", headers=headers, data=data)

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> None:
        self._send("PUT", f"/manifests/{tag}", headers={"Content-Type": media_type}, data=body)

    # -- plumbing ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if "://" in path else f"{self.reference.base_url}{path}"

    def _send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        accept: str | None = None,
        data: BinaryIO | io.RawIOBase | bytes | None = None,
        stream: bool = False,
        allow: set[int] | None = None,
    ) -> requests.Response:
        """One request; on a 401 answer the challenge once and send it again (a body
        that is a stream is only sent after auth: `_ensure_auth` runs first for it)."""
        sent = dict(headers or {})
        if accept:
            sent["Accept"] = accept
        if data is not None and not isinstance(data, bytes) and self._authorization is None:
            self._ensure_auth()
        reply = self._request(method, path, sent, data, stream)
        if reply.status_code == 401 and isinstance(data, (bytes, type(None))):
            self._answer(reply)
            reply = self._request(method, path, sent, data, stream)
        if reply.status_code >= 400 and reply.status_code not in (allow or set()):
            raise _refused(method, self._url(path), reply)
        return reply

    def _ensure_auth(self) -> None:
        probe = self._request("GET", "/tags/list", {}, None, False)
        if probe.status_code == 401:
            self._answer(probe)

    def _answer(self, reply: requests.Response) -> None:
        header = reply.headers.get("WWW-Authenticate", "")
        if not header:
            raise HostError("access_denied", "the registry refused the request and named no auth")
        self._authorization = authorization(self.session, parse_challenge(header), self.credentials)

    def _request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        data: BinaryIO | io.RawIOBase | bytes | None,
        stream: bool,
    ) -> requests.Response:
        if self._authorization:
            headers = {**headers, "Authorization": self._authorization}
        try:
            return self.session.request(
                method,
                self._url(path),
                headers=headers,
                data=data,
                stream=stream,
                timeout=TIMEOUT_S,
            )
        except requests.RequestException as exc:
            raise HostError(
                "download_failed", f"cannot reach {self.reference.registry}: {exc}"
            ) from exc


def _check(digest: Digest, wanted: Digest | None, what: str) -> None:
    if wanted is not None and wanted != digest:
        raise HostError(
            "integrity_mismatch",
            f"the registry's {what} has SHA-256 {digest.hex}, not {wanted.hex}",
            expected=wanted.hex,
            actual=digest.hex,
        )


def _read_bounded(reply: requests.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in reply.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise HostError("too_large", f"the registry's manifest is over {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _refused(method: str, url: str, reply: requests.Response) -> HostError:
    if reply.status_code in (401, 403):
        return HostError(
            "access_denied",
            f"{method} {url}: the registry refused it ({reply.status_code}); log in with "
            "`docker login` or `oras login` (config.json)",
        )
    if reply.status_code == 404:
        return HostError("not_found", f"{method} {url}: the registry has no such manifest or blob")
    return HostError(
        "download_failed", f"{method} {url}: the registry answered {reply.status_code}"
    )
