"""Name + range → the model to give (docs/design.md#names-versions-and-sources).
Pure: candidates and two questions in
("can this partition already see these bytes?", "what does the model itself declare?"),
a choice and its explanation out.

* ``none`` (the default): the newest version in the range that any source knows —
  what the page would get without the store. It costs no transfer when the partition
  can already see those bytes (a pre-installed copy, its own download).
* ``compatible``: any version in the range, preferring the newest one the partition
  can already see; otherwise as ``none``.
* ``equivalent``: as ``compatible``, then a catalog-declared equivalent the partition
  can already see (another quantization, another opset) whose input/output signature,
  read from the model itself, matches what the catalog declares for the requested
  model (names, element types, ranks). Equivalents are never downloaded instead of the
  model asked for: substitution is for what is already at hand.

Visibility is asked lazily, newest first, and only about candidates that could be
chosen: for common models each question is charged to the site's probe budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from webmodels.catalogs.documents import CatalogEntry, ModelRef
from webmodels.digest import Digest
from webmodels.naming.versions import ModelName, Version, VersionRange
from webmodels.store.metadata import ModelMetadata, ValueInfo

SUBSTITUTE = ("none", "compatible", "equivalent")
_SOURCE_RANK = {"preinstalled": 0, "request": 2}  # catalogs rank 1: pre-installed first


@dataclass(frozen=True, slots=True)
class Candidate:
    """One known (name, version, bytes) and where it comes from."""

    name: ModelName
    version: Version
    digest: Digest
    size: int | None
    urls: tuple[str, ...]
    source: str  # "preinstalled" | "catalog:<name>" | "request" (an inline descriptor)
    inputs: tuple[ValueInfo, ...] | None = None  # as declared (catalogs)
    outputs: tuple[ValueInfo, ...] | None = None
    equivalents: tuple[ModelRef, ...] = ()

    @classmethod
    def from_entry(cls, entry: CatalogEntry, catalog: str) -> Candidate:
        return cls(
            name=entry.name,
            version=entry.version,
            digest=entry.digest,
            size=entry.size,
            urls=entry.urls,
            source=f"catalog:{catalog}",
            inputs=entry.inputs,
            outputs=entry.outputs,
            equivalents=entry.equivalents,
        )

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version} ({self.source}, sha256 {self.digest.short})"

    def is_ref(self, ref: ModelRef) -> bool:
        return self.name == ref.name and self.version.key() == ref.version.key()


@dataclass(frozen=True, slots=True)
class NameQuery:
    name: ModelName
    range: VersionRange
    substitute: str = "none"
    prerelease: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    candidate: Candidate
    visible: bool  # the partition can already see these bytes: no transfer
    substituted: bool  # not the newest version in the range of the model asked for
    newest: Candidate  # what `none` asks for
    steps: tuple[str, ...] = field(default=())  # why, for `webmodels resolve`


Visible = Callable[[Digest], bool]
Described = Callable[[Digest], ModelMetadata | None]


def resolve(
    query: NameQuery, candidates: Sequence[Candidate], *, visible: Visible, described: Described
) -> Choice | None:
    """The model to give for `query`, or None when no known version is in range."""
    steps: list[str] = []
    order = _matching(query, candidates)
    if not order:
        return None
    newest = order[0].version
    top = [c for c in order if c.version.key() == newest.key()]
    steps.append(f"newest in {query.range}: {newest} ({len(order)} candidates in range)")
    memo: dict[Digest, bool] = {}

    def seen(candidate: Candidate) -> bool:
        if candidate.digest not in memo:
            memo[candidate.digest] = visible(candidate.digest)
        return memo[candidate.digest]

    for candidate in top:
        if seen(candidate):
            steps.append(f"already at hand: {candidate.label}")
            return Choice(candidate, True, False, top[0], tuple(steps))
    if query.substitute in ("compatible", "equivalent"):
        for candidate in order[len(top) :]:
            if seen(candidate):
                steps.append(f"older version in range at hand: {candidate.label}")
                return Choice(candidate, True, True, top[0], tuple(steps))
        steps.append("no version in range is at hand")
    if query.substitute == "equivalent":
        found = _equivalent(order, candidates, seen, described, steps)
        if found is not None:
            return Choice(found, True, True, top[0], tuple(steps))
    fetchable = [c for c in top if c.urls] or top
    steps.append(f"to download: {fetchable[0].label}")
    return Choice(fetchable[0], False, False, top[0], tuple(steps))


def _matching(query: NameQuery, candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates of the name in range: newest first, pre-installed first in a version."""
    found = [
        c
        for c in candidates
        if c.name == query.name
        and query.range.matches(c.version, include_prerelease=query.prerelease)
    ]
    found.sort(key=lambda c: _SOURCE_RANK.get(c.source, 1))
    found.sort(key=lambda c: c.version.key(), reverse=True)
    return found


