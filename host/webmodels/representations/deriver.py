"""Where a form of a model comes from, and making it when none is there (`Deriver`).

In order: the source itself when the recipe asks for it as it is; a form already
derived in the caller's scope; else derived now from the source, in a runtime worker
of its own at the lowest CPU and I/O priority (runtime/priority.py; the same memory
limit and call timeout as page sessions), checked against the source on sample
inputs and refused past the recipe's tolerance, then published with its provenance
(store/representations.py).

The scope follows the compile cache (runtime/sessions.py, ``cache_scope``): a form of
a model that is not common is derived and kept per partition, so whether it exists,
or how long asking for it takes, never depends on what another site did. A common or
pre-installed model's forms, and the CLI's, are shared ('').
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.representations.convert import NOT_DETERMINISTIC
from webmodels.representations.form_segments import ingest_form, source_ref
from webmodels.representations.recipes import DATA_FILE, DATA_GRAPH, Recipe
from webmodels.representations.split import publish_split
from webmodels.runtime.client import CallTimeout, Runtime, WorkerLost, WorkerOptions
from webmodels.runtime.compile_cache import CompileCache
from webmodels.runtime.settings import SessionSettings
from webmodels.store.blobs import PendingBlob, hash_file
from webmodels.store.metadata import ModelMetadata, read_onnx_metadata
from webmodels.store.records import ModelRecord
from webmodels.store.representations import Provenance, find, publish_form
from webmodels.store.store import Store

log = logging.getLogger(__name__)
OUT_NAME = "form.onnx"
IDLE_S = 30.0  # the derivation worker ends after this long without a call
# Derivations asked ahead (``derive``) queued at a time per scope: per partition, so
# that whether one is queued never depends on what another site asked.
MAX_AHEAD = 16
Stage = Callable[[str], None]  # progress: "deriving", "checking", "storing"


@dataclass(frozen=True, slots=True)
class Form:
    """A model in the asked form; ``provenance`` None when it is the source itself."""

    record: ModelRecord
    recipe: Recipe
    provenance: Provenance | None
    # An external-data split: its files (the graph, `record`, and its tensors)
    files: tuple[Part, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """``info.representation`` and ``info.derived_from`` of a load's answer; for a
        form of several files also ``files`` (``{path: {sha256, size, role}}``) and
        ``graph``, as for a model of several files (docs/manifests.md)."""
        derived = self.provenance
        wire: dict[str, Any] = {
            "representation": self.recipe.to_json(),
            "derived_from": derived.source.hex if derived is not None else None,
        }
        if self.files:
            wire["files"] = {part.path: part.to_wire() for part in self.files}
            wire["graph"] = DATA_GRAPH
        return wire


@dataclass(frozen=True, slots=True)
class Part:
    """One file of a form of several files."""

    path: str
    digest: Digest
    size: int
    role: str

    def to_wire(self) -> dict[str, Any]:
        return {"sha256": self.digest.hex, "size": self.size, "role": self.role}


class Deriver:
    def __init__(
        self,
        store: Store,
        settings: SessionSettings,
        *,
        is_common: Callable[[ModelRecord], bool],
        options: WorkerOptions | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        """``runtime``: a background-priority worker to use instead of one of its own."""
        self.store = store
        self.settings = settings
        self.is_common = is_common
        base = options or WorkerOptions(memory_limit=settings.memory_limit)
        self.runtime = runtime or Runtime(replace(base, background=True))
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.derived = 0  # derivations done by this host (logs, tests)
        self._ahead: set[tuple[str, str, str]] = set()  # queued by `ahead`, not yet done
        # Requests wait on a Future, never a dispatcher thread; two at a time at most.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="derive")

    def scope(self, record: ModelRecord, partition: str | None) -> str:
        return "" if partition is None or self.is_common(record) else partition

    def form(
        self,
        record: ModelRecord,
        recipe: Recipe,
        *,
        partition: str | None,
        visible: Callable[[Digest], bool] = lambda digest: False,
        stage: Stage | None = None,
    ) -> Form:
        """``record`` in the form ``recipe`` asks, for a caller in ``partition``
        (None: a trusted caller) that may see ``record``; ``visible``: whether the
        caller may see a stored file (then a form the user derived, which the caller
        holds itself, is as good as its own). An opset range becomes one opset here
        (`Recipe.for_source`)."""
        recipe = recipe.for_source(record.metadata.opsets)
        if recipe.identity:
            return Form(record, recipe, None)
        if record.format != "onnx":
            raise HostError("model_invalid", "only ONNX models have other representations")
        scope = self.scope(record, partition)
        key = (record.digest.hex, recipe.key(), scope)
        with self._lock(key):  # one derivation of a form per scope at a time
            found = find(self.store.index, record.digest, recipe.key(), scope)
            if found is None and scope:
                # One the user made (the CLI) of bytes this caller holds itself; never
                # another partition's row, whose presence would tell of that site.
                shared = find(self.store.index, record.digest, recipe.key(), "")
                found = shared if shared is not None and visible(shared.form) else None
                if found is not None and recipe.external_data:  # both files or none
                    data = self._data_of(record, recipe, "")
                    found = found if data is not None and visible(data.digest) else None
            if found is not None and recipe.external_data:
                found = found if self._data_of(record, recipe, found.scope) else None
            if found is None:
                found = self._derive(record, recipe, scope, stage or _quiet)
        form = self.store.get(found.form)
        if form is None:
            raise HostError("not_found", "the derived form was removed meanwhile; ask again")
        if not recipe.external_data:
            return Form(form, recipe, found)
        data = self._data_of(record, recipe, found.scope)
        if data is None:
            raise HostError("not_found", "the derived form was removed meanwhile; ask again")
        parts = (
            Part(DATA_GRAPH, form.digest, form.size, "graph"),
            Part(DATA_FILE, data.digest, data.size, "external_data"),
        )
        return Form(form, recipe, found, parts)

    def _data_of(self, record: ModelRecord, recipe: Recipe, scope: str) -> ModelRecord | None:
        """The external-data file of ``record``'s split form in ``scope``, while stored."""
        row = find(self.store.index, record.digest, recipe.file_key(DATA_FILE), scope)
        return None if row is None else self.store.get(row.form)

    def submit(
        self,
        record: ModelRecord,
        recipe: Recipe,
        *,
        partition: str | None,
        visible: Callable[[Digest], bool] = lambda digest: False,
        stage: Stage | None = None,
    ) -> Future[Form]:
        """`form` on the derivation threads."""
        return self._pool.submit(
            self.form, record, recipe, partition=partition, visible=visible, stage=stage
        )

    def ahead(
        self,
        record: ModelRecord,
        recipe: Recipe,
        *,
        partition: str | None,
        visible: Callable[[Digest], bool] = lambda digest: False,
    ) -> bool:
        """`submit` with nobody waiting: a form a page will ask for later, derived in the
        background now (its failure is only logged; asked later, it is tried again).
        False when the same one is queued already or `MAX_AHEAD` are in its scope."""
        key = (record.digest.hex, recipe.key(), self.scope(record, partition))
        with self._guard:
            queued = sum(1 for other in self._ahead if other[2] == key[2])
            if key in self._ahead or queued >= MAX_AHEAD:
                return False
            self._ahead.add(key)

        def done(made: Future[Form]) -> None:
            with self._guard:
                self._ahead.discard(key)
            failure = None if made.cancelled() else made.exception()
            if failure is not None:
                log.info("a form asked ahead was not made: %s", failure)

        self.submit(record, recipe, partition=partition, visible=visible).add_done_callback(done)
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.runtime.close()

    def _stop_when_idle(self) -> None:
        """A worker costs memory and derivations are rare: it ends once idle."""
        timer = threading.Timer(IDLE_S + 1, self.runtime.stop_if_idle, (IDLE_S,))
        timer.daemon = True
        timer.start()

    def _lock(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _derive(self, record: ModelRecord, recipe: Recipe, scope: str, stage: Stage) -> Provenance:
        work = CompileCache(self.store).new_work_dir()
        out = work / OUT_NAME
        try:
            stage("deriving")
            reply = self._call(source_ref(self.store, record.digest), recipe, out)
            stage("checking")
            provenance = self._checked(record.digest, recipe, scope, out, reply)
            stage("storing")
            pending = PendingBlob(out, provenance.form, out.stat().st_size)
            if recipe.external_data:
                publish_split(self.store, pending, work / DATA_FILE, provenance, recipe)
            else:
                metadata = _metadata(record, recipe, out)
                recipes = ingest_form(self.store, [(pending, None)])
                publish_form(self.store, pending, metadata, provenance, recipes=recipes)
            self.derived += 1
            log.info(
                "derived %s of %s in scope %s (max error %.3g)",
                recipe.key(),
                record.digest.short,
                "shared" if not scope else "of a partition",
                provenance.max_error,
            )
            return provenance
        finally:
            shutil.rmtree(work, ignore_errors=True)
            self._stop_when_idle()

    def _call(self, model: dict[str, Any], recipe: Recipe, out: Any) -> Any:
        body = {
            "model": model,  # its path, or its segments (form_segments.py)
            "recipe": recipe.to_json(),
            "limits": {
                "max_nodes": self.settings.max_nodes,
                "max_tensor_bytes": self.settings.max_tensor_bytes,
            },
            "out": str(out),
        }
        try:
            worker = self.runtime.worker()
            return worker.call("derive", body, timeout_s=self.settings.create_timeout_s)
        except WorkerLost as lost:
            raise HostError(
                "session_crashed", f"the runtime worker {lost.reason} while deriving a form"
            ) from lost
        except CallTimeout as timeout:
            raise HostError(
                "busy",
                f"deriving the form took longer than {timeout.limit_s:g} s and was stopped "
                "(sessions.create_timeout_s)",
            ) from timeout

    def _checked(
        self, source: Digest, recipe: Recipe, scope: str, out: Any, reply: Any
    ) -> Provenance:
        """The provenance of a form within tolerance; ``model_invalid`` otherwise, and
        the form is not kept."""
        error = float(reply["max_error"])
        if not error <= recipe.tolerance:  # NaN and infinity fail too
            raise HostError(
                "model_invalid",
                f"the {recipe.dtype} form of this model changes its outputs too much "
                f"(largest relative error {error:.3g}, tolerance {recipe.tolerance:g}); "
                "it was not kept: use another dtype",
            )
        digest, _ = hash_file(out)
        tools = {str(k): str(v) for k, v in dict(reply["tools"]).items()}
        if recipe.format in NOT_DETERMINISTIC:  # its bytes may differ next time
            tools["deterministic"] = NOT_DETERMINISTIC[recipe.format]
        return Provenance(source, recipe.key(), scope, digest, tools, error, recipe.tolerance)


def _metadata(source: ModelRecord, recipe: Recipe, out: Any) -> ModelMetadata:
    """The stored form's metadata: read from an ONNX form; an ORT-format file (a
    flatbuffer that onnx cannot read) keeps its source's inputs and outputs, which no
    recipe changes (fp16 keeps its inputs and outputs fp32)."""
    if recipe.format == "onnx":
        return read_onnx_metadata(out)
    found = source.metadata
    return ModelMetadata(format=recipe.format, inputs=found.inputs, outputs=found.outputs)


def _quiet(stage: str) -> None:
    pass
