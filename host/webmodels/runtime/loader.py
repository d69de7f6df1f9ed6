"""Building a session in a runtime worker, through the compile cache.

`Loader.load` asks the worker for a session of a stored model: from the optimized graph
the cache holds for it (a hit), or from the model itself, saving what ONNX Runtime
optimized into a work folder that is then published as derived blobs. The same path
serves pages (`keep=True`) and background compilation (`keep=False`: only the cache).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime import segment_sessions
from webmodels.runtime.client import CallTimeout, Runtime, WorkerLost, WorkerProcess
from webmodels.runtime.compile_cache import CacheKey, CompileCache, read_cpu_fingerprint
from webmodels.runtime.probe import CPU, CUDA, TENSORRT
from webmodels.runtime.settings import SessionSettings
from webmodels.store.store import Store

log = logging.getLogger(__name__)

LEVELS = ("disabled", "basic", "extended", "all")
ALIASES = {"cpu": CPU, "wasm": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
PROVIDER_OPTIONS: Mapping[str, Mapping[str, str]] = {
    CUDA: {"device_id": "0"},
    TENSORRT: {"device_id": "0"},
}


@dataclass(frozen=True, slots=True)
class SessionSpec:
    digest: Digest
    provider: str
    level: str
    # Whose compile cache: "" (shared) for common models, else the partition key, so
    # that a cache hit never tells one site that another used the model (docs/design.md#privacy;
    # `SessionManager.cache_scope`).
    scope: str = ""
    # The external data of a model manifest's graph: (location, file) pairs, matched
    # against the manifest already (manifests/graph.py); part of the compile cache key.
    files: tuple[tuple[str, Digest], ...] = ()
    # "ort": a form the host made in ONNX Runtime's own format (representations/), which
    # the worker loads as that format only, with no compile cache (it is the graph ORT
    # would cache).
    format: str = "onnx"

    @property
    def provider_options(self) -> Mapping[str, str]:
        return PROVIDER_OPTIONS.get(self.provider, {})


def choose_provider(requested: Sequence[str] | None, usable: Sequence[str]) -> str:
    """The first requested provider that really works (ORT names or ORT Web's short
    ones), else — nothing requested — the best usable one; CPU when none fits."""
    if requested:
        for name in requested:
            full = ALIASES.get(name.lower(), name)
            if full in usable:
                return full
        return CPU
    return usable[0] if usable else CPU


class Loader:
    def __init__(self, store: Store, settings: SessionSettings) -> None:
        self.store = store
        self.settings = settings
        self.cache = CompileCache(store)
        self.cpu = read_cpu_fingerprint()
        self.ort_version: str | None = None  # as the last worker reported it
        # Where a session whose compiled graph was not saved while a page waited goes
        # (the background compiler, when enabled); None: nowhere.
        self.deferred: Callable[[SessionSpec], None] | None = None
        # Before a session from segments: wait for its graph's rewrite queued at
        # publish; True when the session must rewrite it itself (segment_publish).
        self.before_link: Callable[[Digest], bool] = lambda digest: False

    def key(self, spec: SessionSpec, ort_version: str) -> CacheKey:
        return CacheKey(
            source=spec.digest,
            ort_version=ort_version,
            provider=spec.provider,
            level=spec.level,
            cpu=self.cpu,
            provider_options=spec.provider_options,
            scope=spec.scope,
            files=tuple((name, digest.hex) for name, digest in spec.files),
        )

    def load(
        self, runtime: Runtime, spec: SessionSpec, session_id: str, *, keep: bool
    ) -> tuple[WorkerProcess, dict[str, Any]]:
        """Build a session of ``spec`` in ``runtime``'s worker through the compile cache
        (``keep=False``: only fill the cache). Returns the worker and its reply."""
        # A model kept as segments loads from them (runtime/segment_sessions.py), not
        # from a reconstructed view; a manifest's model or a form goes the usual way.
        simple = not spec.files and spec.format == "onnx"
        recipe = segment_sessions.session_recipe(self.store, spec.digest) if simple else None
        location = None if recipe is not None else self.store.locate(spec.digest)
        files = {name: self.store.locate(digest) for name, digest in spec.files}
        size = recipe.size if recipe is not None else location.size if location else 0
        total = size + sum(f.size for f in files.values())
        if total > self.settings.max_model_bytes:
            raise HostError(
                "too_large",
                f"the model has {total} bytes; sessions are limited to "
                f"{self.settings.max_model_bytes} (sessions.max_model_bytes)",
            )
        worker = runtime.worker()
        assert worker.info is not None
        self.ort_version = worker.info.ort_version
        cacheable = spec.level != "disabled" and spec.format == "onnx"
        key = self.key(spec, worker.info.ort_version) if cacheable else None
        cached = self.cache.lookup(key) if key is not None else None
        # A page's first session of a large model is built straight from the model, as
        # in-process ONNX Runtime would: writing ORT's optimized copy and hashing it into
        # the store would make it wait several times as long. The compile cache gets it
        # afterwards, at idle priority (`deferred`: the background compiler).
        defer = keep and total > self.settings.compile_later_bytes
        compile_now = key is not None and cached is None and not defer
        work_dir = self.cache.new_work_dir() if compile_now else None
        limits = {
            "max_nodes": self.settings.max_nodes,
            "max_tensor_bytes": self.settings.max_tensor_bytes,
        }
        linked = None
        if recipe is not None:
            linked = segment_sessions.linked_model(
                self.store,
                spec.digest,
                recipe,
                lambda op, body: _call(worker, op, body, self.settings.create_timeout_s),
                limits,
                force=self.before_link(spec.digest),
            )
            if linked is None:  # no hard links here: the reconstructed view
                location = self.store.locate(spec.digest)
        file_refs = {
            name: {"path": str(f.path), "sha256": f.digest.hex, "size": f.size}
            for name, f in files.items()
        }
        if linked is not None:
            model_ref, model_dir = linked.model_ref(), None
            file_refs = linked.file_refs(self.store)
        else:
            assert location is not None
            model_ref = {"path": str(location.path), "sha256": spec.digest.hex, "size": size}
            model_dir = str(location.path.parent) if location.preinstalled else None
        body = {
            "session_id": session_id,
            "keep": keep,
            "model": model_ref,
            "model_dir": model_dir,
            "files": file_refs,
            "format": spec.format,
            "provider": spec.provider,
            "provider_options": dict(spec.provider_options),
            "level": spec.level,
            "limits": limits,
            "cached": cached.to_frame() if cached is not None else None,
            "save_to": str(work_dir) if work_dir is not None else None,
            "work_dir": str(self.store.files.tmp_dir),
        }
        try:
            reply = worker.call("create", body, timeout_s=self.settings.create_timeout_s)
            self._keep_compiled(key, work_dir, reply)
            later = key is not None and defer and not reply.get("compiled_cache_hit")
            if later and self.deferred is not None:
                self.deferred(spec)
        except (WorkerLost, CallTimeout) as exc:
            raise _call_error(exc) from exc
        finally:
            if work_dir is not None:
                shutil.rmtree(work_dir, ignore_errors=True)
        return worker, reply

    def _keep_compiled(
        self, key: CacheKey | None, work_dir: Path | None, reply: Mapping[str, Any]
    ) -> None:
        if key is None:
            return
        if reply.get("cache_rejected"):
            log.warning("cached graph %s refused: %s", key.id[:12], reply["cache_rejected"])
            self.cache.forget(key)
        saved = reply.get("saved")
        if work_dir is None or not isinstance(saved, Mapping):
            return
        try:
            self.cache.save(key, work_dir, str(saved["graph"]), saved.get("weights"))
        except (HostError, OSError) as exc:  # a full disk: the session still works
            log.warning("could not keep the compiled graph of %s: %s", key.source.short, exc)


def _call(worker: WorkerProcess, op: str, body: Mapping[str, Any], timeout_s: float) -> Any:
    try:
        return worker.call(op, body, timeout_s=timeout_s)
    except (WorkerLost, CallTimeout) as exc:
        raise _call_error(exc) from exc


def _call_error(exc: WorkerLost | CallTimeout) -> HostError:
    if isinstance(exc, WorkerLost):
        return HostError(
            "session_crashed",
            f"the runtime worker {exc.reason} while loading this model; "
            "the next request gets a fresh worker",
        )
    return HostError(
        "busy",
        f"loading the model took longer than {exc.limit_s:g} s and was stopped "
        "(sessions.create_timeout_s)",
    )
