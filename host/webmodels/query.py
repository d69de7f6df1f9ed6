"""`ModelQuery`: which model a request means, parsed once (PROTOCOL.md "Queries")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webmodels.digest import Digest
from webmodels.errors import HostError

MAX_MIRRORS = 8


@dataclass(frozen=True, slots=True)
class ModelQuery:
    digest: Digest | None = None  # from sha256 or integrity
    urls: tuple[str, ...] = ()
    name: str | None = None
    version: str | None = None
    size: int | None = None  # declared size, checked against Content-Length

    @classmethod
    def parse(cls, value: Any) -> ModelQuery:
        if not isinstance(value, Mapping):
            raise HostError("bad_request", "query must be an object", field="query")
        if "sha256" in value:
            return cls(digest=Digest.parse(value["sha256"], field="query.sha256"))
        if "url" in value or "urls" in value:
            return cls(
                digest=Digest.from_integrity(value.get("integrity")),
                urls=_urls(value),
                size=_size(value.get("size")),
            )
        if "name" in value:
            name, version = value.get("name"), value.get("version", "*")
            if not isinstance(name, str) or "/" not in name or not isinstance(version, str):
                raise HostError(
                    "bad_request", "query.name must be 'publisher/model'", field="query.name"
                )
            return cls(name=name, version=version)
        raise HostError(
            "bad_request", "query needs sha256, url(s) with integrity, or name", field="query"
        )


def _urls(value: Mapping[str, Any]) -> tuple[str, ...]:
    raw = value.get("urls") if "urls" in value else [value.get("url")]
    if not isinstance(raw, list) or not raw or len(raw) > MAX_MIRRORS:
        raise HostError(
            "bad_request", f"query.urls must list 1 to {MAX_MIRRORS} URLs", field="query.urls"
        )
    urls = []
    for url in raw:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise HostError("bad_request", "model URLs must be http(s) URLs", field="query.urls")
        urls.append(url)
    return tuple(urls)


def _size(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HostError("bad_request", "query.size must be a byte count", field="query.size")
    return value
