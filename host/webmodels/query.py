"""`ModelQuery`: which model a request means, parsed once (PROTOCOL.md "Queries")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.naming.versions import ModelName, Version, VersionError, VersionRange
from webmodels.urls import is_http

MAX_MIRRORS = 8
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelQuery:
    digest: Digest | None = None  # from sha256 or integrity
    urls: tuple[str, ...] = ()
    name: ModelName | None = None  # by name and version `range` (docs/design.md)
    range: VersionRange | None = None
    size: int | None = None  # declared size, checked against Content-Length

    @property
    def inline(self) -> bool:
        """A name with its own URL and integrity: a model no catalog needs to know."""
        return self.name is not None and self.digest is not None and bool(self.urls)

    @classmethod
    def parse(cls, value: Any) -> ModelQuery:
        if not isinstance(value, Mapping):
            raise HostError("bad_request", "query must be an object", field="query")
        if "sha256" in value:
            return cls(digest=Digest.parse(value["sha256"], field="query.sha256"))
        name = _name(value.get("name")) if "name" in value else None
        if "url" in value or "urls" in value:
            return cls(
                digest=Digest.from_integrity(value.get("integrity")),
                urls=_urls(value),
                size=_size(value.get("size")),
                name=name,
                range=_exact(value.get("version")) if name is not None else None,
            )
        if name is not None:
            return cls(name=name, range=_range(value.get("version", "*")))
        raise HostError(
            "bad_request", "query needs sha256, url(s) with integrity, or name", field="query"
        )


def _name(value: object) -> ModelName:
    return _parse(value, ModelName.parse, "query.name", "must be 'publisher/model'")


def _range(value: object) -> VersionRange:
    return _parse(value, VersionRange.parse, "query.version", "is not a version range")


def _exact(value: object) -> VersionRange:
    """An inline descriptor names one version (its bytes are fixed by the integrity)."""
    version = _parse(value, Version.parse, "query.version", "must be an exact version with a URL")
    return VersionRange.parse(str(version))


def _parse(value: object, parse: Callable[[str], T], field: str, problem: str) -> T:
    """`parse(value)`, or `bad_request` naming `field` and what is wrong with it."""
    try:
        if not isinstance(value, str):
            raise VersionError(f"expected a string, got {type(value).__name__}")
        return parse(value)
    except VersionError as exc:
        raise HostError("bad_request", f"{field} {problem}: {exc}", field=field) from exc


def _urls(value: Mapping[str, Any]) -> tuple[str, ...]:
    raw = value.get("urls") if "urls" in value else [value.get("url")]
    if not isinstance(raw, list) or not raw or len(raw) > MAX_MIRRORS:
        raise HostError(
            "bad_request", f"query.urls must list 1 to {MAX_MIRRORS} URLs", field="query.urls"
        )
    urls = []
    for url in raw:
        if not is_http(url):
            raise HostError("bad_request", "model URLs must be http(s) URLs", field="query.urls")
        assert isinstance(url, str)
        if "@" in urlsplit(url).netloc:  # user:pass@: a page's download sends no credentials
            raise HostError(
                "bad_request",
                "model URLs must not carry a user name or password",
                field="query.urls",
            )
        urls.append(url)
    return tuple(urls)


def _size(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HostError("bad_request", "query.size must be a byte count", field="query.size")
    return value
