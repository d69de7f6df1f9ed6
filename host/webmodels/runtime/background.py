"""Background compilation: fill the compile cache before a page asks, never beside it.

A compile takes seconds of CPU on a machine where a page may be running its own
runtime (issue 12), so it is done only where it is likely to pay off and only when
nothing waits:

* *What*: ONNX models only, into the cache scopes a session is expected in: the shared
  scope of a common or pre-installed model; a partition's scope when a session of the
  model was built there before (another runtime version, say); or the scope of a page
  whose ``models.load`` asked for it (``compile: true``). A multi-file model (a graph
  with its external-data files: a model manifest, or files a page named) follows the
  same rule: compiled again in a scope where a session over exactly those files was
  built before, with the same files. A model a site merely stored
  is not compiled, and in strict mode a second partition's copy is compiled when that
  partition creates a session (in the foreground), not because another one did.
* *When*: ``background_delay_s`` after it was queued, and only once no page request
  came for ``background_idle_s``; that is checked again before every compile, so page
  traffic defers the queue between models. One compile at a time.
* *How*: in a runtime worker of its own at the lowest CPU and I/O priority
  (runtime/priority.py), never the worker that serves page sessions, so a model that
  crashes ONNX Runtime here costs no page a session; it is closed when the queue is
  empty. A compile that fails is recorded with its key and not retried (a new ORT
  version or CPU makes a new key).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime.loader import SessionSpec

if TYPE_CHECKING:
    from webmodels.runtime.client import Runtime
    from webmodels.runtime.sessions import SessionManager
    from webmodels.store.records import ModelRecord

log = logging.getLogger(__name__)
Files = tuple[tuple[str, Digest], ...]  # a multi-file model's external data, by location
_STARTUP_SCAN = Digest("0" * 64)  # a queue entry meaning "look for uncompiled models"


class BackgroundCompiler:
    def __init__(self, sessions: SessionManager, runtime: Runtime) -> None:
        self.sessions = sessions
        self.runtime = runtime
        self.delay_s = sessions.settings.background_delay_s
        self.idle_s = sessions.settings.background_idle_s
        # (due, order, model, scope, files, the exact spec of a deferred compile)
        self._queue: list[tuple[float, int, Digest, str, Files, SessionSpec | None]] = []
        self._order = 0
        self._wake = threading.Condition()
        self._closed = False
        self._last_request = time.monotonic()  # a host starts because a page wants it
        self._thread: threading.Thread | None = None
        self.compiled = 0  # counters, for logs and tests
        self.failed = 0

    def start(self) -> BackgroundCompiler:
        self._push(_STARTUP_SCAN, "")
        self._thread = threading.Thread(target=self._loop, name="compiler", daemon=True)
        self._thread.start()
        return self

    def note_request(self) -> None:
        """A page request arrived: compiles wait until the host has been idle again."""
        with self._wake:
            self._last_request = time.monotonic()

    def quiet_s(self) -> float:
        """Seconds since the last page request."""
        with self._wake:
            return time.monotonic() - self._last_request

    def stored(self, record: ModelRecord) -> None:
        """A model entered the store: queue it where a session of it is expected."""
        scopes = self.expected_scopes(record)
        if not scopes:
            log.info("not compiling %s: no session of it is expected", record.digest.short)
        for scope in scopes:
            self._push(record.digest, scope)

    def request(self, digest: Digest, scope: str, files: Files = ()) -> None:
        """A load asked for a compiled session (``compile: true``) in ``scope``;
        ``files``: a multi-file model's external data, by location."""
        self._push(digest, scope, files)

    def deferred(self, spec: SessionSpec) -> None:
        """A page's session was built without saving its compiled graph (a large or
        multi-file model, runtime/loader.py): compile it now that the page has it, at
        idle priority, with the same level, files and scope."""
        self._push(spec.digest, spec.scope, spec.files, spec)

    def expected_scopes(self, record: ModelRecord) -> list[str]:
        if record.format != "onnx" or not record.servable:
            return []
        scopes = self.sessions.cache_scopes(record)
        if self.sessions.is_common(record) or record.preinstalled_path is not None:
            return scopes
        used = self.sessions.cache.scopes_of(record.digest)
        return [scope for scope in scopes if scope in used]

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self.runtime.close()

    def _push(
        self, digest: Digest, scope: str, files: Files = (), exact: SessionSpec | None = None
    ) -> None:
        with self._wake:
            self._order += 1
            due = time.monotonic() + self.delay_s
            heapq.heappush(self._queue, (due, self._order, digest, scope, files, exact))
            self._wake.notify_all()

    def _next(self) -> tuple[Digest, str, Files, SessionSpec | None] | None:
        """The next entry that is due; closes the worker while the queue is empty."""
        while True:
            with self._wake:
                if self._closed:
                    return None
                if self._queue:
                    due = self._queue[0][0] - time.monotonic()
                    if due <= 0:
                        _, _, digest, scope, files, exact = heapq.heappop(self._queue)
                        return digest, scope, files, exact
                    self._wake.wait(due)
                    continue
            self.runtime.stop_if_idle(0.0)  # nothing to do: give its memory back
            with self._wake:
                if not self._queue and not self._closed:
                    self._wake.wait()

    def _wait_for_idle(self, digest: Digest) -> bool:
        """Block until no page request came for ``idle_s``; False once closed."""
        logged = False
        with self._wake:
            while not self._closed:
                quiet = time.monotonic() - self._last_request
                if quiet >= self.idle_s:
                    return True
                if not logged:
                    log.info("background compile of %s deferred: pages are active", digest.short)
                    logged = True
                self._wake.wait(self.idle_s - quiet)
        return False

    def _loop(self) -> None:
        while (entry := self._next()) is not None:
            digest, scope, files, exact = entry
            try:
                if digest == _STARTUP_SCAN:
                    self._scan()
                elif self._wait_for_idle(digest):
                    self._compile_in(digest, scope, files, exact)
            except Exception:
                log.exception("background compile of %s", digest.short)

    def _scan(self) -> None:
        for record in self.sessions.store.list_models():
            for scope in self.expected_scopes(record):
                self._push(record.digest, scope)
        for found in sorted(self.sessions.cache.file_sets(), key=repr):
            self._push(found.graph, found.scope, found.files)

    def _compile_in(
        self, digest: Digest, scope: str, files: Files = (), exact: SessionSpec | None = None
    ) -> bool:
        store = self.sessions.store
        record = store.get(digest)
        # A page's files stored through Cross-Origin Storage are not parsed; a set
        # that a session was built from is a graph either way.
        if record is None or not record.servable or (not files and record.format != "onnx"):
            return False
        data = [store.get(file) for _, file in files]
        if any(member is None for member in data):
            log.info("not compiling %s: a file of its set is gone", digest.short)
            return False
        size = record.size + sum(member.size for member in data if member is not None)
        if size > self.sessions.settings.max_model_bytes:
            return False
        if exact is not None:
            return self._compile(exact)
        provider = self.sessions.provider_for(None, warm=False)
        return self._compile(SessionSpec(digest, provider, "all", scope, files))

    def _compile(self, spec: SessionSpec) -> bool:
        sessions, digest = self.sessions, spec.digest
        version = sessions.ort_version_hint()
        if version is not None:
            key = sessions.key(spec, version)
            if sessions.cache.compiled(key) or sessions.cache.failed(key):
                return sessions.cache.compiled(key)
        started = time.perf_counter()
        try:
            sessions.load(self.runtime, spec, uuid.uuid4().hex, keep=False)
        except HostError as exc:
            self.failed += 1
            log.warning("background compile of %s failed: %s", digest.short, exc.message)
            version = sessions.ort_version_hint()
            if version is not None and exc.code not in ("busy", "internal", "not_found"):
                sessions.cache.record_failure(sessions.key(spec, version), exc.message)
            return False
        self.compiled += 1
        log.info(
            "compiled %s for %s in %.0f ms",
            digest.short,
            spec.provider,
            (time.perf_counter() - started) * 1000,
        )
        return True
