"""The one page-facing description of a model, and the chunks a page reads it in: one
door out to pages (docs/design.md#protocol-without-io).

Every reply that carries a ModelInfo (`models.load`, `models.list`, `cos.write.commit`)
builds it here, so a page sees the same description of the same bytes whoever else
holds them: never a label the user or another site's name query put on the stored copy,
never how the first copy came, never that another site compiled it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from webmodels.context import RequestContext
from webmodels.digest import Digest
from webmodels.store.records import ModelRecord

if TYPE_CHECKING:
    from webmodels.app import Host

# Largest raw chunk whose base64 (4/3) plus the envelope stays under the 1 MiB frame.
READ_CHUNK = 720 * 1024


def model_for_page(host: Host, record: ModelRecord, context: RequestContext) -> dict[str, Any]:
    """The ModelInfo of PROTOCOL.md for `context`: the record's own (with `compiled`)
    for trusted callers, the page-cleaned one for pages."""
    # `compiled`: a session of it would be a compile-cache hit (runtime/sessions.py)
    # in this partition's own scope, so it never says that another site compiled it.
    scope = host.sessions.cache_scope(record, context.partition.key if context.partition else None)
    compiled = record.format == "onnx" and host.sessions.compiled(record.digest, scope)
    found = {**record.info(), "compiled": compiled}
    if context.trusted:
        return found
    # A page sees the name the catalogs or a pre-installed folder give these bytes,
    # the same whoever else holds them: a label the user or another site's name query
    # put on the stored copy would tell it they exist.
    label = host.names.label(record.digest)
    found["name"], found["version"] = label if label is not None else (None, None)
    # Likewise how the first copy came ("imported" by the user): a page's own copy
    # came by download (or upload), unless it is pre-installed.
    found["source"] = "preinstalled" if record.preinstalled_path else "downloaded"
    return found


def visible_record(
    host: Host, digest: Digest | None, context: RequestContext
) -> ModelRecord | None:
    """`CommonsGate.visible`: cheap look-ups decide before a record is built (timing)."""
    return host.commons.visible(digest, context)


def chunk_reply(data: bytes, offset: int, size: int) -> dict[str, Any]:
    """A chunked read's reply (`models.read`, `sessions.output`): `data` read at
    `offset` of `size` bytes."""
    return {
        "data": base64.b64encode(data).decode("ascii"),
        "offset": offset,
        "length": len(data),
        "size": size,
        "eof": offset + len(data) >= size,
    }
