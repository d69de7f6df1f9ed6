"""The stdio loop of the native host: the only module that reads stdin or writes stdout.

Frames go to the original stdout descriptor only; file descriptor 1 is pointed at
stderr for the life of the loop, so a stray ``print`` or a native library writing to
stdout can never corrupt the stream. Requests run on a bounded thread pool so a long
handler never blocks the reader; replies and events share one locked writer.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from webmodels.context import RequestContext
from webmodels.dispatch import Dispatcher
from webmodels.errors import HostError
from webmodels.protocol import envelope
from webmodels.protocol.envelope import BadRequest, Request, RequestId
from webmodels.protocol.framing import (
    Frame,
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    encode_frame,
)

log = logging.getLogger(__name__)
_READ_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class ServeOptions:
    trusted_stdio: bool = False  # requests without context act as the CLI (tests, scripts)
    caller: str | None = None  # the browser's argv: extension origin or add-on id
    max_workers: int = 8
    on_page_request: Callable[[], None] | None = None  # background work yields to pages


class FrameWriter:
    """Writes whole frames under a lock; a reply over 1 MiB becomes ``too_large``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.broken = False

    def send(self, message: Mapping[str, Any]) -> None:
        try:
            frame = encode_frame(envelope.dumps(message))
        except FrameTooLarge as exc:
            log.error("reply to %r too large (%d bytes)", message.get("id"), exc.size)
            error = HostError(
                "too_large",
                f"the reply ({exc.size} bytes) exceeds the {exc.limit}-byte frame limit",
                size=exc.size,
                limit=exc.limit,
            )
            frame = encode_frame(envelope.dumps(envelope.failure(message.get("id"), error)))
        with self._lock:
            if self.broken:
                return
            try:
                view = memoryview(frame)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:  # the browser closed the port
                self.broken = True


class Server:
    def __init__(self, dispatcher: Dispatcher, options: ServeOptions, writer: FrameWriter):
        self._dispatcher = dispatcher
        self._options = options
        self._writer = writer
        self._pool = ThreadPoolExecutor(
            max_workers=options.max_workers, thread_name_prefix="request"
        )

    def run(self, read_fd: int) -> int:
        decoder = FrameDecoder()
        try:
            while not self._writer.broken:
                try:
                    data = os.read(read_fd, _READ_SIZE)
                except InterruptedError:  # pragma: no cover - retried by Python already
                    continue
                items = decoder.feed(data) if data else decoder.eof()
                for item in items:
                    self._take(item)
                if not data:
                    log.info("stdin closed; exiting")
                    break
        finally:
            self._pool.shutdown(wait=True)
        return 0

    def _take(self, item: Frame | FrameError) -> None:
        if isinstance(item, FrameError):
            log.warning("frame error: %s", item.message)
            details = {} if item.declared_length is None else {"length": item.declared_length}
            error = HostError(item.code, item.message, **details)
            self._writer.send(envelope.failure(None, error))
            return
        try:
            request = envelope.parse_request(item.body)
            context = self._context_of(request)
        except BadRequest as exc:
            self._writer.send(envelope.failure(exc.request_id, exc))
            return
        except HostError as exc:
            self._writer.send(envelope.failure(_id_of(item), exc))
            return
        if context.partition is not None and self._options.on_page_request is not None:
            self._options.on_page_request()
        self._pool.submit(self._run_one, request, context)

    def _context_of(self, request: Request) -> RequestContext:
        if request.context is not None:
            return RequestContext.parse(request.context)
        if self._options.trusted_stdio:
            return RequestContext.trusted_local()
        raise HostError(
            "bad_request", "request has no context (the extension's service worker adds it)"
        )

    def _run_one(self, request: Request, context: RequestContext) -> None:
        def emit(name: str, payload: Mapping[str, Any]) -> None:
            self._writer.send(envelope.event(name, request.id, payload))

        log.debug("-> %s %s", request.id, request.method)
        self._dispatcher.dispatch(request, context, emit, self._writer.send)


def _id_of(frame: Frame) -> RequestId | None:
    try:
        return envelope.parse_request(frame.body).id
    except HostError:
        return None


def claim_stdio() -> tuple[int, int]:
    """Return (stdin fd, frame-output fd) and point fd 1 at stderr.

    On Windows the descriptors are switched to binary mode: in text mode the C
    runtime would turn ``\\n`` into ``\\r\\n`` inside frames.
    """
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.setmode(0, os.O_BINARY)
        msvcrt.setmode(1, os.O_BINARY)
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return 0, out_fd
