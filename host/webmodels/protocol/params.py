"""Typed access to a request's ``params``: each getter parses once or raises
`bad_request` naming the field, so handlers never touch raw JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError


class Params:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def _bad(self, name: str, what: str) -> HostError:
        return HostError("bad_request", f"params.{name} must be {what}", field=name)

    def digest(self, name: str = "sha256") -> Digest:
        if name not in self.raw:
            raise self._bad(name, "given (a SHA-256 digest)")
        return Digest.parse(self.raw[name], field=f"params.{name}")

    def integer(
        self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(name, "an integer")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f" and at most {maximum}" if maximum is not None else ""
            raise self._bad(name, f"at least {minimum}{bound}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.raw.get(name, default)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false")
        return value

    def string(self, name: str, *, default: str | None = None, max_length: int = 4096) -> str:
        value = self.raw.get(name, default)
        if not isinstance(value, str) or len(value) > max_length:
            raise self._bad(name, f"a string of at most {max_length} characters")
        return value

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self.raw.get(name)
        if not isinstance(value, Mapping):
            raise self._bad(name, "an object")
        return value
