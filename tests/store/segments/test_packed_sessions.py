"""ONNX Runtime sessions of models whose segments live inside pack files (one file
holding many segments, each at a 4 KiB-aligned offset): the linked graph names the
pack under its name at each segment's offset, the worker links the pack into its
private folder, and the outputs equal those of a session of the whole file (a tiny
graph and a real model). A kept linked graph is written again when its segments lie
elsewhere than when it was made (else it would read other bytes), and a pack cut
short is refused, not read past its end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from store.segments.packing import move_into_pack, packed_digests
from store.segments.test_sessions import files_under, outputs_match, tiny_model
from support.models import real_model
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.tensors import Tensor
from webmodels.store.store import Store

CPU = "CPUExecutionProvider"


def external_places(graph: Path) -> set[tuple[str, int]]:
    """(location, offset) of every external tensor of a kept linked graph."""
    model = onnx.load(str(graph), load_external_data=False)
    found = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            found.add((entries["location"], int(entries["offset"])))
    return found


def kept_places(store: Store, digest: Digest) -> dict[str, list[object]]:
    meta = json.loads((store.segmented.root / "linked" / f"{digest.hex}.json").read_text())
    return dict(meta["places"])


def test_a_session_of_a_packed_model_answers_as_the_whole_file(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    sessions, store = manager
    source = tiny_model(tmp_path / "tiny.onnx")
    digest = store.import_file(source).model.digest
    pack = move_into_pack(store, packed_digests(store, digest))
    recipe = store.recipe_of(digest)
    assert recipe is not None and {s.pack for s in recipe.segments} == {pack}
    assert not any(store.segmented.store.path_of(s.digest).exists() for s in recipe.segments)

    outputs_match(sessions, digest, source)
    root = store.segmented.root
    assert files_under(root / "views") == []  # from the pack, not a rebuilt copy
    places = external_places(root / "linked" / f"{digest.hex}.onnx")
    assert {location for location, _ in places} == {pack}
    assert all(offset > 0 and offset % 4096 == 0 for _, offset in places)
    kept = {tuple(v) for v in kept_places(store, digest).values()}
    assert kept == {(pack, s.offset) for s in recipe.segments}


def test_a_real_model_packed_answers_as_the_whole_file(
    manager: tuple[SessionManager, Store],
) -> None:
    sessions, store = manager
    source = real_model("magika")
    digest = store.import_file(source).model.digest
    held = packed_digests(store, digest)
    pack = move_into_pack(store, held)
    x = np.random.default_rng(3).integers(0, 257, (2, 2048)).astype(np.int32)
    whole = ort.InferenceSession(str(source), providers=[CPU])
    expected = dict(
        zip([o.name for o in whole.get_outputs()], whole.run(None, {"bytes": x}), strict=True)
    )
    session = sessions.create(digest, partition="p")
    got = sessions.run(session.session_id, "p", {"bytes": Tensor("int32", x.shape, x.tobytes())})
    assert got.keys() == expected.keys()
    for name, out in got.items():
        assert bytes(out.data) == expected[name].tobytes()  # type: ignore[arg-type]
    places = external_places(store.segmented.root / "linked" / f"{digest.hex}.onnx")
    print(f"magika: {len(held)} segments in one pack, {len(places)} tensors read from it")
    assert places and {location for location, _ in places} == {pack}
    assert files_under(store.segmented.root / "views") == []


def test_a_kept_linked_graph_is_written_again_when_its_segments_move(
    manager: tuple[SessionManager, Store], tmp_path: Path
) -> None:
    """Where the import put them -> pack A -> pack B (the old places overwritten, as
    junk left behind by a quarantine): each session reads the bytes where they are."""
    sessions, store = manager
    source = tiny_model(tmp_path / "tiny.onnx")
    digest = store.import_file(source).model.digest
    held = packed_digests(store, digest)
    graph = store.segmented.root / "linked" / f"{digest.hex}.onnx"
    outputs_match(sessions, digest, source)  # kept naming where the import put them
    recipe = store.recipe_of(digest)
    assert recipe is not None
    assert {location for location, _ in external_places(graph)} == {
        s.pack or s.digest.hex for s in recipe.segments
    }

    first = move_into_pack(store, held)
    outputs_match(sessions, digest, source)
    assert {location for location, _ in external_places(graph)} == {first}

    second = move_into_pack(store, held, lead=3 * 4096)
    outputs_match(sessions, digest, source)
    assert {location for location, _ in external_places(graph)} == {second}
    assert {v[0] for v in kept_places(store, digest).values()} == {second}


def test_a_pack_cut_short_is_refused(manager: tuple[SessionManager, Store], tmp_path: Path) -> None:
    sessions, store = manager
    source = tiny_model(tmp_path / "tiny.onnx")
    digest = store.import_file(source).model.digest
    pack = move_into_pack(store, packed_digests(store, digest))
    outputs_match(sessions, digest, source)
    path = store.segmented.store.pack_path(pack)
    last = max(
        offset
        for _, offset in external_places(store.segmented.root / "linked" / f"{digest.hex}.onnx")
    )
    with path.open("r+b") as fh:
        fh.truncate(last + 16)  # the last segment cut short
    with pytest.raises(HostError) as refused:
        sessions.create(digest, partition="p")
    assert refused.value.code == "model_unsafe"  # past the end of the file it has now
