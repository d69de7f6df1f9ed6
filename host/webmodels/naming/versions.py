"""Semantic versions (SemVer 2.0.0), npm-style version ranges and model names.

Everything here is pure and bounded: over-long texts are refused before any pattern
runs, no pattern nests ambiguous repetition, and malformed input of any kind raises
`VersionError` (a `ValueError`), never another exception.

Ranges follow current node-semver (npm) in its strict, non-loose mode: its grammar,
its desugaring of ``^``, ``~``, X-ranges and hyphen ranges into primitive comparators
(``-0`` upper bounds included), its ``includePrerelease`` variants (as fixed upstream in
npm/node-semver#872 and #878: only implied parts lower to ``-0``), build metadata
ignored anywhere (#869), and its rule that a prerelease only matches a comparator set
naming a prerelease of the same ``major.minor.patch``. Deliberate differences, all
about text node-semver accepts only by accident of its regular expressions:

* a number after an X (``1.x.3``, ``x.1``) is refused after ``~``, ``^`` and in hyphen
  ranges too; node-semver#874 refuses it in X-ranges only;
* numeric identifiers above 2**53-1 are refused everywhere (node-semver keeps huge
  prerelease numbers as strings and compares them imprecisely);
* a comparator's version takes one optional ``v`` (after ``~``/``^`` also ``=``):
  node-semver lets X-ranges, but not full versions, start with any run of ``v``/``=``;
* ``*`` is only a whole X identifier (node-semver deletes stray ``*``: ``*1.2.3``);
* `Version.parse` also accepts a leading ``=`` (node-semver needs loose mode for it).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Comparator", "ModelName", "ModelSpec", "Version", "VersionError", "VersionRange"]

MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER, node-semver's bound
MAX_VERSION_LENGTH = 256  # node-semver's MAX_LENGTH
MAX_RANGE_LENGTH = 1024
MAX_ALTERNATIVES = 64
MAX_COMPARATORS = 32  # per "||" alternative, as written
MAX_NAME_PART = 64

# SemVer 2.0.0 §2 and §9: numbers without leading zeros; an alphanumeric identifier
# has at least one letter or hyphen. Explicit ASCII classes: `\d` would take any digit.
_NUM = r"(?:0|[1-9][0-9]*)"
_ALNUM = r"[0-9]*[A-Za-z-][0-9A-Za-z-]*"
_PRE = rf"(?:{_NUM}|{_ALNUM})(?:\.(?:{_NUM}|{_ALNUM}))*"
_BUILD = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"  # §10: leading zeros are fine here
_XID = r"(?:0|[1-9][0-9]*|[xX*])"
_PARTIAL = (
    rf"(?P<major>{_XID})(?:\.(?P<minor>{_XID})(?:\.(?P<patch>{_XID})"
    rf"(?:-(?P<pre>{_PRE}))?)?)?(?P<build>\+{_BUILD})?"
)
_VERSION_RE = re.compile(rf"[v=]?({_NUM})\.({_NUM})\.({_NUM})(?:-({_PRE}))?(?:\+({_BUILD}))?")
_ALNUM_RE = re.compile(_ALNUM)
_BUILD_ID_RE = re.compile(r"[0-9A-Za-z-]+")
_PRIMITIVE_RE = re.compile(rf"(?P<op><=|>=|<|>|=)?v?{_PARTIAL}")
_TILDE_CARET_RE = re.compile(rf"(?P<op>~>?|\^)[v=]?{_PARTIAL}")
_HYPHEN_SIDE_RE = re.compile(rf"[v=]?{_PARTIAL}")
_HYPHEN_RE = re.compile(r"(\S+)\s+-\s+(\S+)")
_OP_SPACE_RE = re.compile(r"(~>?|\^|[<>]=?|=)\s+")  # node-semver: ">= 1.2" is ">=1.2"
_NAME_PART_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


class VersionError(ValueError):
    """A version, range or model name that does not parse; the message says what is
    wrong and shows the text (truncated)."""


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:60] + "...")


def _check_number(value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
        raise VersionError("numeric identifiers must be integers in 0..2**53-1")


def _identifiers(text: str | None) -> tuple[int | str, ...]:
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
                raise VersionError(f"bad prerelease identifier {_show(ident)} (SemVer §9)")
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
            raise VersionError(f"invalid version {_show(text)}: over {MAX_VERSION_LENGTH} chars")
        match = _VERSION_RE.fullmatch(stripped)
        if match is None:
            raise VersionError(f"invalid version {_show(text)}: {_version_problem(stripped)}")
        major, minor, patch, pre, build = match.groups()
        try:
            builds = tuple(build.split(".")) if build else ()
            return cls(int(major), int(minor), int(patch), _identifiers(pre), builds)
        except VersionError as error:
            raise VersionError(f"invalid version {_show(text)}: {error}") from None

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


_OPS: dict[str, Callable[[VersionKey, VersionKey], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}


@dataclass(frozen=True, slots=True)
class Comparator:
    """One primitive comparison; ``=`` compares precedence, so build metadata is ignored."""

    op: str
    version: Version

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise VersionError(f"unknown comparison operator {self.op!r:.20}")

    def test(self, version: Version) -> bool:
        return _OPS[self.op](version.key(), self.version.key())

    def __str__(self) -> str:
        return f"{'' if self.op == '=' else self.op}{self.version}"


# node-semver's "*" (ANY) and null set. ">=0.0.0" is ANY in default mode and
# ">=0.0.0-0" with includePrerelease (its replaceGTE0), so those spellings are ANY too.
_ANY = Comparator(">=", Version(0, 0, 0))
_ANY_PRE = Comparator(">=", Version(0, 0, 0, (0,)))
_NULL = Comparator("<", Version(0, 0, 0, (0,)))
ComparatorSets = tuple[tuple[Comparator, ...], ...]


def _any(include: bool) -> Comparator:
    return _ANY_PRE if include else _ANY


def _low(include: bool) -> tuple[int, ...]:
    # includePrerelease lowers an implied lower bound to "-0", the least prerelease.
    return (0,) if include else ()


@dataclass(frozen=True, slots=True)
class VersionRange:
    """An npm range: ``alternatives`` are the ``||`` sets, each a conjunction.

    ``alternatives`` and ``str()`` are the default (no includePrerelease) desugaring,
    as node-semver's ``range.range``; ``include_prerelease=True`` desugars ``text``
    again, since node-semver then lowers some bounds to ``-0``. Build with `parse`.
    """

    text: str
    alternatives: ComparatorSets

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        if not isinstance(text, str):
            raise VersionError(f"a version range must be a string, not {type(text).__name__}")
        stripped = text.strip()
        try:
            alternatives = _parse_range(stripped, include=False)
            _parse_range(stripped, include=True)  # so that matches() never raises later
        except VersionError as error:
            raise VersionError(f"invalid version range {_show(stripped)}: {error}") from None
        return cls(stripped, alternatives)

    def matches(self, version: Version, *, include_prerelease: bool = False) -> bool:
        return _matches(self._sets(include_prerelease), version, include_prerelease)

    def best(
        self, versions: Iterable[Version], *, include_prerelease: bool = False
    ) -> Version | None:
        """The highest matching version; of equal precedence, the first given (as npm)."""
        sets = self._sets(include_prerelease)
        best: Version | None = None
        for version in versions:
            higher = best is None or version.key() > best.key()
            if higher and _matches(sets, version, include_prerelease):
                best = version
        return best

    def _sets(self, include_prerelease: bool) -> ComparatorSets:
        return _parse_range(self.text, include=True) if include_prerelease else self.alternatives

    def __str__(self) -> str:
        return "||".join("*" if s == (_ANY,) else " ".join(map(str, s)) for s in self.alternatives)


def _matches(sets: ComparatorSets, version: Version, include: bool) -> bool:
    return any(_test_set(s, version, include) for s in sets)


def _test_set(comparators: Sequence[Comparator], version: Version, include: bool) -> bool:
    if not all(c.test(version) for c in comparators):
        return False
    if not version.prerelease or include:
        return True
    # node-semver's testSet: a prerelease only gets in through a comparator that names
    # a prerelease of the same release, so "^1.2.3-beta" opts in to 1.2.3-rc but not 1.3.0-rc.
    triple = (version.major, version.minor, version.patch)
    return any(
        c.version.prerelease and (c.version.major, c.version.minor, c.version.patch) == triple
        for c in comparators
    )


def _parse_range(text: str, include: bool) -> ComparatorSets:
    if len(text) > MAX_RANGE_LENGTH:
        raise VersionError(f"over {MAX_RANGE_LENGTH} characters")
    parts = text.split("||")
    if len(parts) > MAX_ALTERNATIVES:
        raise VersionError(f"more than {MAX_ALTERNATIVES} '||' alternatives")
    sets = [_parse_set(part.strip(), include) for part in parts]
    if len(sets) > 1:  # node-semver's Range constructor: sets that match nothing go,
        sets = [s for s in sets if s != (_NULL,)] or sets[:1]
        anything = (_any(include),)
        if anything in sets:  # and one "*" set makes the whole range "*"
            sets = [anything]
    return tuple(sets)


def _parse_set(text: str, include: bool) -> tuple[Comparator, ...]:
    if not text:
        return (_any(include),)
    hyphen = _HYPHEN_RE.fullmatch(text)
    if hyphen is not None:  # a hyphen range is a whole set: "1 - 2 <3" is invalid
        comparators = _hyphen(_side(hyphen[1]), _side(hyphen[2]), include)
    else:
        tokens = _OP_SPACE_RE.sub(r"\1", text).split()
        if len(tokens) > MAX_COMPARATORS:
            raise VersionError(f"more than {MAX_COMPARATORS} comparators in one alternative")
        comparators = [c for token in tokens for c in _expand(token, include)]
    if _NULL in comparators:
        return (_NULL,)
    unique = tuple(dict.fromkeys(comparators))
    if len(unique) > 1:  # "*" adds nothing to a conjunction
        unique = tuple(c for c in unique if c != _any(include))
    return unique


class _Partial(NamedTuple):
    """A possibly partial version; ``None`` stands for an X (missing, ``x``, ``X``, ``*``)."""

    major: int | None
    minor: int | None
    patch: int | None
    pre: tuple[int | str, ...]


def _partial(match: re.Match[str]) -> _Partial:
    # node-semver measures MAX_LENGTH after dropping build metadata (#869).
    end = match.start("build") if match["build"] else match.end()
    if end - match.start("major") > MAX_VERSION_LENGTH:
        raise VersionError(f"a version over {MAX_VERSION_LENGTH} characters")
    numbers: list[int | None] = []
    for group in ("major", "minor", "patch"):
        raw = match[group]
        if raw is None or raw in ("x", "X", "*"):  # node-semver's isX()
            numbers.append(None)
        elif numbers and numbers[-1] is None:  # "1.x.3" means nothing (node-semver#874)
            raise VersionError(f"a number after an X in {_show(match[0])}")
        else:
            numbers.append(int(raw))
    pre = _identifiers(match["pre"]) if numbers[2] is not None else ()
    return _Partial(numbers[0], numbers[1], numbers[2], pre)


def _side(text: str) -> _Partial:
    match = _HYPHEN_SIDE_RE.fullmatch(text)
    if match is None:
        raise VersionError(f"{_show(text)} is not a version or X-range")
    return _partial(match)


def _expand(token: str, include: bool) -> list[Comparator]:
    if (match := _TILDE_CARET_RE.fullmatch(token)) is not None:
        part = _partial(match)
        return _caret(part, include) if match["op"] == "^" else _tilde(part, include)
    if (match := _PRIMITIVE_RE.fullmatch(token)) is not None:
        return _xrange(match["op"] or "", _partial(match), include)
    raise VersionError(f"{_show(token)} is not a comparator, ^/~ range or X-range")


def _below(major: int, minor: int, patch: int) -> Comparator:
    # "<2.0.0-0" rather than "<2.0.0": 2.0.0's own prereleases are outside too.
    return Comparator("<", Version(major, minor, patch, (0,)))


def _span(major: int, minor: int | None, low: tuple[int, ...]) -> list[Comparator]:
    """Every version of ``major.x`` or ``major.minor.x``."""
    if minor is None:
        return [Comparator(">=", Version(major, 0, 0, low)), _below(major + 1, 0, 0)]
    return [Comparator(">=", Version(major, minor, 0, low)), _below(major, minor + 1, 0)]


def _xrange(op: str, part: _Partial, include: bool) -> list[Comparator]:
    """node-semver's replaceXRange; a full version is a primitive comparator."""
    major, minor, patch, pre = part
    if major is None:  # "<*" and ">*" allow nothing, any other X everything
        return [_NULL if op in ("<", ">") else _any(include)]
    if minor is not None and patch is not None:
        return [Comparator(op or "=", Version(major, minor, patch, pre))]
    low = _low(include)
    if op in ("", "="):
        return _span(major, minor, low)
    if op in (">", "<="):  # ">1.2" is ">=1.3.0", "<=1.2" is "<1.3.0-0"
        major, minor = (major + 1, 0) if minor is None else (major, minor + 1)
        op = ">=" if op == ">" else "<"
    return [Comparator(op, Version(major, minor or 0, 0, (0,) if op == "<" else low))]


