"""Graphs of models kept as segments, linked when the file is published.

A session of a model kept as segments loads a graph rewritten to name segment files
(`segment_sessions.linked_model`), which a runtime worker makes. Made at the first
session, it made that session slower than the later ones, which told a site whether
any site had made a session of the same bytes before. So every publish of an ONNX file
kept as segments (a download, a Cross-Origin Storage write, an import through the
host) queues the rewrite of its graph here, and the host's start queues the files that
have none yet (files converted or imported while no host ran).

The rewrite runs on a thread of its own, in a runtime worker of its own at the lowest
CPU and I/O priority, off the writer's path and once no page request came for
``background_idle_s``, as a background compile: a page that stores a model does not
wait for a Python worker, nor share the CPU with one while it works (issue 12). Every
publish queues it, also of bytes already held and linked, so what follows a site's
write does not depend on whether another site stored the same bytes before; a session
of a model whose rewrite is still queued does it itself first (and the queued one is
dropped), one whose rewrite runs waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.runtime import segment_sessions
from webmodels.runtime.client import CallTimeout, Runtime, WorkerLost
from webmodels.store.segmented import LINKED

if TYPE_CHECKING:
    from webmodels.store.records import ModelRecord
    from webmodels.store.store import Store

log = logging.getLogger(__name__)


class GraphLinker:
    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        limits: Callable[[], Mapping[str, int]],
        *,
        max_model_bytes: int,
        timeout_s: float,
        quiet_s: Callable[[], float] = lambda: float("inf"),
        idle_s: float = 0.0,
    ) -> None:
        """``quiet_s``: seconds since the last page request; a rewrite starts only
        once that reaches ``idle_s`` (as a background compile)."""
        self.store = store
        self.runtime = runtime
        self.limits = limits
        self.max_model_bytes = max_model_bytes
        self.timeout_s = timeout_s
        self.quiet_s = quiet_s
        self.idle_s = idle_s
        self._queue: dict[Digest, bool] = {}  # model -> rewrite even when one is kept
        self._running: Digest | None = None
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.linked = 0  # counters, for logs and tests

    def start(self) -> GraphLinker:
        """Queue the files kept as segments that have no graph yet; start the thread."""
        for digest in self._unlinked():
            self._push(digest, force=False)
        self._thread = threading.Thread(target=self._loop, name="graph-linker", daemon=True)
        self._thread.start()
        return self

    def stored(self, record: ModelRecord) -> None:
        """A file was published (new bytes or held ones): rewrite its graph."""
        if record.format == "onnx" and self.store.recipe_of(record.digest) is not None:
            self._push(record.digest, force=True)

    def before_session(self, digest: Digest) -> bool:
        """A session of ``digest`` is about to be made: wait for its running rewrite;
        True when a publish queued one (dropped now: the session rewrites the graph
        itself)."""
        with self._wake:
            while self._running == digest and not self._closed:
                self._wake.wait()
            return self._queue.pop(digest, False)

    def drain(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or running (tests, shutdown); False on timeout."""
        with self._wake:
            return self._wake.wait_for(
                lambda: self._closed or (not self._queue and self._running is None), timeout_s
            )

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self.runtime.close()

    def _push(self, digest: Digest, *, force: bool) -> None:
        with self._wake:
            self._queue[digest] = self._queue.get(digest, False) or force
            self._wake.notify_all()

    def _unlinked(self) -> list[Digest]:
        rows = self.store.index.query("SELECT sha256 FROM recipes ORDER BY sha256")
        folder = self.store.segmented.root / LINKED
        found = [Digest(str(row[0])) for row in rows]
        return [d for d in found if not (folder / f"{d.hex}.json").exists()]

    def _next(self) -> tuple[Digest, bool] | None:
        while True:
            with self._wake:
                self._running = None
                if self._closed:
                    return None
                if self._queue:
                    left = self.idle_s - self.quiet_s()
                    if left > 0:  # pages are active: their own sessions go first
                        self._wake.wait(left)
                        continue
                    digest = next(iter(self._queue))
                    force = self._queue.pop(digest)
                    self._running = digest
                    return digest, force
                self._wake.notify_all()
            self.runtime.stop_if_idle(0.0)  # nothing to do: give its memory back
            with self._wake:
                if not self._queue and not self._closed:
                    self._wake.wait()

    def _loop(self) -> None:
        while (entry := self._next()) is not None:
            try:
                self._link(*entry)
            except Exception:
                log.exception("linking the graph of %s", entry[0].short)
            finally:
                with self._wake:
                    self._running = None
                    self._wake.notify_all()

    def _link(self, digest: Digest, force: bool) -> None:
        record = self.store.get(digest)
        recipe = segment_sessions.session_recipe(self.store, digest)
        if record is None or recipe is None or record.format != "onnx":
            return
        if record.metadata.external_data or recipe.size > self.max_model_bytes:
            return
        try:
            segment_sessions.linked_model(
                self.store, digest, recipe, self._call, self.limits(), force=force
            )
        except (HostError, OSError) as exc:  # the session tries again (and reports it)
            log.info("graph of %s not linked: %s", digest.short, exc)
            return
        self.linked += 1

    def _call(self, op: str, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self.runtime.worker().call(op, body, timeout_s=self.timeout_s)
        except (WorkerLost, CallTimeout) as exc:
            raise HostError("internal", f"the runtime worker failed: {exc}") from exc
