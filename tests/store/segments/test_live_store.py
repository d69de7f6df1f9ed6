"""The live store with `[store] segments = true` (store/segmented.py): files read back
byte for byte (whole and in ranges, through `models.read`'s path and the loopback
sender), variants of one model take about one copy of their weights on disk, `verify`
finds a corrupted segment, and gc keeps what another file still names.

The flag is set through WEBMODELS_STORE_SEGMENTS, as a user's config file would set it,
so the same tests run against a store without segments show what they catch."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from support.containers import write_onnx
from webmodels.config import Flags, load_config
from webmodels.digest import Digest
from webmodels.store import Store
from webmodels.store.segments.packs import aligned
from webmodels.store.segments.reaper import drain
from webmodels.store.verify import verify_store

WEIGHTS = 6  # tensors of 256 KiB each: 1.5 MiB of weights per variant


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("WEBMODELS_STORE_SEGMENTS", "1")  # config.ENV_STORE_SEGMENTS
    with Store(home / "store-v2") as opened:
        yield opened


def variants(folder: Path) -> tuple[Path, Path]:
    """Two exports of one model: the same weights, the second with one more tensor
    (so its graph, and every byte after the first tensor, differs)."""
    rng = np.random.default_rng(15)
    weights = [rng.standard_normal(64 << 10).astype(np.float32) for _ in range(WEIGHTS)]
    first, second = folder / "plain.onnx", folder / "extended.onnx"
    write_onnx(first, weights)
    write_onnx(second, [*weights, np.arange(16, dtype=np.float32)])
    return first, second


def disk_bytes(root: Path) -> int:
    """What the store's files take on the file system (allocated blocks), the index
    and its logs left out. Duplicate segment copies are renamed aside and unlinked on
    the reaper thread after the writer moved on (reaper.py); under load that thread
    can lag, so wait for it first: what is measured is what stays on disk."""
    assert drain(), "the segment reaper did not finish"
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.startswith("index.sqlite3"):
                total += os.stat(os.path.join(folder, name)).st_blocks * 512
    return total


def sha(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest())


def test_segments_are_the_default_and_the_config_file_turns_them_off(
    home: Path, tmp_path: Path
) -> None:
    assert load_config(Flags(home=home, config_file=tmp_path / "none.toml"), env={}).store_segments
    config_file = tmp_path / "config.toml"
    config_file.write_text("[store]\nsegments = false\n")
    assert not load_config(Flags(home=home, config_file=config_file), env={}).store_segments
    config_file.write_text("[store]\nsegments = true\n")
    assert load_config(Flags(home=home, config_file=config_file), env={}).store_segments
    whole = {"WEBMODELS_STORE_SEGMENTS": "0"}
    assert not load_config(Flags(home=home, config_file=config_file), env=whole).store_segments


def test_a_file_reads_back_byte_for_byte_whole_and_in_ranges(store: Store, tmp_path: Path) -> None:
    model, _ = variants(tmp_path)
    data = model.read_bytes()
    digest = store.import_file(model).model.digest
    assert digest == sha(data)
    assert store.recipe_of(digest) is not None
    assert not store.files.exists(digest)  # no whole copy under blobs/
    whole, size = store.read(digest, 0, len(data) + 10)
    assert (whole, size) == (data, len(data))
    rng = np.random.default_rng(1)
    for _ in range(40):  # ranges that start and end inside parts and across them
        offset = int(rng.integers(0, len(data)))
        length = int(rng.integers(1, 600_000))
        assert store.read(digest, offset, length)[0] == data[offset : offset + length]
    assert store.read(digest, len(data), 5)[0] == b""
    # The loopback fast path's sender, into a real socket.
    recipe = store.servable_recipe(digest)
    assert recipe is not None
    left, right = socket.socketpair()
    received = bytearray()

    def drain() -> None:
        while chunk := right.recv(1 << 20):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with left:
        store.segmented.send_parts(recipe, left)
    reader.join()
    right.close()
    assert bytes(received) == data
    # Callers that need a path (ONNX Runtime) get the same bytes.
    assert store.locate(digest).path.read_bytes() == data


def test_two_variants_of_a_model_take_about_one_copy_of_the_weights(
    store: Store, tmp_path: Path
) -> None:
    first, second = variants(tmp_path)
    logical = first.stat().st_size + second.stat().st_size
    store.import_file(first)
    store.import_file(second)
    physical = disk_bytes(store.root)
    print(f"two variants: {logical} logical bytes, {physical} on disk")
    assert physical < 1.2 * first.stat().st_size  # a whole-file store holds both: ~2x
    # `webmodels du` (Store.stats) counts each segment once, against logical bytes.
    stats = store.stats()
    assert stats.logical_bytes == logical
    assert stats.physical_bytes < 1.2 * first.stat().st_size
    assert stats.saved_bytes > 0.8 * second.stat().st_size


def test_verify_finds_a_corrupted_segment_and_unrelated_files_still_read(
    store: Store, tmp_path: Path
) -> None:
    first, second = variants(tmp_path)
    a = store.import_file(first).model.digest
    b = store.import_file(second).model.digest
    other = tmp_path / "other.bin"
    other.write_bytes(np.random.default_rng(5).bytes(300_000))
    c = store.import_file(other, raw=True).model.digest
    recipe = store.recipe_of(a)
    assert recipe is not None
    victim, offset = store.segmented.store.locate(recipe.segments[0])
    os.chmod(victim, 0o600)
    rotten = bytearray(victim.read_bytes())
    rotten[offset + 100] ^= 0xFF
    victim.write_bytes(bytes(rotten))
    report = verify_store(store)
    assert {p.digest for p in report.problems} == {a, b}  # both name the segment
    assert store.get(a) is None or not store.get(a).stored  # type: ignore[union-attr]
    assert store.read(c, 0, 1 << 20)[0] == other.read_bytes()
    # Storing the file again heals it.
    assert store.import_file(first).model.stored
    assert store.read(a, 0, 10 << 20)[0] == first.read_bytes()


def test_gc_keeps_segments_another_file_names_and_frees_the_rest(
    store: Store, tmp_path: Path
) -> None:
    first, second = variants(tmp_path)
    a = store.import_file(first).model.digest
    b = store.import_file(second).model.digest
    store.locate(a)  # a view for ONNX Runtime: goes with the file
    store.delete(a)
    assert store.get(a) is None and store.recipe_of(a) is None
    assert store.read(b, 0, 10 << 20)[0] == second.read_bytes()
    recipe_b = store.recipe_of(b)
    assert recipe_b is not None
    held = {Digest(str(r[0])) for r in store.index.query("SELECT segment FROM segment_refs")}
    assert held == {s.digest for s in recipe_b.segments}
    # On disk: b's segments, each once (a's own ranges were freed, b's copies of
    # what a held too were never kept), in whole blocks; slack for the file system's
    # own blocks (extent trees).
    distinct = {s.digest: s for s in recipe_b.segments}.values()
    assert disk_bytes(store.root) <= sum(aligned(s.size) for s in distinct) + (64 << 10)
    store.delete(b)
    assert list(store.segmented.store.iter_segments()) == []
    assert list(store.segmented.store.iter_packs()) == []
    assert store.index.query("SELECT * FROM segment_refs") == []
    assert disk_bytes(store.root) == 0


def test_segment_files_a_killed_writer_left_are_removed_when_the_store_opens(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBMODELS_STORE_SEGMENTS", "1")
    root = home / "store-v2"
    Store(root).close()
    tmp = root / "segments-v1" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    dead = tmp / "999999999-0123abcd.seg"  # no such pid
    dead.write_bytes(b"half a tensor")
    live = tmp / f"{os.getpid()}-4567ef.seg"
    live.write_bytes(b"being written")
    config = load_config(Flags(home=home, config_file=home / "none.toml"), env={})
    with Store.open(config):
        pass
    assert not dead.exists() and live.exists()


def test_an_import_writes_one_pack_not_a_file_per_segment(store: Store, tmp_path: Path) -> None:
    """A file's segments land in one pack file, each 4 KiB-aligned (a file per segment
    made imports up to 2.4 times as slow as whole files: docs/segments.md)."""
    first, _ = variants(tmp_path)
    digest = store.import_file(first).model.digest
    recipe = store.recipe_of(digest)
    assert recipe is not None and len(recipe.segments) >= WEIGHTS
    packs = [name for name, _ in store.segmented.store.iter_packs()]
    assert len(packs) == 1 and {s.pack for s in recipe.segments} == set(packs)
    assert list(store.segmented.store.iter_segments()) == []
    assert all(s.offset % 4096 == 0 for s in recipe.segments)
    assert store.read(digest, 0, 10 << 20)[0] == first.read_bytes()
