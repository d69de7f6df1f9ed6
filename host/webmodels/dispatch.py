"""One dispatcher: methods to handlers, exceptions to error replies.

Handlers take a `Call` and return the ``result`` object; they raise `HostError` for
anything the caller should see. Any other exception becomes ``internal`` (logged with
its traceback) and never ends the host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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


Handler = Callable[[Call], Mapping[str, Any]]


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
        """Run one request and return its reply envelope; never raises."""
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
            return envelope.success(request.id, route.handler(call))
        except HostError as exc:
            return envelope.failure(request.id, exc)
        except Exception:
            log.exception("internal error in %s", request.method)
            return envelope.failure(
                request.id,
                HostError("internal", "internal error in the host; its log has the details"),
            )
