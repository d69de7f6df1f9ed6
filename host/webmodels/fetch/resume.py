"""Resume rules, pure (as pip's ``network/download.py``): what to ask for, and what a
reply means for the bytes already on disk.

* Resume only with a validator the server made strong promises about: a strong ETag
  or a Last-Modified date, sent back in ``If-Range`` (RFC 9110 §13.1.5). Without one
  a changed file would be spliced onto the old bytes.
* A 200 reply to a range request means the server ignored or refused the range (or
  the file changed): start over.
* A 206 whose ``Content-Range`` does not start where we asked is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)


@dataclass(frozen=True, slots=True)
class ResumeState:
    """What the sidecar JSON remembers about a partial file (its size is the offset)."""

    url: str | None = None
    etag: str | None = None  # strong ETags only
    last_modified: str | None = None
    total: int | None = None

    @property
    def validator(self) -> str | None:
        return self.etag or self.last_modified

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "total": self.total,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ResumeState:
        def text(key: str) -> str | None:
            item = value.get(key)
            return item if isinstance(item, str) else None

        total = value.get("total")
        etag = text("etag")
        return cls(
            url=text("url"),
            etag=None if etag is None or etag.startswith("W/") else etag,  # as `remember`
            last_modified=text("last_modified"),
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        )


def request_headers(state: ResumeState, *, url: str, offset: int) -> dict[str, str]:
    """Headers for the next attempt at `url`, resuming at `offset` when that is safe."""
    if can_resume(state, url=url, offset=offset):
        assert state.validator is not None
        return {"Range": f"bytes={offset}-", "If-Range": state.validator}
    return {}


def can_resume(state: ResumeState, *, url: str, offset: int) -> bool:
    return offset > 0 and state.url == url and state.validator is not None


class Action(Enum):
    APPEND = "append"  # the body continues the bytes on disk
    RESTART = "restart"  # the body is the whole file: truncate first
    RETRY_FROM_ZERO = "retry_from_zero"  # nothing usable: truncate, try again
    FAIL_MIRROR = "fail_mirror"  # this URL will not work; try the next mirror
    RETRY = "retry"  # a passing server error: back off and try again


@dataclass(frozen=True, slots=True)
class Reply:
    action: Action
    total: int | None = None
    reason: str = ""


def classify(status: int, headers: Mapping[str, str], *, offset: int, ranged: bool) -> Reply:
    """What a response status and headers mean for a transfer at `offset`."""
    length = _int(headers.get("Content-Length"))
    if status == 206:
        if not ranged:
            return Reply(Action.RETRY_FROM_ZERO, reason="206 to a request without Range")
        match = _content_range(headers.get("Content-Range"))
        if not match or int(match.group(1)) != offset:
            return Reply(
                Action.RETRY_FROM_ZERO,
                reason=f"Content-Range {headers.get('Content-Range')!r} does not start at {offset}",
            )
        total = None if match.group(3) == "*" else int(match.group(3))
        return Reply(Action.APPEND, total=total)
    if status == 200:
        return Reply(Action.RESTART, total=length)
    if status == 416:
        return Reply(Action.RETRY_FROM_ZERO, reason="range not satisfiable")
    if status in (408, 429) or 500 <= status < 600:
        return Reply(Action.RETRY, reason=f"HTTP {status}")
    return Reply(Action.FAIL_MIRROR, reason=f"HTTP {status}")


def remember(
    state: ResumeState, *, url: str, headers: Mapping[str, str], total: int | None
) -> ResumeState:
    """The state to save before writing a fresh (200) body."""
    etag = headers.get("ETag")
    strong = etag if etag and not etag.startswith("W/") else None
    return replace(
        state, url=url, etag=strong, last_modified=headers.get("Last-Modified"), total=total
    )


def _content_range(value: str | None) -> re.Match[str] | None:
    """A valid ``bytes first-last/total`` (RFC 9110 §14.4: last >= first and
    total > last, else the field is invalid and the body cannot be placed)."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        return None
    first, last, total = match.groups()
    if int(last) < int(first) or (total != "*" and int(total) <= int(last)):
        return None
    return match


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
