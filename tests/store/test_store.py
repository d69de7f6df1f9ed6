"""`Store` in-process: imports, reads, the cheap size check on read, references,
pins, deletion and the disk-usage figures, on real files and a real SQLite index."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.held import held, holds, layout_overhead
from support.models import tiny_model
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import Store
from webmodels.store.metadata import ModelMetadata

SITE_A = "https://a.example https://a.example"
SITE_B = "https://b.example https://cdn.example"


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with Store(home / "store-v2") as opened:
        yield opened


def digest_of(path: Path) -> Digest:
    return Digest(hashlib.sha256(path.read_bytes()).hexdigest())


def test_an_imported_model_is_listed_located_and_read_back(store: Store, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=3000)
    data = model.read_bytes()

    result = store.import_file(model, name="acme/tiny", version="2.1")

    record = result.model
    assert record.digest == digest_of(model)
    assert (record.size, record.format, record.name, record.version) == (
        len(data),
        "onnx",
        "acme/tiny",
        "2.1",
    )
    assert (record.source, record.stored, record.pinned, record.quarantined) == (
        "imported",
        True,
        False,
        False,
    )
    assert store.list_models() == [record]
    location = store.locate(record.digest)
    assert location.path.read_bytes() == data
    assert not location.preinstalled
    assert store.read(record.digest, 0, 10**9) == (data, len(data))
    assert store.read(record.digest, 100, 50) == (data[100:150], len(data))
    assert store.read(record.digest, len(data), 10) == (b"", len(data))
    with pytest.raises(HostError) as past_end:
        store.read(record.digest, len(data) + 1, 10)
    assert past_end.value.code == "bad_request"


def test_progress_reports_every_byte_copied(store: Store, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=3 * 1024 * 1024)
    seen: list[int] = []

    store.import_file(model, progress=seen.append)

    assert seen == sorted(seen) and seen[-1] == model.stat().st_size
    assert len(seen) >= 3  # in chunks, not one call at the end


def test_a_blob_whose_size_changed_is_caught_on_read_without_a_verify(
    home: Path, tmp_path: Path
) -> None:
    # A file kept whole (a store-v1 file not converted yet, or `[store] segments =
    # false`): segments are checked by tests/store/segments/.
    store = Store(home / "store-v2", segments=False)
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=2000)
    digest = store.import_file(model).model.digest
    blob = store.files.path_of(digest)
    os.chmod(blob, 0o644)
    with blob.open("r+b") as fh:
        fh.truncate(blob.stat().st_size // 2)

    with pytest.raises(HostError) as caught:
        store.locate(digest)

    assert caught.value.code == "not_found"
    assert not blob.exists()
    assert len(list(store.files.quarantine_dir.iterdir())) == 1
    [record] = store.list_models()
    assert record.quarantined and not record.stored and not record.servable
    with pytest.raises(HostError):
        store.read(digest, 0, 10)
    # the right bytes, imported again, bring it back
    again = store.import_file(model)
    assert not again.deduplicated and again.model.stored
    assert store.read(digest, 0, 10**9)[0] == model.read_bytes()


def test_unknown_models_are_not_found(store: Store) -> None:
    unknown = Digest("0" * 64)
    assert store.get(unknown) is None
    for action in (
        lambda: store.locate(unknown),
        lambda: store.pin(unknown, True),
        lambda: store.delete(unknown),
    ):
        with pytest.raises(HostError) as caught:
            action()
        assert caught.value.code == "not_found"


def test_sites_that_obtained_a_model_are_recorded_and_count_as_holders(
    store: Store, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=5000)
    digest = store.import_file(model).model.digest
    size = model.stat().st_size

    store.record_use(digest, SITE_A)
    store.record_use(digest, SITE_B)
    store.record_use(digest, SITE_A)  # again: still one holder

    record = store.get(digest)
    assert record is not None and sorted(record.sites) == sorted([SITE_A, SITE_B])
    assert sorted(record.manage_info()["sites"], key=lambda s: s["top_site"]) == [
        {"top_site": "https://a.example", "origin": "https://a.example"},
        {"top_site": "https://b.example", "origin": "https://cdn.example"},
    ]
    stats = store.stats()
    overhead = layout_overhead(store)  # the recipe's own bytes, with segments on
    assert (stats.physical_bytes, stats.logical_bytes) == (size + overhead, 3 * size)
    assert stats.saved_bytes == 2 * size - overhead


def test_pins_protect_from_deletion_until_removed_or_forced(store: Store, tmp_path: Path) -> None:
    a = store.import_file(tiny_model(tmp_path / "a.onnx", seed=1)).model
    b = store.import_file(tiny_model(tmp_path / "b.onnx", seed=2)).model

    assert store.pin(a.digest, True).pinned
    assert store.pin(b.digest, True).pinned
    with pytest.raises(HostError) as refused:
        store.delete(a.digest)

    assert refused.value.code == "model_pinned"
    assert holds(store, a.digest)
    assert store.stats().pinned == 2
    assert store.delete(a.digest, force=True) == a.size
    assert not holds(store, a.digest) and store.get(a.digest) is None
    assert not store.pin(b.digest, False).pinned
    assert store.delete(b.digest) == b.size
    assert store.list_models() == []
    assert held(store) == set()


def test_an_expected_hash_that_does_not_match_publishes_nothing(store: Store) -> None:
    pending = store.files.write_stream(io.BytesIO(b"attacker bytes"))
    wanted = Digest(hashlib.sha256(b"the real model").hexdigest())

    with pytest.raises(HostError) as caught:
        store.ingest(pending, ModelMetadata("binary"), origin="downloaded", expected=wanted)

    assert caught.value.code == "integrity_mismatch"
    assert caught.value.details == {"expected": wanted.hex, "actual": pending.digest.hex}
    assert held(store) == set()
    assert list(store.files.tmp_dir.iterdir()) == []
    assert store.list_models() == []


def test_a_richer_description_replaces_an_opaque_one(store: Store, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.onnx")

    raw = store.import_file(model, raw=True).model
    onnx_import = store.import_file(model).model
    raw_again = store.import_file(model, raw=True).model

    assert raw.format == "binary"
    assert onnx_import.format == raw_again.format == "onnx"
    assert [i.name for i in raw_again.metadata.inputs] == ["x"]
