"""Background compilation: fill the compile cache before any page asks.

When a model enters the store (a download, an upload, an import through this host)
and, a little after the host starts, for every stored ONNX model not yet compiled
(imports by the CLI and pre-installed models), the host builds a session for the best
provider and throws it away, keeping only the optimized graph. It runs in a runtime
worker of its own, so a model that crashes ONNX Runtime here costs no page a session,
and that worker is closed as soon as the queue is empty. A compile that fails is
recorded with its key and not retried (a new ORT version or CPU makes a new key).
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

log = logging.getLogger(__name__)
_STARTUP_SCAN = Digest("0" * 64)  # a queue entry meaning "look for uncompiled models"


class BackgroundCompiler:
    def __init__(self, sessions: SessionManager, runtime: Runtime) -> None:
        self.sessions = sessions
        self.runtime = runtime
        self.delay_s = sessions.settings.background_delay_s
        self._queue: list[tuple[float, int, Digest]] = []
        self._order = 0
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.compiled = 0  # counters, for logs and tests
        self.failed = 0

    def start(self) -> BackgroundCompiler:
        self._push(_STARTUP_SCAN)
        self._thread = threading.Thread(target=self._loop, name="compiler", daemon=True)
        self._thread.start()
        return self

    def schedule(self, digest: Digest) -> None:
        self._push(digest)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self.runtime.close()

    def _push(self, digest: Digest) -> None:
        with self._wake:
            self._order += 1
            heapq.heappush(self._queue, (time.monotonic() + self.delay_s, self._order, digest))
            self._wake.notify_all()

    def _next(self) -> Digest | None:
        """The next digest that is due; closes the worker while the queue is empty."""
        while True:
            with self._wake:
                if self._closed:
                    return None
                if self._queue:
                    due = self._queue[0][0] - time.monotonic()
                    if due <= 0:
                        return heapq.heappop(self._queue)[2]
                    self._wake.wait(due)
                    continue
            self.runtime.stop_if_idle(0.0)  # nothing to do: give its memory back
            with self._wake:
                if not self._queue and not self._closed:
                    self._wake.wait()

    def _loop(self) -> None:
        while (digest := self._next()) is not None:
            try:
                if digest == _STARTUP_SCAN:
                    self._scan()
                else:
                    self.compile(digest)
            except Exception:
                log.exception("background compile of %s", digest.short)

    def _scan(self) -> None:
        for record in self.sessions.store.list_models():
            if record.servable and record.format == "onnx":
                self._push(record.digest)

    def compile(self, digest: Digest) -> bool:
        """Compile one model for the default provider; True when the cache now has it."""
        sessions = self.sessions
        record = sessions.store.get(digest)
        if record is None or not record.servable or record.format != "onnx":
            return False
        if record.size > sessions.settings.max_model_bytes:
            return False
        spec_provider = sessions.provider_for(None, warm=False)
        # Into each scope a page's session would use (per partition for models that
        # are not common, DESIGN §4), so that every site that obtained it gets hits.
        done = [
            self._compile(SessionSpec(digest, spec_provider, "all", scope))
            for scope in sessions.cache_scopes(record)
        ]
        return all(done)

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
