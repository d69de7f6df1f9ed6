"""The message envelope of PROTOCOL.md: requests in, replies and events out.

Pure functions: a frame body becomes a `Request` (or a `HostError` saying why not),
and replies are plain dicts ready for `json.dumps`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webmodels.errors import HostError

RequestId = int | str
_METHOD = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_MAX_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: Mapping[str, Any]
    context: Mapping[str, Any] | None  # raw; parsed into RequestContext by the server


class BadRequest(HostError):
    """A request that could not be parsed; ``request_id`` is what could be recovered."""

    def __init__(self, code: str, message: str, request_id: RequestId | None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_request(body: bytes) -> Request:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("bad_frame", f"frame is not valid UTF-8 (byte {exc.start})", None) from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("bad_frame", f"frame is not valid JSON: {exc}", None) from exc
    if not isinstance(value, dict):
        raise BadRequest("bad_request", "a request must be a JSON object", None)
    request_id = value.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        raise BadRequest("bad_request", "request id must be an integer or a string", None)
    if isinstance(request_id, str) and len(request_id) > _MAX_ID_LENGTH:
        raise BadRequest("bad_request", "request id is too long", None)
    method = value.get("method")
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise BadRequest("bad_request", "method must be a 'noun.verb' string", request_id)
    params = value.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest("bad_request", "params must be an object", request_id)
    context = value.get("context")
    if context is not None and not isinstance(context, dict):
        raise BadRequest("bad_request", "context must be an object", request_id)
    return Request(id=request_id, method=method, params=params, context=context)


def success(request_id: RequestId, result: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": dict(result)}


def failure(request_id: RequestId | None, error: HostError) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": error.to_wire()}


def event(name: str, request_id: RequestId, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"event": name, "id": request_id, **payload}


def dumps(message: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; ``ensure_ascii=False`` keeps frames small."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
