"""An import with segments on reads the file once and writes only its segments
(store/importing.py): no temp copy of the whole file appears in the store, a process
killed at any point leaves nothing half-published (the next start and gc clear what it
left), and what is stored reads back byte for byte."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from support.containers import write_gguf, write_onnx, write_safetensors
from webmodels.digest import Digest
from webmodels.store import Store
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.segments import Plan, Recipe, plan
from webmodels.store.segments.reaper import drain
from webmodels.store.segments.split import plan_bytes

IMPORT = (
    "import sys; from pathlib import Path; from webmodels.store import Store; "
    "Store(Path(sys.argv[1]), segments=True).import_file(Path(sys.argv[2]))"
)
DEADLINE_S = 120.0  # generous: a loaded 2-core machine


def _model(folder: Path) -> Path:
    rng = np.random.default_rng(15)
    source = folder / "model.onnx"  # 48 tensors of 128 KiB and a few tiny ones
    tensors = [rng.standard_normal(32 << 10).astype(np.float32) for _ in range(48)]
    write_onnx(source, [*tensors, np.arange(8, dtype=np.float32)])
    return source


def _whole_copies(root: Path, size: int) -> list[Path]:
    """Files under the store as large as the imported file (a temp copy of it)."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            try:
                if path.stat().st_size >= size and not name.startswith("index.sqlite3"):
                    found.append(path)
            except FileNotFoundError:
                continue
    return found


def _kill_when(child: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """SIGKILL ``child`` once ``ready()`` holds (False: it ended first)."""
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        if child.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the import never reached the kill point"
        time.sleep(0.0005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return True


def _segment_temps(root: Path) -> bool:
    tmp = root / "segments-v1" / "tmp"
    return tmp.is_dir() and any(tmp.glob("*.seg"))


def _published_segments(root: Path) -> bool:
    shards = root / "segments-v1" / "sha256"
    return shards.is_dir() and any(any(s.iterdir()) for s in shards.iterdir())


def test_an_import_killed_anywhere_leaves_no_copy_and_nothing_half_published(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    source = _model(tmp_path)
    data = source.read_bytes()
    digest = Digest(hashlib.sha256(data).hexdigest())
    root = tmp_path / "store"
    Store(root, segments=True).close()
    points = {"segments being written": _segment_temps, "segments renamed": _published_segments}
    for point, ready in points.items():
        child = subprocess.Popen([sys.executable, "-c", IMPORT, str(root), str(source)])
        if not _kill_when(child, lambda ready=ready: ready(root)):
            pytest.skip(f"the import ended before {point} was seen (machine too fast)")
        # The bytes were read once, into memory: no copy of the file was ever written.
        assert _whole_copies(root, len(data)) == [], point
        with Store(root, segments=True) as store:
            store.remove_stale_temp_files()  # as the next start does
            assert store.get(digest) is None, f"killed while {point}: published"
            assert list((root / "segments-v1" / "tmp").iterdir()) == []
            for found, path in store.segmented.store.iter_segments():
                assert hashlib.sha256(path.read_bytes()).hexdigest() == found.hex
            execute_gc(store, plan_gc(store))  # orphan segments of the dead writer
            assert list(store.segmented.store.iter_segments()) == []
    with Store(root, segments=True) as store:
        result = store.import_file(source)
        assert result.model.digest == digest
        assert store.read(digest, 0, len(data) + 1) == (data, len(data))
        assert drain(), "the segment reaper did not finish"
    print(f"wall time {time.monotonic() - began:.1f} s")


def test_a_segment_gc_removed_before_the_commit_is_written_again(tmp_path: Path) -> None:
    """The segments of a one-pass import are orphans until its transaction commits; a
    gc in between may remove them. The import writes them again from the bytes it
    holds, and the file reads back whole."""
    source = tmp_path / "tensors.safetensors"
    rng = np.random.default_rng(7)
    write_safetensors(source, [rng.standard_normal(16 << 10).astype(np.float32)] * 3)
    data = source.read_bytes()
    with Store(tmp_path / "store", segments=True) as store:
        segments = store.segmented.store
        real = segments.ingest_bytes

        def then_gc(view: memoryview, layout: Plan) -> Recipe:
            """The first write, then a gc (later writes: as they are)."""
            recipe = real(view, layout)
            segments.ingest_bytes = real  # type: ignore[method-assign]
            assert execute_gc(store, plan_gc(store)).freed_bytes > 0  # took them all
            return recipe

        segments.ingest_bytes = then_gc  # type: ignore[method-assign]
        stored = store.import_file(source, raw=True)
        digest = stored.model.digest
        assert store.read(digest, 0, len(data)) == (data, len(data))
        recipe = store.recipe_of(digest)
        assert recipe is not None
        assert all(store.segmented.store.has(s) for s in recipe.segments)


def test_a_file_held_in_memory_is_cut_where_its_path_would_be(tmp_path: Path) -> None:
    """The one-pass import cuts the bytes it holds as `plan` cuts a file: every
    container the same (so its segments are shared with files stored other ways)."""
    rng = np.random.default_rng(3)
    tensors = [rng.standard_normal(4096).astype(np.float32) for _ in range(5)]
    files = {name: tmp_path / name for name in ("m.onnx", "t.safetensors", "t.gguf", "r.bin")}
    write_onnx(files["m.onnx"], tensors)
    write_safetensors(files["t.safetensors"], tensors)
    write_gguf(files["t.gguf"], tensors)
    files["r.bin"].write_bytes(rng.bytes(300 << 10))
    for name, path in files.items():
        held = plan_bytes(bytearray(path.read_bytes()))
        assert held == plan(path), name
        assert held.container != "chunks" or name == "r.bin", name
