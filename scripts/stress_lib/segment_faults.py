"""I/O faults injected into the segment store (`scripts/stress --only segments`): the
store's operations with ``WEBMODELS_STORE_SEGMENTS=1`` — imports of an ONNX model, of
a variant sharing its weights with the bystander, of a safetensors file holding the
same tensor, of a file of no known format (cut by content-defined chunking), delete
and gc of files whose segments others share, ``store convert`` of a whole file, and
``verify`` — each I/O call failed in turn with EIO and with ENOSPC (the seam of
stress_lib/faults.py, reaching the segment store's descriptor calls through
stress_lib/segment_seam.py), each followed by stress_lib/segment_checks.py.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from stress_lib.checks import Verdict, check_error
from stress_lib.faults import Injector, installed, wrap_index
from stress_lib.injection import Row, scratch_dir
from stress_lib.operations import _model_bytes
from stress_lib.segment_checks import check_segmented, unreferenced_segments
from stress_lib.segment_seam import segment_faults
from webmodels.config import ENV_STORE_SEGMENTS
from webmodels.digest import Digest
from webmodels.store.convert import run_conversion
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.store import Store
from webmodels.store.verify import verify_store

KINDS = {"EIO": (errno.EIO, False), "ENOSPC": (errno.ENOSPC, True)}


@dataclass
class SegStage:
    base: Path
    store: Store
    bystander: Digest
    weight_bytes: int
    target: Digest | None = None
    targets: list[Digest] = field(default_factory=list)

    def model(self, name: str) -> Path:
        return self.base / "models" / name


def _padding(weight_bytes: int, seed: int) -> bytes:
    """The bytes of the unused initializer of `_model_bytes(weight_bytes, seed)`."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=weight_bytes, dtype=np.uint8).tobytes()


