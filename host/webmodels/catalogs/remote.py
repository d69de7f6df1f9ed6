"""Reading a catalog document from where the user said it lives: a file or an
http(s) URL, bounded in size (the CLI's `catalog add`/`update`, the popup)."""

from __future__ import annotations

from pathlib import Path

from webmodels.catalogs.documents import MAX_CATALOG_BYTES
from webmodels.errors import HostError
from webmodels.urls import is_http

FETCH_TIMEOUT_S = 30


def is_url(source: str) -> bool:
    return is_http(source)


def read_source(source: str) -> bytes:
    """The document at `source`; a larger one is cut at the limit (and then refused
    by the parser as not a catalog)."""
    if is_url(source):
        import requests  # here: the host starts without it (issue 13, host start)

        try:
            with requests.get(source, timeout=FETCH_TIMEOUT_S, stream=True) as reply:
                reply.raise_for_status()
                body = reply.raw.read(MAX_CATALOG_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise HostError("network_unavailable", f"cannot fetch {source}: {exc}") from exc
        return bytes(body)
    try:
        with Path(source).open("rb") as fh:
            return fh.read(MAX_CATALOG_BYTES + 1)
    except OSError as exc:
        raise HostError("not_found", f"cannot read {source}: {exc.strerror}") from exc


def source_label(source: str) -> str:
    """How the source is remembered: a URL as given, a file by its absolute path."""
    return source if is_url(source) else str(Path(source).resolve())