def _equivalent(
    order: Sequence[Candidate],
    candidates: Sequence[Candidate],
    seen: Callable[[Candidate], bool],
    described: Described,
    steps: list[str],
) -> Candidate | None:
    """A visible equivalent of the newest possible requested version whose own metadata
    matches the signature the catalog declares for the requested model."""
    for wanted in order:
        for other in _equivalents_of(wanted, candidates):
            if not seen(other):
                continue
            why = signature_mismatch(wanted, described(other.digest))
            if why is None:
                steps.append(f"equivalent of {wanted.name}@{wanted.version} at hand: {other.label}")
                return other
            steps.append(f"equivalent {other.label} refused: {why}")
    return None


def _equivalents_of(wanted: Candidate, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Declared either way: `wanted` lists the other, or the other lists `wanted`."""
    found = [
        c
        for c in candidates
        if c.digest != wanted.digest
        and (
            any(c.is_ref(ref) for ref in wanted.equivalents)
            or any(wanted.is_ref(ref) for ref in c.equivalents)
        )
    ]
    found.sort(key=lambda c: _SOURCE_RANK.get(c.source, 1))
    return found


def signature_mismatch(wanted: Candidate, actual: ModelMetadata | None) -> str | None:
    """Why `actual` (read from the equivalent's own bytes) cannot stand in for `wanted`
    (as its catalog declares it), or None when it can: the same input names, and every
    declared output present, each with the same element type and rank."""
    if wanted.inputs is None or wanted.outputs is None:
        return f"the catalog declares no signature for {wanted.name}@{wanted.version}"
    if actual is None or actual.format != "onnx":
        return "its own metadata could not be read"
    have_in = {v.name: v for v in actual.inputs}
    if set(have_in) != {v.name for v in wanted.inputs}:
        return f"inputs {sorted(have_in)} differ from {[v.name for v in wanted.inputs]}"
    have_out = {v.name: v for v in actual.outputs}
    for declared, have in [(v, have_in[v.name]) for v in wanted.inputs] + [
        (v, have_out.get(v.name)) for v in wanted.outputs
    ]:
        why = _value_mismatch(declared, have)
        if why is not None:
            return why
    return None


def _value_mismatch(declared: ValueInfo, have: ValueInfo | None) -> str | None:
    if have is None:
        return f"it has no output {declared.name}"
    if have.type != declared.type:
        return f"{declared.name} is {have.type}, not {declared.type}"
    if declared.dims is not None and (have.dims is None or len(have.dims) != len(declared.dims)):
        rank = "unknown" if have.dims is None else len(have.dims)
        return f"{declared.name} has rank {rank}, not {len(declared.dims)}"
    return None


def parse_substitute(value: object) -> str:
    if value is None:
        return "none"
    if value not in SUBSTITUTE:
        raise ValueError(f"substitute must be one of {', '.join(SUBSTITUTE)}")
    return str(value)
