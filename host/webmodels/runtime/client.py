"""The host's side of the runtime worker: start it, call it, notice when it dies.

This module never imports onnxruntime (nor numpy): the host must survive whatever a
model does to ONNX Runtime, so only the worker process loads it. A `WorkerProcess` is
one such process; calls are multiplexed over its pipes by id and answered in any
order. `Runtime` keeps the current worker and starts a fresh one when it died or was
retired (after running out of memory, a worker's heap may be in a poor state, so it
finishes the calls it has and is replaced).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from webmodels.errors import ERROR_CODES, HostError
from webmodels.permissions import make_private_dir, private_opener
from webmodels.runtime import pipe
from webmodels.runtime.children import child_env

log = logging.getLogger(__name__)
WORKER_MODULE = "webmodels.runtime.worker"
MAX_LOG_BYTES = 1 << 20


class WorkerLost(Exception):
    """The worker ended while a call was in flight. ``deliberate``: the host stopped it
    (a time limit); ``culprit``: this very call is why."""

    def __init__(self, reason: str, *, deliberate: bool, culprit: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.deliberate = deliberate
        self.culprit = culprit


class CallTimeout(Exception):
    """A call ran past its limit; the worker was killed."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"call ran past {limit_s:g} s")
        self.limit_s = limit_s


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    memory_limit: int | None = None  # bytes of heap (RLIMIT_DATA); None: unlimited
    log_path: Path | None = None  # the worker's stderr (ORT's own log lines)
    start_timeout_s: float = 60.0
    background: bool = False  # lowest CPU and I/O priority (runtime/priority.py)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    ort_version: str
    available: tuple[str, ...]
    pid: int


