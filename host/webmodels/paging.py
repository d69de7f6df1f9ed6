"""Pages of the list methods: the `limit`, `cursor` (and `query`) params, the opaque
cursors, and filling a page that stays far below the 1 MiB frame.

A cursor is the sort key of the last item a page held, wrapped as base64url JSON with
the list it belongs to (keyset pagination: the next page starts right after that key
in an index, whatever was added or removed meanwhile, at the same cost on page 1 and
page 100, unlike ``OFFSET``). Cursors come back from callers, pages included, so one
is parsed as hostile input: any other shape is `bad_request`. A cursor only says where
a scan restarts; what the scan yields is filtered afterwards as on the first page, so a
forged one can skip items but never show one the caller may not see.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from webmodels.errors import HostError
from webmodels.protocol.params import Params

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# A page also stops at this many bytes of items: 500 items with long names, ONNX
# input lists or many sites still fit a 1 MiB frame with room to spare.
PAGE_BYTES = 256 * 1024
MAX_CURSOR_CHARS = 2048
MAX_KEY_TEXT = 512
MAX_QUERY = 128

Key = tuple[str | float, ...]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a caller asked for: at most `limit` items after the key `after`."""

    limit: int
    after: Key | None

    @classmethod
    def parse(cls, params: Params, *, kind: str, shape: tuple[type, ...]) -> PageRequest:
        limit = params.integer("limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        raw = params.raw.get("cursor")
        after = None if raw is None else decode(raw, kind=kind, shape=shape)
        return cls(limit, after)


def search_text(params: Params) -> str:
    """The `query` param: what the user typed in a search box (may be empty)."""
    return params.string("query", default="", max_length=MAX_QUERY).strip().lower()


def encode(kind: str, key: Key) -> str:
    text = json.dumps([kind, *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode(raw: object, *, kind: str, shape: tuple[type, ...]) -> Key:
    """The key in a cursor of list `kind` whose parts have the types of `shape`."""
    bad = HostError(
        "bad_request", "params.cursor is not a cursor this list gave out", field="cursor"
    )
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_CURSOR_CHARS:
        raise bad
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise bad from exc
    if not isinstance(value, list) or len(value) != len(shape) + 1 or value[0] != kind:
        raise bad
    parts = [_part(v, t) for v, t in zip(value[1:], shape, strict=True)]
    if any(p is None for p in parts):
        raise bad
    return tuple(p for p in parts if p is not None)


def _part(value: object, wanted: type) -> str | float | None:
    if wanted is str:
        return value if isinstance(value, str) and len(value) <= MAX_KEY_TEXT else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def fill(
    entries: Iterable[tuple[Key, T]],
    request: PageRequest,
    *,
    kind: str,
    render: Callable[[T], Mapping[str, Any] | None],
) -> tuple[list[Mapping[str, Any]], str | None]:
    """Items rendered from `entries` (in key order; `render` answers None for one the
    caller may not see) up to the limit or the byte budget, and the cursor of the
    next page (None when the scan ended)."""
    items: list[Mapping[str, Any]] = []
    used, last = 0, None
    for key, thing in entries:
        if len(items) == request.limit:
            return items, encode(kind, last) if last is not None else None
        item = render(thing)
        if item is not None:
            size = len(json.dumps(item))
            if items and used + size > PAGE_BYTES:
                return items, encode(kind, last) if last is not None else None
            items.append(item)
            used += size
        last = key
    return items, None