def seg_stage(base: Path, weight_bytes: int) -> SegStage:
    """A store keeping files as segments, holding the bystander (m0.onnx), and the
    source files: m1.onnx (its own weights), variant.onnx (m0's weights in another
    graph: they share a segment), shared.safetensors (m0's weights as a tensor), and
    other.bin (no known format)."""
    models = base / "models"
    models.mkdir(parents=True)
    (models / "m0.onnx").write_bytes(_model_bytes(weight_bytes, 0))
    (models / "m1.onnx").write_bytes(_model_bytes(weight_bytes, 1))
    variant = onnx.load_from_string(_model_bytes(weight_bytes, 0))
    variant.graph.name = "variant"
    variant.doc_string = "the bystander's weights in another graph"
    (models / "variant.onnx").write_bytes(variant.SerializeToString())
    pad = _padding(weight_bytes, 0)
    header = json.dumps(
        {"padding": {"dtype": "U8", "shape": [len(pad)], "data_offsets": [0, len(pad)]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    (models / "shared.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + pad)
    (models / "other.bin").write_bytes(_padding(weight_bytes, 7))
    store = Store(base / "store", segments=True)
    bystander = store.import_file(models / "m0.onnx").model.digest
    return SegStage(base, store, bystander, weight_bytes)


def _import(name: str, *, raw: bool = False) -> Callable[[SegStage], None]:
    def run(s: SegStage) -> None:
        s.store.import_file(s.model(name), raw=raw)

    return run


def prepare_shared(s: SegStage) -> None:
    s.target = s.store.import_file(s.model("variant.onnx")).model.digest


def prepare_delete(s: SegStage) -> None:
    """m1.onnx (segments of its own) and variant.onnx (sharing the bystander's)."""
    s.targets = [s.store.import_file(s.model("m1.onnx")).model.digest]
    prepare_shared(s)
    assert s.target is not None
    s.targets.append(s.target)


def run_delete(s: SegStage) -> None:
    for digest in s.targets:
        s.store.delete(digest)


def prepare_gc(s: SegStage) -> None:
    """Unreferenced files (one sharing a segment with the bystander), an orphan segment
    (a publish killed before its commit) and a dead writer's segment temp file."""
    for name in ("shared.safetensors", "m1.onnx"):
        digest = s.store.import_file(s.model(name), raw=True).model.digest
        with s.store.index.write() as db:
            db.execute("DELETE FROM refs WHERE sha256 = ?", (digest.hex,))
    s.store.segmented.store.ingest(s.model("other.bin"))
    stale = s.store.segmented.store.tmp_dir / "999999999-dead.seg"
    stale.write_bytes(b"left by a writer that died")


def run_gc(s: SegStage) -> None:
    execute_gc(s.store, plan_gc(s.store))


def prepare_convert(s: SegStage) -> None:
    """m1.onnx and variant.onnx stored whole (before the switch), to be converted."""
    s.store.segmented.enabled = False
    for name in ("m1.onnx", "variant.onnx"):
        s.store.import_file(s.model(name))
    s.store.segmented.enabled = True


def run_convert(s: SegStage) -> None:
    run_conversion(s.store)


def prepare_verify(s: SegStage) -> None:
    prepare_shared(s)


def run_verify(s: SegStage) -> None:
    report = verify_store(s.store)
    if report.problems:  # nothing was wrong before: a fault must not be taken for rot
        raise AssertionError(f"verify found problems in a sound store: {report.problems}")


def nothing(s: SegStage) -> None:
    del s


@dataclass(frozen=True)
class SegOperation:
    name: str
    prepare: Callable[[SegStage], None]
    run: Callable[[SegStage], None]


SEGMENT_OPERATIONS = (
    SegOperation("seg_import_onnx", nothing, _import("m1.onnx")),
    SegOperation("seg_import_shared", nothing, _import("variant.onnx")),
    SegOperation("seg_import_st", nothing, _import("shared.safetensors", raw=True)),
    SegOperation("seg_import_other", nothing, _import("other.bin", raw=True)),
    SegOperation("seg_delete", prepare_delete, run_delete),
    SegOperation("seg_gc", prepare_gc, run_gc),
    SegOperation("seg_convert", prepare_convert, run_convert),
    SegOperation("seg_verify", prepare_verify, run_verify),
)


@dataclass(frozen=True)
class Template:
    """An operation's prepared stage, made once and copied for each injection (a
    store with its 256 segment shards costs more to make than to copy)."""

    stage: SegStage
    before: frozenset[str]  # unreferenced segments and blob files before the run


def make_template(op: SegOperation, base: Path, weight_bytes: int) -> Template:
    s = seg_stage(base, weight_bytes)
    op.prepare(s)
    before = frozenset(
        unreferenced_segments(s.store) | {d.hex for d, _ in s.store.files.iter_blobs()}
    )
    s.store.close()
    return Template(s, before)


def inject_segment(
    op: SegOperation, template: Template, kind: str, n: int
) -> tuple[bool, Verdict, str]:
    """One run of `op` on a copy of its template with call `n` failing; (fired,
    verdict, where it failed)."""
    err, persistent = KINDS[kind]
    with tempfile.TemporaryDirectory(prefix="wm-stress-seg-", dir=scratch_dir()) as tmp:
        base = Path(tmp) / "stage"
        shutil.copytree(template.stage.base, base, symlinks=True)
        s = replace(template.stage, base=base, store=Store(base / "store", segments=True))
        injector = Injector(fail_at=n, err=err, persistent=persistent)
        undo = wrap_index(s.store.index, injector)
        exc: BaseException | None = None
        roots = [base / "store", base / "models"]
        with installed(injector, roots), segment_faults(injector, roots):
            try:
                op.run(s)
            except Exception as caught:  # judged by check_error
                exc = caught
        undo()
        s.store.close()
        verdict = Verdict()
        check_error(exc, verdict)
        check_segmented(base / "store", verdict, before=template.before)
        if not injector.fired and exc is not None:
            verdict.corrupted.append(f"failed with no fault injected: {exc!r}")
        where = injector.fired[0] if injector.fired else ""
        if exc is not None and not verdict.clear_error:
            where += f" -> {type(exc).__name__}: {exc}"
        return bool(injector.fired), verdict, where


def run_segment_injection(*, weight_bytes: int, stride: int = 1, max_n: int = 800) -> list[Row]:
    """Fail call N for N = 1, 1 + `stride`, … until the operation completes without
    reaching N (the CI run samples every `stride`th call; the long run tries each)."""
    saved = os.environ.get(ENV_STORE_SEGMENTS)
    os.environ[ENV_STORE_SEGMENTS] = "1"
    logging.disable(logging.CRITICAL)  # the store logs each failure; the table says it
    rows = []
    try:
        for op in SEGMENT_OPERATIONS:
            with tempfile.TemporaryDirectory(prefix="wm-stress-tpl-", dir=scratch_dir()) as tmp:
                template = make_template(op, Path(tmp), weight_bytes)
                for kind in KINDS:
                    row = Row(op.name, kind)
                    for n in range(1, max_n + 1, stride):
                        fired, verdict, where = inject_segment(op, template, kind, n)
                        if not fired:
                            break
                        row.count(n, verdict, where)
                    rows.append(row)
    finally:
        logging.disable(logging.NOTSET)
        if saved is None:
            os.environ.pop(ENV_STORE_SEGMENTS, None)
        else:
            os.environ[ENV_STORE_SEGMENTS] = saved
    return rows
