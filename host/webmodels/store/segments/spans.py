"""`Span`: where one tensor's bytes lie in a file, and the parse errors of the
container readers (any of them makes `split` fall back to content-defined chunking)."""

from __future__ import annotations

from dataclasses import dataclass


class ContainerInvalid(ValueError):
    """The file is not a well-formed container of the kind tried, or passes a cap."""


@dataclass(frozen=True, slots=True, order=True)
class Span:
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length
