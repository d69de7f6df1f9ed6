"""`SessionManager`: ONNX Runtime sessions owned by partitions, run in the worker.

* A session belongs to the partition that created it, and sessions and calls are
  bounded (runtime/session_table.py); a session unused for ``idle_s`` is unloaded.
* When the worker dies, the call that was running gets ``session_crashed`` and its
  session is dropped (it may be the culprit); the other sessions of that worker are
  rebuilt in a fresh worker on their next call (a compile-cache hit, so cheap). A call
  past ``run_timeout_s`` gets ``busy`` and the worker is stopped; calls that were
  merely in flight beside it are retried once in the fresh worker.
* Sessions are built through the compile cache (runtime/loader.py);
  `BackgroundCompiler` fills it ahead of time in a worker of its own.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime.client import CallTimeout, Runtime, WorkerLost, WorkerOptions, WorkerProcess
from webmodels.runtime.compile_cache import CacheKey
from webmodels.runtime.loader import Loader, SessionSpec, choose_provider
from webmodels.runtime.probe import ProviderProbe
from webmodels.runtime.segment_publish import GraphLinker
from webmodels.runtime.session_table import SessionTable
from webmodels.runtime.session_values import Created, Session
from webmodels.runtime.settings import SessionSettings
from webmodels.runtime.tensors import Tensor, parse_frame
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

log = logging.getLogger(__name__)

# What one run may return in all: outputs past one reply frame are kept by the host
# and read in chunks or through the loopback path (runtime/outputs.py); the worker's
# pipe frames hold 256 MiB.
MAX_OUTPUT_BYTES = 192 << 20
PROBE_WAIT_S = 30.0


# -- whose compile cache (docs/design.md#privacy: compiled sessions of models that are not
# common are per partition; a shared hit would tell site B that site A used the model) --


def preinstalled(record: ModelRecord) -> bool:
    """The commons predicate of a host without a commons list (tests, tools)."""
    return record.preinstalled_path is not None


class SessionManager:
    def __init__(
        self,
        store: Store,
        probe: ProviderProbe,
        settings: SessionSettings,
        *,
        log_path: Path | None = None,
    ) -> None:
        self.store = store
        self.probe = probe
        self.settings = settings
        self.loader = Loader(store, settings)
        self.cache = self.loader.cache
        options = WorkerOptions(memory_limit=settings.memory_limit, log_path=log_path)
        self.runtime = Runtime(options)
        self._lock = threading.Lock()
        self.table = SessionTable(settings)
        self._closed = threading.Event()
        self._prestarting = False
        # Visible to every partition by design (pre-installed, or on the signed commons
        # list: the host sets `CommonsGate.is_common`), so its compiled graph is shared.
        self.is_common: Callable[[ModelRecord], bool] = preinstalled
        from webmodels.runtime.background import BackgroundCompiler

        # A worker of its own, at the lowest CPU and I/O priority: never the one that
        # serves page sessions (issue 12).
        self.compiler = BackgroundCompiler(self, Runtime(replace(options, background=True)))
        # Graphs of models kept as segments, rewritten when published (not at the first
        # session, whose time would tell that no site made one before), also off-path.
        self.linker = GraphLinker(
            store,
            Runtime(replace(options, background=True)),
            self._limits,
            max_model_bytes=settings.max_model_bytes,
            timeout_s=settings.create_timeout_s,
            quiet_s=self.compiler.quiet_s,
            idle_s=settings.background_idle_s,
        )
        self.loader.before_link = self.linker.before_session

    def cache_scope(self, record: ModelRecord, partition: str | None) -> str:
        """The compile-cache scope of a session of ``record``: shared ("") for common
        models and for callers without a partition (the CLI, the popup), else the
        partition key."""
        return "" if partition is None or self.is_common(record) else partition

    def cache_scopes(self, record: ModelRecord) -> list[str]:
        """The scopes a background compile fills: every partition that obtained a model
        that is not common, else the shared one."""
        return [""] if not record.sites or self.is_common(record) else list(record.sites)

    def start(self) -> SessionManager:
        with contextlib.suppress(OSError, HostError):
            self.cache.remove_stale_work_dirs()
            self.cache.prune()
        threading.Thread(target=self._reap_loop, name="sessions-reaper", daemon=True).start()
        if self.settings.background_compile:
            self.loader.deferred = self.compiler.deferred
            self.store.on_stored.append(self.compiler.stored)
            self.compiler.start()
        self.store.on_stored.append(self._stored)
        self.store.on_stored.append(self.linker.stored)
        self.linker.start()
        return self

    def _limits(self) -> dict[str, int]:
        return {
            "max_nodes": self.settings.max_nodes,
            "max_tensor_bytes": self.settings.max_tensor_bytes,
        }

    def _stored(self, record: ModelRecord) -> None:
        """A model entered the store (a download, a COS write): start the worker ahead
        only for a common or pre-installed ONNX model, which any page may load next. A
        page that stores a model for its own ONNX Runtime Web must not pay for a Python
        worker start beside it (issue 12); its `models.load` starts one
        (`model_loaded`). Not "where some partition built a session before": who
        stored the bytes is not known here, so that would start the worker for one
        site because another site used the same bytes, which the first could time."""
        public = self.is_common(record) or record.preinstalled_path is not None
        if record.format == "onnx" and record.servable and public:
            self.prestart()

    def prestart(self) -> None:
        """Start the page-session worker ahead of the first `create` (a page loaded an
        ONNX model): in the background, one start at a time, none when one runs."""
        if self._closed.is_set() or self.runtime.current() is not None:
            return
        with self._lock:
            if self._prestarting:
                return
            self._prestarting = True
        threading.Thread(target=self._prestart, name="worker-prestart", daemon=True).start()

    def _prestart(self) -> None:
        try:
            self._warm()
        finally:
            with self._lock:
                self._prestarting = False

    def request_compile(
        self, record: ModelRecord, scope: str, files: Sequence[tuple[str, Digest]] = ()
    ) -> None:
        """A page asked for a compiled session of ``record`` in its own ``scope``
        (``files``: the external data of a manifest's graph, by location)."""
        if self.settings.background_compile and (record.format == "onnx" or files):
            self.compiler.request(record.digest, scope, tuple(files))

    def close(self) -> None:
        self._closed.set()
        self.compiler.close()
        self.linker.close()
        self.runtime.close()

    # -- the protocol's three calls ---------------------------------------------------------------

    def create(
        self,
        digest: Digest,
        *,
        partition: str,
        providers: Sequence[str] | None = None,
        level: str = "all",
        scope: str = "",
        files: Sequence[tuple[str, Digest]] = (),
        model_format: str = "onnx",
    ) -> Created:
        """``scope``: whose compile cache serves it (`SessionManager.cache_scope`);
        ``files``: the external data of a manifest's graph, by location;
        ``model_format`` "ort": a form the host made in ONNX Runtime's format."""
        with self.table.reservation(partition):
            provider = self.provider_for(providers)
            spec = SessionSpec(digest, provider, level, scope, tuple(files), model_format)
            session_id = secrets.token_hex(16)
            with self.table.slot():
                worker, reply = self.load(self.runtime, spec, session_id, keep=True)
            session = Session(
                id=session_id,
                partition=partition,
                spec=spec,
                provider=str(reply["provider"]),
                inputs=list(reply["inputs"]),
                outputs=list(reply["outputs"]),
                worker=worker,
                last_used=time.monotonic(),
            )
            self.table.add(session)
        return Created(
            session_id,
            session.provider,
            session.inputs,
            session.outputs,
            bool(reply["compiled_cache_hit"]),
        )

    def run(
        self,
        session_id: str,
        partition: str,
        feeds: Mapping[str, Tensor],
        fetches: Sequence[str] | None = None,
    ) -> dict[str, Tensor]:
        session = self.table.find(session_id, partition)
        with self.table.slot(session):
            try:
                return self._run(session, feeds, fetches)
            finally:
                session.last_used = time.monotonic()

    def release(self, session_id: str, partition: str) -> bool:
        session = self.table.pop(session_id, partition)
        if session is None:
            return False
        self._unload(session)
        return True

    def release_site(self, top_site: str) -> int:
        """Release every session of the site's partitions (the user cleared the site)."""
        gone = self.table.pop_site(top_site)
        for session in gone:
            self._unload(session)
        return len(gone)

    def compiled(self, digest: Digest, scope: str = "") -> bool:
        """Whether a session of this model, as `create` builds it by default in
        ``scope``, would be a compile-cache hit (never waits: false while the provider
        probe runs)."""
        probe = self.probe.result(0)
        version = self.ort_version_hint()
        if probe is None or version is None:
            return False
        spec = SessionSpec(digest, choose_provider(None, probe.usable), "all", scope)
        return self.cache.compiled(self.key(spec, version))

    def ort_version_hint(self) -> str | None:
        """ONNX Runtime's version as a worker or the probe reported it (same string)."""
        if self.loader.ort_version is not None:
            return self.loader.ort_version
        probe = self.probe.result(0)
        return probe.ort_version if probe is not None else None

    # -- building --------------------------------------------------------------------------------

    def provider_for(self, requested: Sequence[str] | None, *, warm: bool = True) -> str:
        if warm and not self.probe.done:  # the first call after a start: warm the worker
            threading.Thread(target=self._warm, name="worker-warm", daemon=True).start()
        probe = self.probe.result(PROBE_WAIT_S)
        return choose_provider(requested, probe.usable if probe is not None else ())

    def _warm(self) -> None:
        with contextlib.suppress(HostError):
            self.runtime.worker()

    def key(self, spec: SessionSpec, ort_version: str) -> CacheKey:
        return self.loader.key(spec, ort_version)

    def load(
        self, runtime: Runtime, spec: SessionSpec, session_id: str, *, keep: bool
    ) -> tuple[WorkerProcess, dict[str, Any]]:
        return self.loader.load(runtime, spec, session_id, keep=keep)

    # -- running ---------------------------------------------------------------------------------

    def _run(
        self, session: Session, feeds: Mapping[str, Tensor], fetches: Sequence[str] | None
    ) -> dict[str, Tensor]:
        body = {
            "session_id": session.id,
            "feeds": {name: tensor.to_frame() for name, tensor in feeds.items()},
            "fetches": list(fetches) if fetches else None,
            "max_output_bytes": MAX_OUTPUT_BYTES,
        }
        for attempt in (1, 2):
            worker = self._ensure_loaded(session)
            try:
                reply = worker.call("run", body, timeout_s=self.settings.run_timeout_s)
            except WorkerLost as lost:
                if lost.deliberate and not lost.culprit and attempt == 1:
                    continue  # stopped for another call's sake: once more, in a fresh worker
                self.table.drop(session)
                raise HostError(
                    "session_crashed",
                    f"the runtime worker {lost.reason} while running this session; "
                    "create the session again (the host itself is fine)",
                ) from lost
            except CallTimeout as timeout:
                raise HostError(
                    "busy",
                    f"the model ran longer than {timeout.limit_s:g} s and was stopped; use "
                    "smaller inputs, or raise sessions.run_timeout_s",
                ) from timeout
            outputs = reply.get("outputs") or {}
            return {n: parse_frame(v, field=f"outputs.{n}") for n, v in outputs.items()}
        raise AssertionError("unreachable")

    def _ensure_loaded(self, session: Session) -> WorkerProcess:
        """The worker holding the session, rebuilding it in a fresh one if its worker
        died or was retired since."""
        with session.lock:
            worker = session.worker
            if worker is None or not worker.usable:
                worker, _ = self.load(self.runtime, session.spec, session.id, keep=True)
                session.worker = worker
            return worker

    # -- unloading ---------------------------------------------------------------------------------

    def _unload(self, session: Session) -> None:
        worker = session.worker
        if worker is not None and worker.usable:
            with contextlib.suppress(HostError, WorkerLost, CallTimeout):
                worker.call("release", {"session_id": session.id}, timeout_s=10.0)

    def _reap_loop(self) -> None:
        idle_s = self.settings.idle_s
        while not self._closed.wait(max(0.2, min(idle_s / 4, 30.0))):
            try:
                self.reap()
            except Exception:
                log.exception("session reaper")

    def reap(self) -> int:
        """Unload sessions idle for ``idle_s``; stop the worker once none is left."""
        cutoff = time.monotonic() - self.settings.idle_s
        idle, empty = self.table.pop_idle(cutoff)
        for session in idle:
            log.info("unloading idle session %s", session.id[:8])
            self._unload(session)
        if empty:
            self.runtime.stop_if_idle(self.settings.idle_s)
        return len(idle)