def _tilde(part: _Partial, include: bool) -> list[Comparator]:
    """``~1.2.3`` is ``>=1.2.3 <1.3.0-0``; ``~1.2`` is the X-range ``1.2.x`` (#878)."""
    major, minor, patch, pre = part
    if major is None:
        return [_any(include)]
    if minor is None or patch is None:
        return _span(major, minor, _low(include))
    return [Comparator(">=", Version(major, minor, patch, pre)), _below(major, minor + 1, 0)]


def _caret(part: _Partial, include: bool) -> list[Comparator]:
    """``^`` allows changes right of the first non-zero part (node-semver's replaceCaret;
    under includePrerelease only implied parts lower to ``-0``, #872)."""
    major, minor, patch, pre = part
    low = _low(include)
    if major is None:
        return [_any(include)]
    if minor is None:
        return _span(major, None, low)
    if patch is None:
        upper = _below(major + 1, 0, 0) if major else _below(0, minor + 1, 0)
        return [Comparator(">=", Version(major, minor, 0, low)), upper]
    if major:
        upper = _below(major + 1, 0, 0)
    else:
        upper = _below(0, minor + 1, 0) if minor else _below(0, 0, patch + 1)
    return [Comparator(">=", Version(major, minor, patch, pre)), upper]


def _hyphen(start: _Partial, end: _Partial, include: bool) -> list[Comparator]:
    """node-semver's hyphenReplace: inclusive, partial ends widened as X-ranges."""
    low = _low(include)
    out: list[Comparator] = []
    major, minor, patch, pre = start
    if major is not None:
        out.append(Comparator(">=", Version(major, minor or 0, patch or 0, pre or low)))
    major, minor, patch, pre = end
    if major is None:
        pass
    elif minor is None:
        out.append(_below(major + 1, 0, 0))
    elif patch is None:
        out.append(_below(major, minor + 1, 0))
    elif pre or not include or patch == MAX_SAFE_INTEGER:  # "<=" is the same bound there
        out.append(Comparator("<=", Version(major, minor, patch, pre)))
    else:
        out.append(_below(major, minor, patch + 1))
    return out or [_any(include)]


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
                shown = _show(f"{self.publisher}/{self.model}")
                raise VersionError(f"invalid model name {shown}: {label} {problem}")

    @classmethod
    def parse(cls, text: str) -> ModelName:
        if not isinstance(text, str) or text.count("/") != 1:
            shown = _show(text) if isinstance(text, str) else type(text).__name__
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
            raise VersionError(f"invalid model spec {_show(text)}: no range after '@'")
        return cls(ModelName.parse(name), VersionRange.parse(range_text if at else "*"))

    def __str__(self) -> str:
        return str(self.name) if self.range.text == "*" else f"{self.name}@{self.range.text}"
