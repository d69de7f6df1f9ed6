"""Manifest paths and entries are hostile input: each unsafe shape is refused with
``bad_request`` naming the parameter, and the content hash is canonical."""

from __future__ import annotations

import hashlib

import pytest

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.manifests.values import Entry, build_manifest, parse_manifest

A = Digest("a" * 64)
B = Digest("b" * 64)


def entry(path: str, role: str = "other", size: int = 1, digest: Digest = A) -> Entry:
    return Entry(path, digest, size, role)


@pytest.mark.parametrize(
    "path",
    [
        "../model.onnx_data",
        "onnx/../../etc/passwd",
        "/etc/passwd",
        "C:/Windows/win.ini",
        "c:model.bin",
        "onnx\\model.onnx_data",
        "./model.onnx",
        "onnx//model.onnx",
        "onnx/",
        "",
        "model.onnx\x00.txt",
        "NUL.txt",
        "model.onnx.",
        "a" * 600,
        "/".join(["d"] * 20),
        "file.bin:stream",
    ],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(HostError) as caught:
        build_manifest([entry(path)])
    assert caught.value.code == "bad_request"
    assert caught.value.details == {"field": "files"}


@pytest.mark.parametrize(
    "pair",
    [
        ("model.onnx", "model.onnx"),
        ("Model.onnx", "model.ONNX"),
        ("onnx/Model.onnx", "ONNX/model.onnx"),
        ("ﬁle.bin", "file.bin"),  # the "ﬁ" ligature folds to "fi"
        ("weights", "weights/part0.bin"),  # a file used as a folder
    ],
)
def test_duplicate_names_are_refused(pair: tuple[str, str]) -> None:
    with pytest.raises(HostError) as caught:
        build_manifest([entry(pair[0]), entry(pair[1], digest=B)])
    assert caught.value.code == "bad_request"


def test_shape_limits() -> None:
    for bad in ([], [entry("a", size=-1)], [entry("a", role="binary")]):
        with pytest.raises(HostError, match=r"params\.files"):
            build_manifest(bad)
    with pytest.raises(HostError, match="more than 4096"):
        build_manifest([entry(f"f{i}") for i in range(4097)])


def test_the_hash_is_of_the_canonical_json_whatever_the_order() -> None:
    one = build_manifest([entry("onnx/model.onnx", "graph"), entry("config.json", "config", 9, B)])
    two = build_manifest([entry("config.json", "config", 9, B), entry("onnx/model.onnx", "graph")])
    assert one.digest == two.digest
    assert one.digest.hex == hashlib.sha256(one.canonical).hexdigest()
    assert one.canonical.startswith(b'{"files":[{"path":"config.json"')
    assert parse_manifest(one.to_json()).digest == one.digest
    with pytest.raises(HostError):
        parse_manifest({"format": "other", "files": []})
