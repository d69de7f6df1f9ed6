"""Signed catalogs (catalogs/documents.py, catalogs/keeper.py): what is accepted, what
is refused, and that each catalog keeps its own key and never goes back a version."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.catalogs import CatalogSigner, entry
from webmodels.catalogs import keeper
from webmodels.catalogs.documents import parse_payload, read_catalog, verify_catalog
from webmodels.errors import HostError
from webmodels.signing import parse_public_key
from webmodels.store.index import Index

NOW = datetime.now(UTC)


def models() -> list[dict[str, Any]]:
    return [
        entry(b"one", "pub/model", "1.4.0", urls=("https://m.example/1.4.onnx",), task="t"),
        entry(b"two", "pub/model", "2.0.0", equivalents=("pub/model-int8@2.0.0",)),
        entry(b"three", "pub/model-int8", "2.0.0", license="MIT"),
    ]


def test_a_signed_catalog_verifies_and_lists_its_models() -> None:
    signer = CatalogSigner()
    catalog = verify_catalog(signer.sign(3, models()), parse_public_key(signer.public), now=NOW)
    assert (catalog.name, catalog.version, len(catalog.entries)) == ("test-catalog", 3, 3)
    first = catalog.entries[0]
    assert (str(first.name), str(first.version), first.urls) == (
        "pub/model",
        "1.4.0",
        ("https://m.example/1.4.onnx",),
    )
    assert [str(e) for e in catalog.entries[1].equivalents] == ["pub/model-int8@2.0.0"]
    assert catalog.entries[2].license == "MIT"


def tamper(document: bytes, change: Any) -> bytes:
    envelope = json.loads(document)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    change(payload)
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (
            lambda s, o: tamper(
                s.sign(1, models()), lambda p: p["models"][0].update(sha256="ab" * 32)
            ),
            "signature does not match",
        ),
        (
            lambda s, o: tamper(
                s.sign(1, models()),
                lambda p: p["models"][0].update(urls=["https://evil.example/x"]),
            ),
            "signature does not match",
        ),
        (lambda s, o: o.sign(1, models()), "does not trust"),
        (lambda s, o: s.sign(1, models(), expires_in=timedelta(hours=-1)), "expired"),
        (lambda s, o: b"{}", "not a signed catalog"),
        (lambda s, o: b"\xff" * 10, "not a signed catalog"),
    ],
    ids=["altered-hash", "altered-url", "other-key", "expired", "not-envelope", "garbage"],
)
def test_refused(make: Any, why: str) -> None:
    signer, other = CatalogSigner(), CatalogSigner()
    with pytest.raises(HostError) as info:
        verify_catalog(make(signer, other), parse_public_key(signer.public), now=NOW)
    assert info.value.code == "bad_request" and why in info.value.message


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"name": "Pub/Model"}, "models[0]"),
        ({"name": "pub/a/b"}, "models[0]"),
        ({"version": "1.4"}, "models[0]"),
        ({"version": 1}, "strings"),
        ({"urls": ["file:///etc/passwd"]}, "http(s)"),
        ({"urls": ["https://x"] * 9}, "at most 8"),
        ({"sha256": "xyz"}, "no valid sha256"),
        ({"size": -1}, "size"),
        ({"equivalents": ["pub/other"]}, "models[0]"),
        ({"inputs": [{"name": "x"}]}, "name and a type"),
        ({"inputs": [{"name": "x", "type": "float32", "dims": [True]}]}, "a dim"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_bad_entry_refuses_the_whole_catalog(bad: dict[str, Any], why: str) -> None:
    signer = CatalogSigner()
    listed = models()
    listed[0].update(bad)
    with pytest.raises(HostError) as info:
        signer.sign(1, listed)  # signing checks too
    assert why in info.value.message


def test_a_version_listed_twice_is_refused() -> None:
    with pytest.raises(HostError, match="listed twice"):
        CatalogSigner().sign(1, [*models(), entry(b"x", "pub/model", "1.4.0")])


def test_keeper_keeps_each_catalogs_key_and_refuses_rollback(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    signer, intruder = CatalogSigner(), CatalogSigner()  # same catalog name, other keys
    catalog, changed = keeper.add(index, signer.sign(2, models()), key=signer.public, source="f")
    assert changed and catalog.version == 2
    assert keeper.add(index, signer.sign(2, models()), key=signer.public, source=None)[1] is False
    with pytest.raises(HostError, match="older than the current 2"):
        keeper.add(index, signer.sign(1, models()), key=signer.public, source=None)
    with pytest.raises(HostError, match="other contents"):
        keeper.add(index, signer.sign(2, models()[:1]), key=signer.public, source=None)
    with pytest.raises(HostError, match="configured with another key"):
        keeper.add(index, intruder.sign(9, models()), key=intruder.public, source=None)
    [installed] = keeper.installed(index)
    assert (installed.catalog.version, installed.source) == (2, "f")  # the last good one
    assert keeper.add(index, signer.sign(3, models()), key=signer.public, source=None)[1]
    assert keeper.installed(index)[0].source == "f"  # kept when not given again
    assert keeper.remove(index, "test-catalog") and keeper.installed(index) == []
    # Once removed, another key may take the name (the user chose to).
    assert keeper.add(index, intruder.sign(1, models()), key=intruder.public, source=None)[1]


def test_an_expired_catalog_is_kept_but_not_in_force(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    signer = CatalogSigner()
    keeper.add(
        index,
        signer.sign(1, models(), expires_in=timedelta(hours=1)),
        key=signer.public,
        source=None,
    )
    assert len(keeper.in_force(index, NOW)) == 1
    assert keeper.in_force(index, NOW + timedelta(hours=2)) == []
    assert read_catalog(keeper.installed(index)[0].catalog.document).version == 1


# -- hostile documents: anything refused is refused with bad_request, nothing else ----

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "name",
    "version",
    "sha256",
    "size",
    "urls",
    "format",
    "task",
    "license",
    "inputs",
    "outputs",
    "equivalents",
]


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    value=JSON,
    head=st.dictionaries(st.sampled_from(["catalog", "version", "expires", "models"]), JSON),
)
def test_hostile_payloads_are_refused_cleanly(field: str, value: Any, head: dict[str, Any]) -> None:
    listed = models()
    listed[0][field] = value
    for payload in (
        json.dumps(
            {"catalog": "c", "version": 1, "expires": "2099-01-01T00:00:00Z", "models": listed}
        ).encode(),
        json.dumps(head).encode(),
    ):
        try:
            parse_payload(payload)
        except HostError as exc:
            assert exc.code == "bad_request"


@settings(max_examples=200, deadline=None)
@given(document=st.binary(max_size=2000) | JSON.map(lambda v: json.dumps(v).encode()))
def test_hostile_envelopes_are_refused_cleanly(document: bytes) -> None:
    signer = CatalogSigner()
    with pytest.raises(HostError) as info:
        verify_catalog(document, parse_public_key(signer.public), now=NOW)
    assert info.value.code == "bad_request"
