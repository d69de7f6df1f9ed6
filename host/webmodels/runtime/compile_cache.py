"""The compile cache: ONNX Runtime's optimized graph of a model, kept as derived blobs.

A session built from a model lets ORT optimize the graph (constant folding, fusions,
layout changes for the CPU's instruction set) and saves the result with its weights as
external data; the next session loads that graph with optimizations off, which is
1.6-3.5x faster to create (docs/models.md). What ORT produced depends on more than
the model, so the key holds all of it (source, transform, runtime, device):

* the model's SHA-256, and the form (``ort-optimized``; ``ort-ep-context`` for
  TensorRT, whose engine is embedded in an EPContext node);
* the ONNX Runtime version, the execution provider and its options;
* the optimization level;
* the CPU's instruction-set flags (the NCHWc and MLAS choices differ between CPUs;
  ORT itself warns that such graphs belong to the machine that made them);
* a ``scope``: "" (shared) today. Per-partition caches for models that are not common
  (docs/design.md#privacy) plug in here: the scope becomes the partition key.

Graph and weights are ordinary blobs, indexed with a ``derived`` reference to their
source (store.ingest_derived) so gc keeps them while the source exists and removes
them with it; the ``derived`` table maps a key to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime import compile_segments
from webmodels.store.blobs import PendingBlob, hash_file, process_alive
from webmodels.store.store import Store

log = logging.getLogger(__name__)
CACHE_FORMAT = 1  # bump when what the worker saves changes meaning
WORK_SUFFIX = ".compile"  # the host's folders for a graph being saved
LOAD_SUFFIX = ".load"  # the worker's private folders for a graph being loaded


@dataclass(frozen=True, slots=True)
class CacheKey:
    source: Digest
    ort_version: str
    provider: str
    level: str
    cpu: str
    provider_options: Mapping[str, str] = field(default_factory=dict)
    scope: str = ""
    # A model manifest's external data, (location, SHA-256): the graph alone does not
    # say which weights it was optimized with. Empty (and not in `parts`) otherwise.
    files: tuple[tuple[str, str], ...] = ()

    @property
    def transform(self) -> str:
        return "ort-ep-context" if self.provider == "TensorrtExecutionProvider" else "ort-optimized"

    def parts(self) -> dict[str, Any]:
        files = {"files": [list(f) for f in self.files]} if self.files else {}
        return files | {
            "format": CACHE_FORMAT,
            "source": self.source.hex,
            "transform": self.transform,
            "ort_version": self.ort_version,
            "provider": self.provider,
            "provider_options": dict(sorted(self.provider_options.items())),
            "level": self.level,
            "cpu": self.cpu,
            "scope": self.scope,
        }

    @property
    def id(self) -> str:
        text = json.dumps(self.parts(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FileSet:
    """A graph, the external-data files a session of it used, and the cache scope."""

    graph: Digest
    files: tuple[tuple[str, Digest], ...]
    scope: str


@dataclass(frozen=True, slots=True)
class BlobRef:
    path: Path
    digest: Digest
    size: int

    def to_frame(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.digest.hex, "size": self.size}


@dataclass(frozen=True, slots=True)
class CachedGraph:
    graph: BlobRef | None
    weights: BlobRef | None
    # An entry kept as segments: what the worker gets instead (compile_segments.hit_frame).
    parts: Mapping[str, Any] | None = None

    def to_frame(self) -> dict[str, Any]:
        if self.parts is not None:
            return dict(self.parts)
        assert self.graph is not None
        weights = self.weights.to_frame() if self.weights is not None else None
        return {"graph": self.graph.to_frame(), "weights": weights}


def cpu_fingerprint(cpuinfo: str | None, machine: str) -> str:
    """A short hash of the CPU's instruction-set flags (x86 ``flags``, Arm
    ``Features`` in /proc/cpuinfo); the machine name where there are none."""
    flags: set[str] = set()
    for line in (cpuinfo or "").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            break
    text = machine.lower() + ":" + " ".join(sorted(flags))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_cpu_fingerprint() -> str:
    try:
        cpuinfo: str | None = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = None
    return cpu_fingerprint(cpuinfo, f"{platform.machine()} {platform.processor()}")


class CompileCache:
    def __init__(self, store: Store) -> None:
        self.store = store

    def lookup(self, key: CacheKey) -> CachedGraph | None:
        """The cached graph for ``key`` when both blobs are there with their sizes."""
        rows = self.store.index.query(
            "SELECT d.graph, d.weights, g.size AS graph_size, w.size AS weights_size "
            "FROM derived d JOIN objects g ON g.sha256 = d.graph "
            "JOIN blobs gb ON gb.sha256 = d.graph AND gb.state = 'ok' "
            "LEFT JOIN objects w ON w.sha256 = d.weights "
            "WHERE d.key = ? AND d.graph IS NOT NULL",
            (key.id,),
        )
        if not rows:
            return None
        row = rows[0]
        kept = self._kept_as_segments(row["graph"], row["weights"])
        if kept is not None:
            self._touch(key)
            return kept
        graph = self._blob(Digest(row["graph"]), row["graph_size"])
        weights = (
            self._blob(Digest(row["weights"]), row["weights_size"]) if row["weights"] else None
        )
        if graph is None or (row["weights"] and weights is None):
            self.forget(key)  # a blob went missing: compile again
            return None
        self._touch(key)
        return CachedGraph(graph, weights)

    def _touch(self, key: CacheKey) -> None:
        with contextlib.suppress(HostError), self.store.index.write() as db:
            db.execute("UPDATE derived SET used_at = ? WHERE key = ?", (time.time(), key.id))

    def _kept_as_segments(self, graph: str, weights: str | None) -> CachedGraph | None:
        digests = [Digest(graph), *([Digest(weights)] if weights else [])]
        recipes = compile_segments.recipes_of(self.store, digests)
        if recipes is None:
            return None
        weights_digest = Digest(weights) if weights else None
        frame = compile_segments.hit_frame(self.store, Digest(graph), weights_digest, recipes)
        return CachedGraph(None, None, frame)

    def _blob(self, digest: Digest, size: int | None) -> BlobRef | None:
        path = self.store.files.path_of(digest)
        try:
            ok = size is not None and path.stat().st_size == size
        except OSError:
            ok = False
        return BlobRef(path, digest, int(size)) if ok and size is not None else None

    def compiled(self, key: CacheKey) -> bool:
        rows = self.store.index.query(
            "SELECT 1 FROM derived WHERE key = ? AND graph IS NOT NULL", (key.id,)
        )
        return bool(rows)

    def failed(self, key: CacheKey) -> bool:
        """Whether compiling under ``key`` failed before (background compiles skip it)."""
        rows = self.store.index.query(
            "SELECT 1 FROM derived WHERE key = ? AND graph IS NULL", (key.id,)
        )
        return bool(rows)

    def scopes_of(self, source: Digest) -> set[str]:
        """The scopes in which a session of ``source`` alone (no external-data files)
        was built before (under any runtime or provider): where a background compile
        is likely to be used."""
        rows = self.store.index.query(
            "SELECT DISTINCT scope, details FROM derived WHERE source = ?", (source.hex,)
        )
        return {str(row["scope"]) for row in rows if not _files_of(row["details"])}

    def file_sets(self) -> set[FileSet]:
        """Every graph with external-data files (a model manifest's, or files a page
        named) that a session was built from before, with its files and scope: the
        multi-file models a background compile is likely to be used for."""
        rows = self.store.index.query(
            "SELECT DISTINCT source, scope, details FROM derived WHERE details LIKE '%\"files\"%'"
        )
        found: set[FileSet] = set()
        for row in rows:
            files = _files_of(row["details"])
            if files:
                found.add(FileSet(Digest(str(row["source"])), files, str(row["scope"])))
        return found

    def save(self, key: CacheKey, folder: Path, graph: str, weights: str | None) -> bool:
        """Publish what the worker wrote into ``folder`` as derived blobs of the source."""
        pending = [_pending(folder / graph)]
        if weights:
            pending.append(_pending(folder / weights))
        # With segments on: kept as segments, each tensor the source holds shared with it.
        recipes = compile_segments.ingest_outputs(
            self.store, pending[0], pending[1] if weights else None
        )
        now = time.time()

        def record(db: Any) -> None:
            db.execute(
                "INSERT OR REPLACE INTO derived (key, source, transform, scope, graph, weights, "
                "details, error, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    key.id,
                    key.source.hex,
                    key.transform,
                    key.scope,
                    pending[0].digest.hex,
                    pending[1].digest.hex if weights else None,
                    json.dumps(key.parts(), sort_keys=True),
                    now,
                    now,
                ),
            )

        saved = self.store.ingest_derived(key.source, pending, record=record, recipes=recipes)
        what = "saved" if saved else "dropped (the model is gone)"
        log.info("compile cache: %s %s for %s", what, key.id[:12], key.source.short)
        return saved

    def record_failure(self, key: CacheKey, error: str) -> None:
        with self.store.index.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO derived (key, source, transform, scope, graph, weights, "
                "details, error, created_at) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?)",
                (
                    key.id,
                    key.source.hex,
                    key.transform,
                    key.scope,
                    json.dumps(key.parts(), sort_keys=True),
                    error[:1000],
                    time.time(),
                ),
            )

    def forget(self, key: CacheKey) -> None:
        with self.store.index.write() as db:
            db.execute("DELETE FROM derived WHERE key = ?", (key.id,))

    def prune(self) -> int:
        """Drop entries and references whose source is gone by a path the triggers do
        not see (a pre-installed file replaced in place); gc then removes the blobs."""
        present = (
            "(SELECT sha256 FROM blobs WHERE state = 'ok' "
            "UNION SELECT sha256 FROM preinstalled WHERE state = 'ok')"
        )
        with self.store.index.write() as db:
            dropped = db.execute(f"DELETE FROM derived WHERE source NOT IN {present}").rowcount
            db.execute(f"DELETE FROM refs WHERE kind = 'derived' AND key NOT IN {present}")
        return int(dropped)

    # -- work folders: where the worker writes a graph before it is published ----------------

    def new_work_dir(self) -> Path:
        """A private folder in the store's tmp/ (same file system as blobs/, so the
        results are renamed into place, not copied)."""
        folder = self.store.files.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}{WORK_SUFFIX}"
        folder.mkdir(mode=0o700)
        return folder

    def remove_stale_work_dirs(self) -> int:
        """Folders of a host or worker that is gone (a crash or a kill leaves them)."""
        removed = 0
        tmp = self.store.files.tmp_dir
        for folder in [*tmp.glob(f"*{WORK_SUFFIX}"), *tmp.glob(f"*{LOAD_SUFFIX}")]:
            pid = folder.name.split("-", 1)[0]
            if folder.is_dir() and pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


def _files_of(details: object) -> tuple[tuple[str, Digest], ...]:
    """The (location, file) pairs a cache entry's key parts name; () for none."""
    try:
        files = json.loads(str(details)).get("files") or []
        return tuple((str(location), Digest(str(sha))) for location, sha in files)
    except (ValueError, TypeError, AttributeError):
        return ()


def _pending(path: Path) -> PendingBlob:
    digest, size = hash_file(path)
    return PendingBlob(path, digest, size)
