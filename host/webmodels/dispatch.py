"""One dispatcher: methods to handlers, exceptions to error replies.

Handlers take a `Call` and return the ``result`` object; they raise `HostError` for
anything the caller should see. Any other exception becomes ``internal`` (logged with
its traceback) and never ends the host.

This is the one door errors go out by (docs/design.md#protocol-without-io): a page (an
untrusted context) gets the code, the code's fixed meaning as message, and only page-safe details
(`errors.PAGE_DETAILS`); the message as raised (paths, exception text, figures) goes to
the log. The CLI and the extension's own pages get the full error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from webmodels.context import RequestContext
from webmodels.errors import HostError
from webmodels.protocol import envelope
from webmodels.protocol.envelope import Request, RequestId
from webmodels.protocol.params import Params

log = logging.getLogger(__name__)

Emit = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Call:
    request_id: RequestId
    method: str
    params: Params
    context: RequestContext
    emit: Emit  # sends an event tagged with this request's id


# A handler returns its result, or a Future of it for work that outlives the call
# (a download): the reply is sent when the future completes, and no request thread
# waits meanwhile.
Result = Mapping[str, Any] | Future[Mapping[str, Any]]
Handler = Callable[[Call], Result]
Respond = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    trusted_only: bool


def _no_events(name: str, payload: Mapping[str, Any]) -> None:
    del name, payload


class Dispatcher:
    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}

    def add(self, method: str, handler: Handler, *, trusted_only: bool = False) -> None:
        if method in self._routes:
            raise ValueError(f"method {method} registered twice")
        self._routes[method] = Route(handler, trusted_only)

    def methods(self) -> list[str]:
        return sorted(self._routes)

    def handle(
        self, request: Request, context: RequestContext, emit: Emit = _no_events
    ) -> dict[str, Any]:
        """Run one request and return its reply envelope (waiting for a deferred one)."""
        replies: Future[dict[str, Any]] = Future()
        self.dispatch(request, context, emit, replies.set_result)
        return replies.result()

    def dispatch(
        self, request: Request, context: RequestContext, emit: Emit, respond: Respond
    ) -> None:
        """Run one request; `respond` gets its reply envelope exactly once. Never raises."""
        try:
            route = self._routes.get(request.method)
            if route is None:
                raise HostError(
                    "unknown_method", f"no method {request.method!r}", method=request.method
                )
            if route.trusted_only and not context.trusted:
                raise HostError(
                    "access_denied",
                    f"{request.method} is only for the extension's own pages and the CLI",
                )
            call = Call(request.id, request.method, Params(request.params), context, emit)
            result = route.handler(call)
        except BaseException as exc:  # every failure becomes a reply
            respond(_failure(request, exc, context))
            return
        if isinstance(result, Future):
            result.add_done_callback(lambda done: respond(_settled(request, done, context)))
        else:
            respond(envelope.success(request.id, result))


def _settled(
    request: Request, done: Future[Mapping[str, Any]], context: RequestContext
) -> dict[str, Any]:
    if done.cancelled():
        return _failure(request, HostError("cancelled", "the request was cancelled"), context)
    exc = done.exception()
    if exc is not None:
        return _failure(request, exc, context)
    return envelope.success(request.id, done.result())


def _failure(request: Request, exc: BaseException, context: RequestContext) -> dict[str, Any]:
    if isinstance(exc, HostError):
        error = exc
    elif not isinstance(exc, Exception):
        raise exc  # KeyboardInterrupt, SystemExit: not ours to swallow
    else:
        log.error("internal error in %s", request.method, exc_info=exc)
        error = HostError("internal", "internal error in the host; its log has the details")
    if context.trusted:
        return envelope.failure(request.id, error)
    if error.code == "internal":
        log.error("%s for a page: %s %s", request.method, error.message, error.details)
    else:
        log.info("%s for a page: %s: %s", request.method, error.code, error.message)
    return envelope.failure(request.id, error.for_page())
