"""SemVer 2.0.0 versions: `Version`, `VersionError`, and the identifier patterns that
the range grammar (naming/ranges.py) builds on.

Everything here is pure and bounded: over-long texts are refused before any pattern
runs, no pattern nests ambiguous repetition, and malformed input of any kind raises
`VersionError` (a `ValueError`), never another exception. Numeric identifiers above
2**53-1 are refused, and `Version.parse` also accepts a leading ``=`` (node-semver
needs loose mode for it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER, node-semver's bound
MAX_VERSION_LENGTH = 256  # node-semver's MAX_LENGTH

# SemVer 2.0.0 §2 and §9: numbers without leading zeros; an alphanumeric identifier
# has at least one letter or hyphen. Explicit ASCII classes: `\d` would take any digit.
_NUM = r"(?:0|[1-9][0-9]*)"
_ALNUM = r"[0-9]*[A-Za-z-][0-9A-Za-z-]*"
PRERELEASE = rf"(?:{_NUM}|{_ALNUM})(?:\.(?:{_NUM}|{_ALNUM}))*"
BUILD = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"  # §10: leading zeros are fine here
_VERSION_RE = re.compile(rf"[v=]?({_NUM})\.({_NUM})\.({_NUM})(?:-({PRERELEASE}))?(?:\+({BUILD}))?")
_ALNUM_RE = re.compile(_ALNUM)
_BUILD_ID_RE = re.compile(r"[0-9A-Za-z-]+")

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


class VersionError(ValueError):
    """A version, range or model name that does not parse; the message says what is
    wrong and shows the text (truncated)."""


def show(text: str) -> str:
    """`text` for an error message: quoted, cut after 60 characters."""
    return repr(text if len(text) <= 60 else text[:60] + "...")


def _check_number(value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
        raise VersionError("numeric identifiers must be integers in 0..2**53-1")


def identifiers(text: str | None) -> tuple[int | str, ...]:
    # The pattern has already checked the text: all-digit identifiers are numbers.
    return tuple(int(part) if part.isdigit() else part for part in text.split(".")) if text else ()


@dataclass(frozen=True, slots=True)
class Version:
    """A SemVer 2.0.0 version.

    Equality is the dataclass's: versions differing only in build metadata are not
    equal (nor hash alike), yet they have the same precedence (§10, §11): neither is
    ``<`` the other and ``a.key() == b.key()``. Sort with ``key=Version.key``.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for number in (self.major, self.minor, self.patch):
            _check_number(number)
        for ident in self.prerelease:
            if type(ident) is not str:
                _check_number(ident)
            elif not _ALNUM_RE.fullmatch(ident):
                raise VersionError(f"bad prerelease identifier {show(ident)} (SemVer §9)")
        for ident in self.build:
            if type(ident) is not str or not _BUILD_ID_RE.fullmatch(ident):
                raise VersionError(f"bad build identifier {ident!r:.60} (SemVer §10)")

    @classmethod
    def parse(cls, text: str) -> Version:
        """SemVer 2.0.0, plus an optional leading ``v`` or ``=`` and surrounding spaces."""
        if not isinstance(text, str):
            raise VersionError(f"a version must be a string, not {type(text).__name__}")
        stripped = text.strip()
        if len(stripped) > MAX_VERSION_LENGTH:
            raise VersionError(f"invalid version {show(text)}: over {MAX_VERSION_LENGTH} chars")
        match = _VERSION_RE.fullmatch(stripped)
        if match is None:
            raise VersionError(f"invalid version {show(text)}: {_version_problem(stripped)}")
        major, minor, patch, pre, build = match.groups()
        try:
            builds = tuple(build.split(".")) if build else ()
            return cls(int(major), int(minor), int(patch), identifiers(pre), builds)
        except VersionError as error:
            raise VersionError(f"invalid version {show(text)}: {error}") from None

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def key(self) -> VersionKey:
        """A tuple ordered by SemVer precedence (§11); build metadata is left out."""
        if not self.prerelease:  # §11.3: a release outranks its prereleases
            return (self.major, self.minor, self.patch, 1, ())
        # §11.4: numbers compare numerically and below alphanumerics, which compare in
        # ASCII order; tuple comparison makes a shorter list of equal prefix lower.
        idents = tuple((0, i, "") if isinstance(i, int) else (1, 0, i) for i in self.prerelease)
        return (self.major, self.minor, self.patch, 0, idents)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(map(str, self.prerelease))
        return text + "+" + ".".join(self.build) if self.build else text

    def __lt__(self, other: object) -> bool:
        return self.key() < other.key() if isinstance(other, Version) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.key() <= other.key() if isinstance(other, Version) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.key() > other.key() if isinstance(other, Version) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.key() >= other.key() if isinstance(other, Version) else NotImplemented


def _version_problem(text: str) -> str:
    head = text[1:] if text[:1] in ("v", "=") else text
    core, _, pre = head.split("+", 1)[0].partition("-")
    idents = core.split(".") + (pre.split(".") if pre else [])
    if not text:
        return "empty"
    if core.count(".") != 2:
        return "expected MAJOR.MINOR.PATCH"
    if any(len(i) > 1 and i[0] == "0" and i.isascii() and i.isdigit() for i in idents):
        return "numeric identifiers must not have leading zeros (SemVer 2.0.0 §2, §9)"
    return "not MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (SemVer 2.0.0)"
