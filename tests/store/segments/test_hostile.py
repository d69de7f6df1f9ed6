"""Bytes a page chose never break a split: a mutated or truncated container is still
stored and rebuilt byte for byte (its parse fails over to chunking), and a stored file
streams into a pipe as into a file."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.containers import write_gguf, write_onnx, write_safetensors
from webmodels.store.segments import SegmentStore, copy_to, reconstruct

WRITERS = {"onnx": write_onnx, "safetensors": write_safetensors, "gguf": write_gguf}


def _container(kind: str, folder: Path) -> bytes:
    rng = np.random.default_rng(5)
    tensors = [rng.random(n, dtype=np.float32) for n in (100, 1500, 3000)]
    path = folder / f"base.{kind}"
    WRITERS[kind](path, tensors)
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(WRITERS)),
    flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 1 << 16)),
)
def test_a_mutated_container_still_round_trips(
    kind: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = bytearray(_container(kind, folder))
        for where, mask in flips:
            data[where % len(data)] ^= mask  # headers and lengths included
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        path = folder / f"mutated.{kind}"
        path.write_bytes(bytes(data))
        store = SegmentStore(folder / "store")
        recipe = store.ingest(path)
        assert b"".join(reconstruct(store, recipe)) == bytes(data)


def test_a_file_streams_into_a_pipe(tmp_path: Path) -> None:
    """The way to a socket or pipe (sendfile, else read and write) gives the same bytes
    as the way to a file."""
    (tmp_path / "m.safetensors").write_bytes(_container("safetensors", tmp_path))
    original = (tmp_path / "m.safetensors").read_bytes()
    store = SegmentStore(tmp_path / "store")
    recipe = store.ingest(tmp_path / "m.safetensors")

    read_fd, write_fd = os.pipe()
    received: list[bytes] = []

    def drain() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(write_fd, "wb", buffering=0) as pipe:
        assert copy_to(store, recipe, pipe.fileno()) == len(original)
    reader.join(timeout=30)
    assert received == [original]
