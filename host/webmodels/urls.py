"""URL checks shared by every parser of hostile or hand-written text (pages' queries,
catalogs, config, the CLI): `urlsplit` itself raises ValueError on an unbalanced "["
or "]" or a bad port, which must read as "not a URL", never as a crash."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def split(url: object) -> SplitResult | None:
    """The parts of `url`, or None when it is not a string urlsplit can take."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port out of range
    except ValueError:
        return None
    return parts


def is_http(url: object) -> bool:
    """An http(s) URL with a host."""
    parts = split(url)
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
