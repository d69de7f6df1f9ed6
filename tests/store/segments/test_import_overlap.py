"""A one-pass import hashes on a second thread (store/importing.py,
`SegmentStore.ingest_bytes`): the whole file while it is cut and parsed, each segment
while the segments are written. What that must not change: the digests are those of
the bytes, and a segment write that fails is said as the disk's error and leaves no
temp file and nothing published."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from support.containers import write_onnx
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store import Store, importing
from webmodels.store.segments import packs, segment_store
from webmodels.store.segments.split import Piece, Plan

DEADLINE_S = 60.0  # generous: a loaded 2-core machine


def _model(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    source = folder / "model.onnx"  # 12 tensors of 64 KiB: 12 segments
    write_onnx(source, [rng.standard_normal(16 << 10).astype(np.float32) for _ in range(12)])
    return source


def _temps(store: Store) -> list[Path]:
    tmp = store.segmented.store.tmp_dir
    return sorted([*tmp.glob("*.seg"), *tmp.glob("*.pack")])


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_the_file_is_hashed_while_it_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole file's hash waits here until the file is being cut: it only starts
    if the hash runs beside the cut (in turn, it never would)."""
    source = _model(tmp_path)
    cutting = threading.Event()
    real_hash, real_plan = importing._sha256, importing.plan_bytes

    def hash_once_cutting(data: bytearray) -> Digest:
        _wait_for(cutting.is_set, "the file was not cut while it was hashed")
        return real_hash(data)

    def plan(data: bytearray) -> Plan:
        cutting.set()
        return real_plan(data)

    monkeypatch.setattr(importing, "_sha256", hash_once_cutting)
    monkeypatch.setattr(importing, "plan_bytes", plan)
    with Store(tmp_path / "store", segments=True) as store:
        result = store.import_file(source)
        data = source.read_bytes()
        assert result.model.digest.hex == hashlib.sha256(data).hexdigest()
        assert store.read(result.model.digest, 0, len(data)) == (data, len(data))


def test_segments_are_hashed_while_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The segments' hashes wait here until a segment's temp file exists: it only
    appears if the segments are written meanwhile."""
    source = _model(tmp_path)
    real = segment_store._digests

    with Store(tmp_path / "store", segments=True) as store:

        def hash_once_writing(data: memoryview, pieces: list[Piece]) -> list[Digest]:
            _wait_for(lambda: bool(_temps(store)), "no segment was written while hashing")
            return real(data, pieces)

        monkeypatch.setattr(segment_store, "_digests", hash_once_writing)
        result = store.import_file(source)
        data = source.read_bytes()
        assert store.read(result.model.digest, 0, len(data)) == (data, len(data))
        recipe = store.recipe_of(result.model.digest)
        assert recipe is not None and len(recipe.segments) == 12
        for segment in recipe.segments:  # each named by the hash of its own bytes
            path, offset = store.segmented.store.locate(segment)
            with path.open("rb") as fh:
                fh.seek(offset)
                assert hashlib.sha256(fh.read(segment.size)).hexdigest() == segment.digest.hex
        assert _temps(store) == []


def test_a_segment_write_that_fails_is_the_disks_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (simulated: the write of the 4th segment fails with ENOSPC, which a
    test cannot cause for real here) is said as ``disk_full``, as before the writes
    moved to a second thread, and every temp file written is removed."""
    source = _model(tmp_path)
    calls: list[int] = []
    real, real_add = segment_store._write_all, packs.PackWriter.add

    def fails_on_the_fourth() -> None:
        calls.append(1)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write_all(fd: int, view: memoryview) -> None:  # a segment in its own file
        fails_on_the_fourth()
        real(fd, view)

    def add(writer: packs.PackWriter, data: memoryview) -> int:  # a segment in a pack
        fails_on_the_fourth()
        return real_add(writer, data)

    monkeypatch.setattr(segment_store, "_write_all", write_all)
    monkeypatch.setattr(packs.PackWriter, "add", add)
    with Store(tmp_path / "store", segments=True) as store:
        with pytest.raises(HostError) as raised:
            store.import_file(source)
        assert raised.value.code == "disk_full"
        assert _temps(store) == []
        assert list(store.segmented.store.iter_segments()) == []
        assert list(store.segmented.store.iter_packs()) == []
        assert store.list_models() == []
