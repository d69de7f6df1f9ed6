"""A one-pass import overlaps its steps on two threads (store/importing.py,
`_parse_and_stage`): the file's segments are written to temp files while its metadata
is parsed. What the overlap must not change: a file refused by its metadata check,
or whose segments cannot be written, leaves no temp file and publishes nothing, and
a failed write is still said as the disk's error."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from support.containers import write_onnx
from webmodels.errors import HostError
from webmodels.store import Store, importing
from webmodels.store.metadata import ModelMetadata
from webmodels.store.segments import segment_store
from webmodels.store.segments.split import plan_bytes

DEADLINE_S = 60.0  # generous: a loaded 2-core machine


def _model(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    source = folder / "model.onnx"  # 12 tensors of 64 KiB: 12 segments
    write_onnx(source, [rng.standard_normal(16 << 10).astype(np.float32) for _ in range(12)])
    return source


def _temps(store: Store) -> list[Path]:
    return sorted(store.segmented.store.tmp_dir.glob("*.seg"))


def _import_threads_ended() -> None:
    """Wait for the import's helper thread (a broken version may leave it writing)."""
    deadline = time.monotonic() + DEADLINE_S
    while any(t.name.startswith("import") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the import's thread never ended"
        time.sleep(0.01)


def _hash_threads() -> bool:
    return any(t.name.startswith("segment-hash") for t in threading.enumerate())


def test_segments_are_written_while_the_metadata_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata parse waits here until a segment's temp file exists: it only
    appears if the segments are written meanwhile (in turn, it never would)."""
    source = _model(tmp_path)
    seen: list[int] = []
    real = importing.onnx_metadata_of

    with Store(tmp_path / "store", segments=True) as store:

        def parse_once_segments_appear(data: bytearray) -> ModelMetadata:
            deadline = time.monotonic() + DEADLINE_S
            while not _temps(store):
                assert time.monotonic() < deadline, "no segment was written during the parse"
                time.sleep(0.001)
            seen.append(len(_temps(store)))
            return real(data)

        monkeypatch.setattr(importing, "onnx_metadata_of", parse_once_segments_appear)
        result = store.import_file(source)
        data = source.read_bytes()
        assert store.read(result.model.digest, 0, len(data)) == (data, len(data))
        assert _temps(store) == []
    assert seen and seen[0] >= 1


def test_a_file_refused_by_its_metadata_check_leaves_no_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes that are no ONNX model, imported as one: refused, and the segments
    written meanwhile are removed (none published, no temp file left). The parse
    refuses them only once all were written, the case where they would be left."""
    source = tmp_path / "not-a-model.onnx"
    data = np.random.default_rng(9).bytes(600 << 10)  # chunked: segments
    source.write_bytes(data)
    count = sum(not p.inline for p in plan_bytes(bytearray(data)).pieces)
    real = importing.onnx_metadata_of
    with Store(tmp_path / "store", segments=True) as store:

        def refuse_once_all_are_written(held: bytearray) -> ModelMetadata:
            deadline = time.monotonic() + DEADLINE_S
            while len(_temps(store)) < count or _hash_threads():
                assert time.monotonic() < deadline, "the segments were never all written"
                time.sleep(0.001)
            return real(held)

        monkeypatch.setattr(importing, "onnx_metadata_of", refuse_once_all_are_written)
        with pytest.raises(HostError):
            store.import_file(source)
        _import_threads_ended()
        assert _temps(store) == []
        assert list(store.segmented.store.iter_segments()) == []
        assert store.list_models() == []


def test_a_segment_write_that_fails_is_the_disks_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (simulated: the write of the 4th segment fails with ENOSPC, which a
    test cannot cause for real here) is said as ``disk_full``, as before the writes
    moved to a second thread, and every temp file written is removed."""
    source = _model(tmp_path)
    calls: list[int] = []
    real = segment_store._write_all

    def fails_on_the_fourth(fd: int, view: memoryview) -> None:
        calls.append(fd)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, view)

    monkeypatch.setattr(segment_store, "_write_all", fails_on_the_fourth)
    with Store(tmp_path / "store", segments=True) as store:
        with pytest.raises(HostError) as raised:
            store.import_file(source)
        assert raised.value.code == "disk_full"
        _import_threads_ended()
        assert _temps(store) == []
        assert list(store.segmented.store.iter_segments()) == []
        assert store.list_models() == []
