"""npm version ranges: `VersionRange` and its primitive `Comparator`.

Ranges follow current node-semver (npm) in its strict, non-loose mode: its grammar,
its desugaring of ``^``, ``~``, X-ranges and hyphen ranges into primitive comparators
(``-0`` upper bounds included), its ``includePrerelease`` variants (as fixed upstream in
npm/node-semver#872 and #878: only implied parts lower to ``-0``), build metadata
ignored anywhere (#869), and its rule that a prerelease only matches a comparator set
naming a prerelease of the same ``major.minor.patch``. Pure and bounded, as
naming/semver.py. Deliberate differences, all about text node-semver accepts only by
accident of its regular expressions:

* a number after an X (``1.x.3``, ``x.1``) is refused after ``~``, ``^`` and in hyphen
  ranges too; node-semver#874 refuses it in X-ranges only;
* numeric identifiers above 2**53-1 are refused everywhere (node-semver keeps huge
  prerelease numbers as strings and compares them imprecisely);
* a comparator's version takes one optional ``v`` (after ``~``/``^`` also ``=``):
  node-semver lets X-ranges, but not full versions, start with any run of ``v``/``=``;
* ``*`` is only a whole X identifier (node-semver deletes stray ``*``: ``*1.2.3``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from webmodels.naming.semver import (
    BUILD,
    MAX_SAFE_INTEGER,
    MAX_VERSION_LENGTH,
    PRERELEASE,
    Version,
    VersionError,
    VersionKey,
    identifiers,
    show,
)

MAX_RANGE_LENGTH = 1024
MAX_ALTERNATIVES = 64
MAX_COMPARATORS = 32  # per "||" alternative, as written

_XID = r"(?:0|[1-9][0-9]*|[xX*])"
_PARTIAL = (
    rf"(?P<major>{_XID})(?:\.(?P<minor>{_XID})(?:\.(?P<patch>{_XID})"
    rf"(?:-(?P<pre>{PRERELEASE}))?)?)?(?P<build>\+{BUILD})?"
)
_PRIMITIVE_RE = re.compile(rf"(?P<op><=|>=|<|>|=)?v?{_PARTIAL}")
_TILDE_CARET_RE = re.compile(rf"(?P<op>~>?|\^)[v=]?{_PARTIAL}")
_HYPHEN_SIDE_RE = re.compile(rf"[v=]?{_PARTIAL}")
_HYPHEN_RE = re.compile(r"(\S+)\s+-\s+(\S+)")
_OP_SPACE_RE = re.compile(r"(~>?|\^|[<>]=?|=)\s+")  # node-semver: ">= 1.2" is ">=1.2"

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
            raise VersionError(f"invalid version range {show(stripped)}: {error}") from None
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
            raise VersionError(f"a number after an X in {show(match[0])}")
        else:
            numbers.append(int(raw))
    pre = identifiers(match["pre"]) if numbers[2] is not None else ()
    return _Partial(numbers[0], numbers[1], numbers[2], pre)


def _side(text: str) -> _Partial:
    match = _HYPHEN_SIDE_RE.fullmatch(text)
    if match is None:
        raise VersionError(f"{show(text)} is not a version or X-range")
    return _partial(match)


def _expand(token: str, include: bool) -> list[Comparator]:
    if (match := _TILDE_CARET_RE.fullmatch(token)) is not None:
        part = _partial(match)
        return _caret(part, include) if match["op"] == "^" else _tilde(part, include)
    if (match := _PRIMITIVE_RE.fullmatch(token)) is not None:
        return _xrange(match["op"] or "", _partial(match), include)
    raise VersionError(f"{show(token)} is not a comparator, ^/~ range or X-range")


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
