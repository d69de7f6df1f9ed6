"""The compile cache with its entries' segments in pack files
(runtime/compile_segments.py, runtime/compiled_relink.py): a cache hit reads the
optimized graph and points each unchanged tensor at the pack holding its segment, at
its offset there, and answers as the source does. After every segment moves to
another pack (the old places overwritten), the hit still reads the right bytes: a
compiled graph never keeps a place inside a pack (a pack has no SHA-256 to key it by)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from store.segments.packing import move_into_pack, packed_digests
from store.segments.test_compile_cache_segments import SIDE, four_weights, run
from webmodels.digest import Digest
from webmodels.runtime.sessions import SessionManager
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"


def every_segment(store: Store) -> list[Digest]:
    return [
        Digest(str(r["segment"])) for r in store.index.query("SELECT segment FROM segment_refs")
    ]


def test_a_cache_hit_reads_its_weights_from_packs(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    sessions, store = manager
    source = four_weights(tmp_path / "four.onnx")
    digest = store.import_file(source).model.digest
    move_into_pack(store, packed_digests(store, digest))
    x = np.linspace(-1, 1, SIDE, dtype=np.float32).reshape(1, SIDE)
    expected = ort.InferenceSession(str(source), providers=[CPU]).run(None, {"x": x})[0]

    first = sessions.create(digest, partition="p")  # from the pack; compiles and saves
    assert not first.compiled_cache_hit
    assert run(sessions, first.session_id) == expected.tobytes()
    [row] = store.index.query("SELECT weights FROM derived WHERE graph IS NOT NULL")
    assert store.recipe_of(Digest(row["weights"])) is not None

    pack = move_into_pack(store, every_segment(store), lead=2 * 4096)
    weights = store.recipe_of(Digest(row["weights"]))
    assert weights is not None and {s.pack for s in weights.segments} == {pack}
    second = sessions.create(digest, partition="p")
    assert second.compiled_cache_hit
    assert run(sessions, second.session_id) == expected.tobytes()