class WorkerProcess:
    def __init__(self, options: WorkerOptions, generation: int) -> None:
        self.options = options
        self.generation = generation
        self.info: WorkerInfo | None = None
        self.retiring = False
        self.dead = False
        self.last_active = time.monotonic()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._stop_reason: str | None = None
        self._culprit: int | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> WorkerProcess:
        argv = [
            sys.executable,
            "-m",
            WORKER_MODULE,
            f"--memory-limit={self.options.memory_limit or 0}",
            f"--parent-pid={os.getpid()}",
        ]
        if self.options.background:
            argv.append("--background")
        stderr = _open_log(self.options.log_path)
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr if stderr is not None else subprocess.DEVNULL,
                env=child_env(),
            )
        except OSError as exc:
            raise HostError("internal", f"cannot start the runtime worker: {exc}") from exc
        finally:
            if stderr is not None:
                stderr.close()
        threading.Thread(target=self._read, name=f"worker-{self.pid}", daemon=True).start()
        try:
            hello = self.call("hello", {}, timeout_s=self.options.start_timeout_s)
        except (WorkerLost, CallTimeout) as exc:
            raise HostError(
                "internal",
                f"the runtime worker did not start ({exc}); `webmodels doctor` checks ONNX Runtime",
            ) from exc
        self.info = WorkerInfo(
            str(hello["ort_version"]), tuple(hello["available"]), int(hello["pid"])
        )
        log.info(
            "%sruntime worker %d started (ORT %s)",
            "background " if self.options.background else "",
            self.pid,
            self.info.ort_version,
        )
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else -1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def usable(self) -> bool:
        return not (self.dead or self.retiring)

    def kill(self, reason: str, *, culprit: int | None = None) -> None:
        self.retiring = True  # no new calls, even before the reader sees it gone
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason, self._culprit = reason, culprit
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def retire(self) -> None:
        """Take no new work; end once the calls in flight are answered."""
        self.retiring = True
        if self.in_flight == 0:
            self.close()

    def close(self, timeout_s: float = 5.0) -> None:
        self.retiring = True
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with self._write_lock:
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # the worker finishes what it has, then exits
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill("closed by the host")

    # -- calls ----------------------------------------------------------------------------------

    def call(self, op: str, body: Mapping[str, Any], *, timeout_s: float) -> dict[str, Any]:
        """The ``result`` of one op. Raises `HostError` for what the worker refused,
        `WorkerLost` when it died, `CallTimeout` (after killing it) past ``timeout_s``."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            if self.dead:
                raise WorkerLost("the runtime worker has stopped", deliberate=True, culprit=False)
            call_id = next(self._ids)
            self._pending[call_id] = future
        try:
            self._send({**body, "id": call_id, "op": op})
            reply = future.result(timeout=timeout_s)
        except FutureTimeout:
            self.kill(f"a call ran past its {timeout_s:g} s limit", culprit=call_id)
            raise CallTimeout(timeout_s) from None
        finally:
            with self._lock:
                self._pending.pop(call_id, None)
                left = len(self._pending)
            self.last_active = time.monotonic()
            if self.retiring and left == 0:
                threading.Thread(target=self.close, daemon=True).start()
        if reply.get("ok") is True:
            result: dict[str, Any] = reply.get("result") or {}
            return result
        raise self._error(reply.get("error"))

    def _send(self, message: dict[str, Any]) -> None:
        frame = pipe.encode(message)
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            with self._write_lock:
                proc.stdin.write(frame)
                proc.stdin.flush()
        except (OSError, ValueError) as exc:  # a closed pipe: the worker is gone
            self.kill(f"cannot write to the runtime worker: {exc}")
            lost = WorkerLost("the runtime worker has stopped", deliberate=False, culprit=False)
            raise lost from exc

    def _error(self, error: object) -> HostError:
        if not isinstance(error, Mapping) or error.get("code") not in ERROR_CODES:
            return HostError("internal", f"the runtime worker answered {error!r}")
        details = error.get("details") if isinstance(error.get("details"), Mapping) else {}
        assert isinstance(details, Mapping)
        if details.get("memory"):
            self.retire()  # out of memory: let a fresh worker take the next calls
        return HostError(str(error["code"]), str(error.get("message", "")), **details)

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            while (message := pipe.read_frame(proc.stdout)) is not None:
                with self._lock:
                    future = self._pending.get(message.get("id", -1))
                if future is not None and not future.done():
                    future.set_result(message)
        except pipe.PipeError as exc:
            log.error("runtime worker %d: %s", self.pid, exc)
            self.kill(f"the runtime worker sent a broken frame ({exc})")
        finally:
            self._lost(proc)

    def _lost(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        with self._lock:
            self.dead = True
            pending, self._pending = self._pending, {}
            reason, culprit = self._stop_reason, self._culprit
        described = reason or describe_exit(code)
        if reason is None and code != 0:
            log.error("runtime worker %d %s", proc.pid, described)
        for call_id, future in pending.items():
            if not future.done():
                future.set_exception(
                    WorkerLost(described, deliberate=reason is not None, culprit=call_id == culprit)
                )


class Runtime:
    """The current worker of one purpose (sessions, or background compiles)."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._current: WorkerProcess | None = None
        self._generation = 0
        self._closed = False

    def worker(self) -> WorkerProcess:
        """The current worker, started now if there is none that takes work."""
        with self._lock:
            if self._closed:
                raise HostError("busy", "the host is shutting down")
            current = self._current
            if current is None or not current.usable:
                self._generation += 1
                current = WorkerProcess(self.options, self._generation).start()
                self._current = current
            current.last_active = time.monotonic()  # not idle: a call is coming
            return current

    def current(self) -> WorkerProcess | None:
        with self._lock:
            current = self._current
        return current if current is not None and current.usable else None

    def stop_if_idle(self, idle_s: float) -> bool:
        """Close the worker when no call ran for ``idle_s`` (it costs memory)."""
        with self._lock:
            current = self._current
            idle = (
                current is not None
                and current.in_flight == 0
                and time.monotonic() - current.last_active > idle_s
            )
            if idle:
                self._current = None
        if idle and current is not None:
            current.close()
        return idle

    def close(self) -> None:
        with self._lock:
            self._closed = True
            current, self._current = self._current, None
        if current is not None:
            current.close(timeout_s=2.0)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _open_log(path: Path | None) -> IO[bytes] | None:
    if path is None:
        return None
    try:
        make_private_dir(path.parent, own=path.parent)
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            os.replace(path, path.with_suffix(path.suffix + ".1"))
        return open(path, "ab", opener=private_opener)  # 0600: PRIVACY.md, hole 7
    except OSError:
        return None
