"""The store operations the harness runs under faults, each with its set-up.

Each operation gets a fresh store holding a bystander model (which must survive every
fault untouched) and what the operation needs; only `run` runs under the injector.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from webmodels.digest import Digest
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.metadata import describe_file
from webmodels.store.store import Store
from webmodels.uploads import Uploads


@dataclass
class Stage:
    """One run's folders, store and the digests set-up made."""

    base: Path
    store: Store
    bystander: Digest
    target: Digest | None = None
    payload: Path | None = None
    known_orphans: set[str] = field(default_factory=set)  # unindexed before the run

    @property
    def root(self) -> Path:
        return self.base / "store"


def onnx_model(path: Path, *, weight_bytes: int, seed: int) -> Path:
    """``y = x + b`` with an unused initializer of `weight_bytes` random bytes."""
    path.write_bytes(_model_bytes(weight_bytes, seed))
    return path


@functools.lru_cache(maxsize=32)
def _model_bytes(weight_bytes: int, seed: int) -> bytes:
    """The model's bytes, built once per (size, seed): the same seed gives the same
    bytes, and every staged store writes four of them (a third of the short run)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    rng = np.random.default_rng(seed)
    pad = rng.integers(0, 255, size=weight_bytes, dtype=np.uint8)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"])],
        "stress",
        [x],
        [y],
        [
            numpy_helper.from_array(np.arange(4, dtype=np.float32), name="b"),
            numpy_helper.from_array(pad, name="padding"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def digest_of(path: Path) -> Digest:
    return Digest(hashlib.sha256(path.read_bytes()).hexdigest())


def stage(base: Path, *, weight_bytes: int, with_store: bool = True) -> Stage:
    models = base / "models"
    models.mkdir(parents=True)
    for seed in range(4):
        onnx_model(models / f"m{seed}.onnx", weight_bytes=weight_bytes, seed=seed)
    store = Store(base / "store")
    bystander = store.import_file(models / "m0.onnx").model.digest
    return Stage(base, store, bystander)


# -- the operations: (prepare, run) --------------------------------------------------


def prepare_import(s: Stage) -> None:
    s.payload = s.base / "models" / "m1.onnx"


def run_import(s: Stage) -> None:
    assert s.payload is not None
    s.store.import_file(s.payload)


def run_cos_write(s: Stage) -> None:
    """What `cos.write.begin`, its chunks and `cos.write.commit` do to the store."""
    path = s.base / "models" / "m1.onnx"
    data = path.read_bytes()
    uploads = Uploads(s.store.files)
    try:
        upload = uploads.begin(digest_of(path), len(data), "https://a.example https://a.example")
        piece = 256 * 1024
        for offset in range(0, len(data), piece):
            uploads.write(upload.id, upload.partition, offset, data[offset : offset + piece])
        pending = uploads.commit(upload.id, upload.partition)
        try:
            metadata = describe_file(pending.temp_path)
            s.store.ingest(
                pending, metadata, origin="downloaded", refs=[("site", str(upload.partition))]
            )
        finally:
            s.store.files.discard(pending)
    finally:
        uploads.close()


def run_download_publish(s: Stage) -> None:
    """What a finished download does: bytes written to a temp file as they arrive,
    fsynced, verified against the job's hash, described and published."""
    path = s.base / "models" / "m2.onnx"
    expected = digest_of(path)
    with path.open("rb") as source:
        pending = s.store.files.write_stream(source, expected_size=path.stat().st_size)
    try:
        metadata = describe_file(pending.temp_path)
        s.store.ingest(
            pending, metadata, origin="downloaded", refs=[("pull", "")], expected=expected
        )
    finally:
        s.store.files.discard(pending)


def prepare_delete(s: Stage) -> None:
    s.target = s.store.import_file(s.base / "models" / "m1.onnx").model.digest


def run_delete(s: Stage) -> None:
    assert s.target is not None
    s.store.delete(s.target)


def prepare_gc(s: Stage) -> None:
    """An unreferenced blob, an orphan file (a publish whose index write was lost) and
    a temp file whose writer is gone."""
    target = s.store.import_file(s.base / "models" / "m1.onnx").model.digest
    with s.store.index.write() as db:
        db.execute("DELETE FROM refs WHERE sha256 = ?", (target.hex,))
    orphan_source = s.base / "models" / "m3.onnx"
    orphan = digest_of(orphan_source)
    final = s.store.files.path_of(orphan)
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(orphan_source.read_bytes())
    final.chmod(0o400)
    stale = s.store.files.tmp_dir / "999999999-dead.partial"
    stale.write_bytes(b"left by a writer that died")
    s.target = target
    s.known_orphans.add(orphan.hex)


def run_gc(s: Stage) -> None:
    execute_gc(s.store, plan_gc(s.store))


def run_index_writes(s: Stage) -> None:
    s.store.pin(s.bystander, True)
    s.store.share(s.bystander, "https://b.example", True)
    s.store.record_use(s.bystander, "https://c.example https://c.example")
    s.store.set_setting("privacy_mode", "strict")
    s.store.pin(s.bystander, False)


def run_open(s: Stage) -> None:
    """A first start: the store's folders and index made, every migration applied."""
    Store(s.base / "fresh").close()


def nothing(s: Stage) -> None:
    del s


@dataclass(frozen=True)
class Operation:
    name: str
    prepare: Callable[[Stage], None]
    run: Callable[[Stage], None]
    reads_source: bool = False  # the source file's reads are fault points too (imports)
    resumable: bool = False  # a download's dl-*.partial is kept for its resume (pulls)


OPERATIONS = (
    Operation("import", prepare_import, run_import, reads_source=True),
    Operation("cos_write", nothing, run_cos_write),
    Operation("download_publish", nothing, run_download_publish),
    Operation("delete", prepare_delete, run_delete),
    Operation("gc", prepare_gc, run_gc),
    Operation("index_writes", nothing, run_index_writes),
    Operation("open_migrate", nothing, run_open),
)
