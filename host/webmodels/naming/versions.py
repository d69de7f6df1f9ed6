"""Model names (``publisher/model``) and specs (``publisher/model@RANGE``), and the one
module the naming value types are imported from: `Version` and `VersionError` are
naming/semver.py's, `Comparator` and `VersionRange` naming/ranges.py's.

Pure and bounded, as those: malformed input raises `VersionError`, never another
exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webmodels.naming.ranges import Comparator, VersionRange
from webmodels.naming.semver import Version, VersionError, show

__all__ = ["Comparator", "ModelName", "ModelSpec", "Version", "VersionError", "VersionRange"]

MAX_NAME_PART = 64
_NAME_PART_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _name_problem(part: object) -> str | None:
    if not isinstance(part, str):
        return "is not a string"
    if not part:
        return "is empty"
    if len(part) > MAX_NAME_PART:
        return f"is longer than {MAX_NAME_PART} characters"
    if part != part.lower():
        return "has uppercase letters (names are lowercase)"
    if _NAME_PART_RE.fullmatch(part) is None:
        if not part[0].isascii() or not part[0].isalnum():
            return "must start with a-z or 0-9"
        return "may only hold a-z, 0-9, '.', '_' and '-'"
    return None


@dataclass(frozen=True, slots=True)
class ModelName:
    """``publisher/model``: each part 1..64 of ``[a-z0-9._-]``, starting ``[a-z0-9]``."""

    publisher: str
    model: str

    def __post_init__(self) -> None:
        for label, part in (("publisher", self.publisher), ("model", self.model)):
            problem = _name_problem(part)
            if problem is not None:
                shown = show(f"{self.publisher}/{self.model}")
                raise VersionError(f"invalid model name {shown}: {label} {problem}")

    @classmethod
    def parse(cls, text: str) -> ModelName:
        if not isinstance(text, str) or text.count("/") != 1:
            shown = show(text) if isinstance(text, str) else type(text).__name__
            raise VersionError(f"invalid model name {shown}: expected publisher/model")
        publisher, model = text.split("/")
        return cls(publisher, model)

    def __str__(self) -> str:
        return f"{self.publisher}/{self.model}"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """``publisher/model@RANGE``; without ``@`` any release will do (range ``*``)."""

    name: ModelName
    range: VersionRange

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        if not isinstance(text, str):
            raise VersionError(f"a model spec must be a string, not {type(text).__name__}")
        name, at, range_text = text.strip().partition("@")
        if at and not range_text.strip():
            raise VersionError(f"invalid model spec {show(text)}: no range after '@'")
        return cls(ModelName.parse(name), VersionRange.parse(range_text if at else "*"))

    def __str__(self) -> str:
        return str(self.name) if self.range.text == "*" else f"{self.name}@{self.range.text}"
