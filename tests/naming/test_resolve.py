"""Resolution (naming/resolve.py): name + range + substitute → the model to give.
Pure: candidates and a visibility oracle in, a choice out (the IO glue is tested
through real host processes in tests/methods/test_names.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webmodels.catalogs.documents import ModelRef
from webmodels.digest import Digest
from webmodels.naming.resolve import Candidate, NameQuery, resolve, signature_mismatch
from webmodels.naming.versions import ModelName, Version, VersionRange
from webmodels.store.metadata import ModelMetadata, ValueInfo

MODEL = ModelName.parse("pub/model")
FP16 = ModelName.parse("pub/model-fp16")
X = (ValueInfo("x", "float32", ("N", 4)),)
Y = (ValueInfo("y", "float32", ("N", 4)),)


def digest(label: str) -> Digest:
    return Digest(hashlib.sha256(label.encode()).hexdigest())


def cand(
    version: str,
    *,
    name: ModelName = MODEL,
    source: str = "catalog:c",
    urls: tuple[str, ...] = ("https://models.example/m",),
    signature: bool = True,
    equivalents: Iterable[str] = (),
) -> Candidate:
    return Candidate(
        name=name,
        version=Version.parse(version),
        digest=digest(f"{name}@{version}/{source}"),
        size=100,
        urls=urls,
        source=source,
        inputs=X if signature else None,
        outputs=Y if signature else None,
        equivalents=tuple(ModelRef.parse(e) for e in equivalents),
    )


def query(range_text: str, substitute: str = "none", name: ModelName = MODEL) -> NameQuery:
    return NameQuery(name, VersionRange.parse(range_text), substitute)


def meta(inputs: tuple[ValueInfo, ...] = X, outputs: tuple[ValueInfo, ...] = Y) -> ModelMetadata:
    return ModelMetadata("onnx", inputs, outputs)


def run(
    q: NameQuery,
    candidates: list[Candidate],
    at_hand: Iterable[Candidate] = (),
    described: dict[Digest, ModelMetadata] | None = None,
) -> tuple[Candidate | None, bool, bool, list[Digest]]:
    """(chosen, visible, substituted, digests asked about)."""
    seen = {c.digest for c in at_hand}
    asked: list[Digest] = []

    def visible(d: Digest) -> bool:
        asked.append(d)
        return d in seen

    choice = resolve(q, candidates, visible=visible, described=(described or {}).get)
    if choice is None:
        return None, False, False, asked
    return choice.candidate, choice.visible, choice.substituted, asked


def test_none_gives_the_newest_version_in_range_and_downloads_it() -> None:
    old, new, other_major = cand("1.4.0"), cand("1.5.0"), cand("2.0.0")
    chosen, visible, substituted, _ = run(query("^1"), [old, new, other_major], at_hand=[old])
    assert chosen == new and not visible and not substituted


def test_none_uses_the_newest_when_it_is_already_at_hand() -> None:
    pre = cand("1.4.0", source="preinstalled", urls=())
    listed = cand("1.4.0")
    chosen, visible, substituted, _ = run(query("^1"), [listed, pre], at_hand=[pre])
    assert chosen == pre and visible and not substituted


def test_preinstalled_comes_first_within_a_version() -> None:
    pre = cand("1.4.0", source="preinstalled", urls=())
    listed = cand("1.4.0")
    chosen, _, _, asked = run(query("^1"), [listed, pre], at_hand=[pre, listed])
    assert chosen == pre and asked == [pre.digest]


def test_compatible_prefers_an_older_version_at_hand_and_says_so() -> None:
    old, new = cand("1.4.0", source="preinstalled", urls=()), cand("1.5.0")
    chosen, visible, substituted, _ = run(query("^1", "compatible"), [old, new], at_hand=[old])
    assert chosen == old and visible and substituted


def test_compatible_downloads_the_newest_when_nothing_is_at_hand() -> None:
    old, new = cand("1.4.0"), cand("1.5.0")
    chosen, visible, substituted, _ = run(query("^1", "compatible"), [old, new])
    assert chosen == new and not visible and not substituted


def test_out_of_range_and_other_names_are_never_given() -> None:
    other = cand("1.0.0", name=FP16)
    two = cand("2.0.0")
    assert run(query("^1", "equivalent"), [other, two], at_hand=[other, two])[0] is None


def test_prereleases_only_when_the_range_asks() -> None:
    beta, release = cand("1.6.0-beta.1"), cand("1.5.0")
    assert run(query("^1"), [beta, release])[0] == release
    assert run(query("^1.6.0-beta.0"), [beta, release])[0] == beta


def test_visibility_is_asked_lazily_newest_first() -> None:
    """Each question may cost the site a probe of its budget: none below the answer."""
    versions = [cand(f"1.{n}.0") for n in range(6)]
    _, _, _, asked = run(query("^1", "compatible"), versions, at_hand=[versions[4]])
    assert asked == [versions[5].digest, versions[4].digest]


def test_an_equivalent_with_a_compatible_signature_is_substituted() -> None:
    wanted = cand("1.5.0", equivalents=["pub/model-fp16@1.5.0"])
    fp16 = cand("1.5.0", name=FP16, source="preinstalled", urls=())
    described = {fp16.digest: meta()}
    chosen, visible, substituted, _ = run(
        query("^1", "equivalent"), [wanted, fp16], at_hand=[fp16], described=described
    )
    assert chosen == fp16 and visible and substituted
    # Not without opting in.
    assert run(query("^1", "compatible"), [wanted, fp16], [fp16], described)[0] == wanted


def test_an_equivalent_declared_from_its_own_side_counts_too() -> None:
    wanted = cand("1.5.0")
    fp16 = cand("1.5.0", name=FP16, equivalents=["pub/model@1.5.0"])
    chosen = run(query("^1", "equivalent"), [wanted, fp16], [fp16], {fp16.digest: meta()})[0]
    assert chosen == fp16


@pytest.mark.parametrize(
    ("inputs", "outputs", "why"),
    [
        ((ValueInfo("x", "float16", ("N", 4)),), Y, "float16"),
        ((ValueInfo("x", "float32", ("N", 4, 1)),), Y, "rank 3"),
        ((ValueInfo("x", "float32", None),), Y, "rank unknown"),
        ((ValueInfo("input", "float32", ("N", 4)),), Y, "differ"),
        ((*X, ValueInfo("mask", "bool", ("N",))), Y, "differ"),
        (X, (ValueInfo("z", "float32", ("N", 4)),), "no output y"),
        (X, (ValueInfo("y", "int64", ("N", 4)),), "int64"),
    ],
    ids=[
        "input-type",
        "input-rank",
        "rank-unknown",
        "input-name",
        "extra-input",
        "missing-output",
        "output-type",
    ],
)
def test_an_equivalent_with_an_incompatible_signature_is_never_substituted(
    inputs: tuple[ValueInfo, ...], outputs: tuple[ValueInfo, ...], why: str
) -> None:
    wanted = cand("1.5.0", equivalents=["pub/model-fp16@1.5.0"])
    fp16 = cand("1.5.0", name=FP16, source="preinstalled", urls=())
    actual = meta(inputs, outputs)
    assert why in (signature_mismatch(wanted, actual) or "")
    chosen, visible, _, _ = run(
        query("^1", "equivalent"), [wanted, fp16], [fp16], {fp16.digest: actual}
    )
    assert chosen == wanted and not visible  # the model asked for, downloaded


def test_extra_outputs_and_other_dim_names_are_compatible() -> None:
    wanted = cand("1.0.0")
    actual = meta(
        (ValueInfo("x", "float32", ("batch", 4)),),
        (ValueInfo("y", "float32", (None, 4)), ValueInfo("extra", "int64", (1,))),
    )
    assert signature_mismatch(wanted, actual) is None


def test_an_equivalent_is_refused_when_the_catalog_declares_no_signature() -> None:
    wanted = cand("1.0.0", signature=False, equivalents=["pub/model-fp16@1.0.0"])
    fp16 = cand("1.0.0", name=FP16)
    chosen = run(query("1", "equivalent"), [wanted, fp16], [fp16], {fp16.digest: meta()})[0]
    assert chosen == wanted


# -- properties over random catalogs ---------------------------------------------------

VERSIONS = st.builds(
    lambda a, b, c: f"{a}.{b}.{c}",
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
)
RANGES = st.sampled_from(["^1", "~1.2", "1.x", ">=1.1 <3", "*", "0.x || 2.x", "^0.2"])
SIGNATURES = st.sampled_from([meta(), meta((ValueInfo("x", "float16", ("N", 4)),), Y)])


@settings(max_examples=300, deadline=None)
@given(
    versions=st.lists(VERSIONS, min_size=1, max_size=8, unique=True),
    equivalents=st.lists(VERSIONS, max_size=4, unique=True),
    at_hand=st.sets(st.integers(0, 11)),
    range_text=RANGES,
    substitute=st.sampled_from(["none", "compatible", "equivalent"]),
    signature=SIGNATURES,
)
def test_resolution_invariants(
    versions: list[str],
    equivalents: list[str],
    at_hand: set[int],
    range_text: str,
    substitute: str,
    signature: ModelMetadata,
) -> None:
    wanted = [cand(v, equivalents=[f"pub/model-fp16@{e}" for e in equivalents]) for v in versions]
    others = [cand(e, name=FP16, source="preinstalled", urls=()) for e in equivalents]
    candidates = wanted + others
    visible = [c for n, c in enumerate(candidates) if n in at_hand]
    described = {c.digest: signature for c in others}
    q = query(range_text, substitute)
    chosen, is_visible, substituted, _ = run(q, candidates, visible, described)
    in_range = [c for c in wanted if q.range.matches(c.version)]
    if not in_range:
        assert chosen is None
        return
    assert chosen is not None
    newest = max(c.version.key() for c in in_range)
    visible_in_range = [c for c in in_range if c in visible]
    if chosen.name == MODEL:
        assert q.range.matches(chosen.version)
        assert substituted == (chosen.version.key() != newest)
    else:  # an equivalent: only when asked, at hand, and with a matching signature
        assert substitute == "equivalent" and substituted and is_visible
        assert not visible_in_range
        assert signature_mismatch(wanted[0], described[chosen.digest]) is None
    if substitute == "none":
        assert chosen.version.key() == newest and chosen.name == MODEL
    if substitute != "none" and visible_in_range:
        best = max(c.version.key() for c in visible_in_range)
        assert is_visible and chosen.version.key() == best
    assert is_visible == (chosen in visible)
