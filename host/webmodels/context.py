"""Who is asking: `Origin`, `Partition` and `RequestContext`, parsed once per request.

The extension's service worker writes ``context`` over whatever a page sent
(PROTOCOL.md); the host trusts nothing else. A partition is keyed by (top-level
site, frame origin), like Chromium's double-keyed HTTP cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from webmodels.errors import HostError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """A serialised web origin: ``scheme://host[:port]`` (default ports dropped)."""

    scheme: str
    host: str
    port: int | None = None

    @classmethod
    def parse(cls, value: object, *, field: str = "origin") -> Origin:
        if not isinstance(value, str) or len(value) > 2048:
            raise HostError("bad_request", f"{field} must be an origin string", field=field)
        try:
            # urlsplit itself raises ValueError on an unbalanced "[" or "]" (found by
            # scripts/fuzz: it took the whole host down from a request's context).
            parts = urlsplit(value.strip())
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            raise HostError("bad_request", f"{field} has a bad host or port", field=field) from exc
        scheme = parts.scheme.lower()
        bad_rest = parts.path not in ("", "/") or parts.query or parts.fragment
        if not scheme or not host or bad_rest or parts.username or parts.password:
            raise HostError(
                "bad_request", f"{field} must look like https://example.com", field=field
            )
        if port == _DEFAULT_PORTS.get(scheme):
            port = None
        return cls(scheme, host.lower(), port)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}"


@dataclass(frozen=True, slots=True)
class Partition:
    """The storage key: (top-level site, frame origin)."""

    top_site: Origin
    origin: Origin

    @property
    def key(self) -> str:
        """A stable text key for the index: ``<top_site> <origin>``."""
        return f"{self.top_site} {self.origin}"

    @classmethod
    def from_key(cls, key: str) -> Partition:
        top, _, origin = key.partition(" ")
        return cls(Origin.parse(top, field="top_site"), Origin.parse(origin))

    def to_wire(self) -> dict[str, str]:
        return {"top_site": str(self.top_site), "origin": str(self.origin)}


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller of one request.

    ``partition`` is None only for trusted callers (CLI, popup) that act for the user
    rather than for a site.
    """

    partition: Partition | None
    user_activation: bool
    trusted: bool

    @classmethod
    def trusted_local(cls) -> RequestContext:
        """The CLI, or a ``serve --trusted-stdio`` request without context."""
        return cls(partition=None, user_activation=True, trusted=True)

    @classmethod
    def parse(cls, value: object) -> RequestContext:
        if not isinstance(value, Mapping):
            raise HostError("bad_request", "context must be an object", field="context")
        trusted = value.get("trusted", False) is True
        activation = value.get("user_activation", False) is True
        raw = value.get("partition")
        if raw is None and trusted:
            return cls(partition=None, user_activation=activation, trusted=True)
        if not isinstance(raw, Mapping):
            raise HostError(
                "bad_request", "context.partition must be an object", field="context.partition"
            )
        partition = Partition(
            top_site=Origin.parse(raw.get("top_site"), field="context.partition.top_site"),
            origin=Origin.parse(raw.get("origin"), field="context.partition.origin"),
        )
        return cls(partition=partition, user_activation=activation, trusted=trusted)
