"""I/O faults injected into imports of models made of several files (`scripts/stress
--only manifests`): `import DIR` of a model folder (a graph, its external data, a
tokenizer and a config) and `pull` of the same files from several URLs of a loopback
HTTP server, each I/O call failed in turn with EIO and with ENOSPC, as for the single
file operations (stress_lib/injection.py, the same seam: stress_lib/faults.py).

After each injected fault, besides the store's full check (a clear error, integrity,
every indexed blob re-hashes, nothing unindexed or left in tmp/ after the next start):
no half manifest is visible — every manifest in the index has all its entries, each
one an indexed blob of its size — and an operation that completed left its manifest.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx

from stress_lib import crash_points
from stress_lib.checks import Verdict
from stress_lib.injection import KINDS, Row, inject_one
from stress_lib.operations import Operation, Stage, _model_bytes, digest_of
from webmodels.fetch.jobs import JobManager
from webmodels.manifests.importing import import_model_files
from webmodels.manifests.pulling import FileSource, pull_files, save_pulled

SET_FILES = ("model.onnx", "model.onnx_data", "tokenizer.json", "config.json")


def model_set(folder: Path, weight_bytes: int) -> Path:
    """A model folder: a graph whose weights are external data, a tokenizer, a config."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load_from_string(_model_bytes(weight_bytes, 5))
    onnx.save_model(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx_data",
        size_threshold=0,
    )
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0}}}))
    (folder / "config.json").write_text(json.dumps({"model_type": "stress"}))
    return folder


def prepare_set(s: Stage) -> None:
    s.payload = model_set(s.base / "models" / "set", _WEIGHT[0])


_WEIGHT = [64 * 1024]  # the set's weights, set by run_manifest_injection


def run_import_dir(s: Stage) -> None:
    assert s.payload is not None
    import_model_files(s.store, s.payload)


_SERVER: list[crash_points.ModelServer] = []  # the loopback server of the pull runs


def run_pull_set(s: Stage) -> None:
    assert s.payload is not None and _SERVER
    server = _SERVER[0]
    sources = []
    for name in SET_FILES:
        data = (s.payload / name).read_bytes()
        server.add(f"{s.base.name}/{name}", data)
        digest = digest_of(s.payload / name)
        sources.append(FileSource(name, digest, (f"{server.base}/{s.base.name}/{name}",)))
    manager = JobManager(s.store)
    try:
        stored = pull_files(s.store, sources, waiter="stress", manager=manager, quota=None)
    finally:
        manager.close()
    save_pulled(s.store, sources, stored, name=None, version=None)


MANIFEST_OPERATIONS = (
    Operation("import_dir", prepare_set, run_import_dir, reads_source=True),
    Operation("pull_set", prepare_set, run_pull_set, resumable=True),
)


def check_manifests(root: Path, completed: bool, verdict: Verdict) -> None:
    """No half manifest: each one's entries all there, each an indexed blob of its
    size; with `completed`, the set's manifest is there."""
    db = sqlite3.connect(f"file:{root / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        manifests = db.execute("SELECT sha256, document FROM manifests").fetchall()
        for digest, document in manifests:
            listed = {(e["path"], e["sha256"]) for e in json.loads(document)["files"]}
            rows = db.execute(
                "SELECT m.path, m.sha256, m.size, o.size, b.state FROM manifest_entries m "
                "LEFT JOIN blobs b USING (sha256) LEFT JOIN objects o USING (sha256) "
                "WHERE m.manifest = ?",
                (digest,),
            ).fetchall()
            if {(r[0], r[1]) for r in rows} != listed:
                verdict.corrupted.append(f"manifest {digest[:12]} lacks entries")
            for path, _sha, size, stored_size, state in rows:
                if state != "ok" or stored_size != size:
                    verdict.lost.append(f"manifest {digest[:12]}: {path} not stored whole")
        if completed and not manifests:
            verdict.lost.append("the import completed without its manifest")
    finally:
        db.close()


@contextmanager
def loopback_server() -> Iterator[crash_points.ModelServer]:
    """The HTTP server of the pulls, unpaced, in a thread of this process."""
    paced, crash_points.TRANSFER_S = crash_points.TRANSFER_S, 0.0
    server = crash_points.ModelServer({})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SERVER[:] = [server]
    try:
        yield server
    finally:
        _SERVER.clear()
        server.shutdown()
        server.server_close()
        crash_points.TRANSFER_S = paced


def run_manifest_injection(*, weight_bytes: int, stride: int = 1, max_n: int = 800) -> list[Row]:
    """Fail call N for N = 1, 1 + `stride`, … until the operation completes without
    reaching N (the CI run samples every 4th call; the long run tries each)."""
    _WEIGHT[0] = weight_bytes
    rows = []
    logging.disable(logging.CRITICAL)  # the store logs each failure; the table says it
    with loopback_server():
        for op in MANIFEST_OPERATIONS:
            for kind in KINDS:
                row = Row(op.name, kind)
                for n in range(1, max_n + 1, stride):
                    fired, verdict, where = inject_one(
                        op, kind, n, weight_bytes=weight_bytes, extra=check_manifests
                    )
                    if not fired:
                        break
                    row.count(n, verdict, where)
                rows.append(row)
    logging.disable(logging.NOTSET)
    return rows
