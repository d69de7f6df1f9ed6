"""Files kept as segments come back byte for byte, in every container layout, and
the same tensor is one segment whatever file holds it (hypothesis)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.containers import write_gguf, write_onnx, write_safetensors
from webmodels.digest import Digest
from webmodels.store.segments import (
    Inline,
    SegmentStore,
    copy_to,
    decode_recipe,
    encode_recipe,
    reconstruct,
    split,
    verify,
)
from webmodels.store.segments.recipe import INLINE_MAX, Recipe
from webmodels.store.segments.split import SEGMENT_MIN

PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Sizes straddle the inline limit (4 KiB) and the chunk sizes (16-256 KiB).
tensor_sizes = st.lists(
    st.one_of(st.integers(1, 1500), st.integers(1024, 20_000), st.integers(60_000, 90_000)),
    min_size=1,
    max_size=10,
)
LAYOUTS = ("onnx", "onnx-external", "safetensors", "gguf", "bytes")


def tensors_of(sizes: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(size // 4 + 1, dtype=np.float32) for size in sizes]


def write_layout(layout: str, folder: Path, tensors: list[np.ndarray]) -> list[Path]:
    """The files of one layout, the graph first where there is external data."""
    path = folder / f"model.{layout}"
    if layout in ("onnx", "onnx-external"):
        write_onnx(path, tensors, external=layout == "onnx-external")
        data = folder / (path.name + ".data")
        return [path, data] if data.exists() else [path]
    writer: dict[str, Callable[[Path, list[np.ndarray]], None]] = {
        "safetensors": write_safetensors,
        "gguf": write_gguf,
    }
    if layout in writer:
        writer[layout](path, tensors)
    else:
        path.write_bytes(b"".join(t.tobytes() for t in tensors))
    return [path]


def ingest_all(store: SegmentStore, files: list[Path]) -> list[Recipe]:
    graph = files[0] if len(files) > 1 else None
    return [store.ingest(files[0])] + [store.ingest(f, graph=graph) for f in files[1:]]


def sha(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest())


@PROPERTY
@given(sizes=tensor_sizes, seed=st.integers(0, 2**32 - 1), layout=st.sampled_from(LAYOUTS))
def test_every_layout_round_trips_byte_for_byte(sizes: list[int], seed: int, layout: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tensors = tensors_of(sizes, seed)
        files = write_layout(layout, folder, tensors)
        store = SegmentStore(folder / "store")
        for path, recipe in zip(files, ingest_all(store, files), strict=True):
            original = path.read_bytes()
            assert b"".join(reconstruct(store, recipe)) == original
            out = folder / "copy"
            with out.open("wb") as fh:
                assert copy_to(store, recipe, fh.fileno()) == len(original)
            assert out.read_bytes() == original
            assert decode_recipe(encode_recipe(recipe)) == recipe
            graph = files[0] if path != files[0] else None
            assert split(path, graph=graph) == recipe  # hashing alone finds the same cuts
            assert verify(store, recipe, sha(original)).ok
            if layout == "bytes":  # unparsed: short runs inline, the rest chunked
                assert all(p.size < INLINE_MAX for p in recipe.parts if isinstance(p, Inline))
            else:  # parsed: every segment a tensor, the rest inline (compressed)
                assert {s.digest for s in recipe.segments} <= {sha(t.tobytes()) for t in tensors}


@PROPERTY
@given(sizes=tensor_sizes, seed=st.integers(0, 2**32 - 1))
def test_a_tensor_is_one_segment_in_every_container(sizes: list[int], seed: int) -> None:
    """The same weights as ONNX (embedded and external), safetensors and GGUF cost
    their bytes once: each tensor of 4 KiB or more is a segment named by its own hash."""
    tensors = tensors_of(sizes, seed)
    big = {sha(t.tobytes()) for t in tensors if t.nbytes >= SEGMENT_MIN}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = SegmentStore(folder / "store")
        for layout in ("onnx", "onnx-external", "safetensors", "gguf"):
            sub = folder / layout
            sub.mkdir()
            recipes = ingest_all(store, write_layout(layout, sub, tensors))
            held = {s.digest for r in recipes for s in r.segments}
            assert big <= held, layout
        unique = sum(t.nbytes for t in {sha(t.tobytes()): t for t in tensors}.values())
        big_bytes = sum(os.path.getsize(store.path_of(d)) for d in big)
        assert big_bytes <= unique  # each tensor stored once, whatever held it


def test_a_corrupt_segment_is_found_quarantined_and_healed_by_storing_again(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    shared, own_a, own_b = (rng.random(5000, dtype=np.float32) for _ in range(3))
    write_safetensors(tmp_path / "a.safetensors", [shared, own_a])
    write_safetensors(tmp_path / "b.safetensors", [own_b])
    store = SegmentStore(tmp_path / "store")
    a = store.ingest(tmp_path / "a.safetensors")
    b = store.ingest(tmp_path / "b.safetensors")
    sha_a = sha((tmp_path / "a.safetensors").read_bytes())
    sha_b = sha((tmp_path / "b.safetensors").read_bytes())
    victim = store.path_of(sha(shared.tobytes()))
    os.chmod(victim, 0o600)
    data = bytearray(victim.read_bytes())
    data[1234] ^= 0xFF
    victim.write_bytes(bytes(data))
    report = verify(store, a, sha_a)
    assert not report.ok and not report.whole_ok
    assert report.bad == (sha(shared.tobytes()),)
    assert verify(store, b, sha_b).ok
    quarantined = store.quarantine(sha(shared.tobytes()))
    assert quarantined is not None and quarantined.read_bytes() == bytes(data)
    assert verify(store, a, sha_a).missing == (sha(shared.tobytes()),)
    assert verify(store, b, sha_b).ok  # unrelated files lose nothing
    assert b"".join(reconstruct(store, b)) == (tmp_path / "b.safetensors").read_bytes()
    assert store.ingest(tmp_path / "a.safetensors") == a  # storing it again heals it
    assert verify(store, a, sha_a).ok
    os.chmod(victim, 0o600)
    victim.write_bytes(bytes(data[:100]))  # truncated: missing, never read past
    assert verify(store, a, sha_a).missing == (sha(shared.tobytes()),)
    victim.unlink()
    assert verify(store, a, sha_a).missing == (sha(shared.tobytes()),)
    assert verify(store, b, sha_b).ok
