"""Error codes of the wire protocol, and the one exception type that carries them.

This is a leaf module: it imports nothing from the project, so every layer can raise
`HostError` without import cycles (as pip's ``exceptions.py``).

The table is APPEND-ONLY. A code, once shipped, is never renamed, removed or given
another meaning: pages and the extension switch on these strings
(``extension/`` mirrors the table and a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# code -> one-line meaning (also used in PROTOCOL.md and `webmodels` messages).
ERROR_CODES: Mapping[str, str] = {
    "bad_frame": "A frame could not be decoded (length prefix, UTF-8 or JSON).",
    "bad_request": "The request is not of the documented shape.",
    "unknown_method": "No such method.",
    "not_found": "No such model, blob or upload (or not visible to this partition).",
    "access_denied": "The caller may not do this (management needs a trusted caller).",
    "integrity_mismatch": "The bytes do not match the expected SHA-256.",
    "download_failed": "A download failed after its retries.",
    "network_unavailable": "The network cannot be reached and the model is not stored.",
    "disk_full": "Not enough free space to store the model.",
    "quota_exceeded": "A storage quota would be exceeded.",
    "user_activation_required": "Starting this needs a user gesture on the page.",
    "model_invalid": "The file is not a valid model of the expected format.",
    "model_unsafe": "The model refers to files or features the host refuses to load.",
    "session_not_found": "No such session in this partition.",
    "session_crashed": "The runtime worker crashed while handling this session.",
    "inference_failed": "The runtime rejected the inputs or failed to run.",
    "too_large": "A frame or value exceeds its size limit.",
    "cancelled": "The request was cancelled.",
    "busy": "Over a concurrency, memory or time limit; try again later.",
    "internal": "An unexpected error in the host (see its log).",
    # -- added after v1 (append below this line only) --
    "model_pinned": "The model is pinned; unpin it before deleting it.",
    "read_only": "The model is pre-installed and managed outside the store.",
    "representation_unavailable": "No converter makes the asked form of this model.",
}


# What a page (an untrusted context) may see of an error's details: only fields a page
# knows itself (its own parameters and query, the same-for-every-site gesture limit, its
# own quota left). Anything else (hashes of bodies, paths, host-wide figures, reasons)
# stays in the log (PRIVACY.md, hole 11; dispatch.py is the one door).
PAGE_DETAILS: Mapping[str, frozenset[str]] = {
    "bad_request": frozenset({"field"}),
    "unknown_method": frozenset({"method"}),
    "not_found": frozenset({"name", "version"}),
    "user_activation_required": frozenset({"limit"}),
    "quota_exceeded": frozenset({"left", "needed"}),
}
# Details a page may see whatever the code: ``file`` is set only to the key a page gave
# a file of its own set (``load({files: {KEY: …}})``: methods/page_sets.py,
# manifests/selection.py), so it echoes the page's input and nothing else. A file of a
# set the page did not name (a catalog's) never carries it to a page.
PAGE_ECHOED: frozenset[str] = frozenset({"file"})


class HostError(Exception):
    """An error that becomes a ``{"ok": false, "error": {...}}`` reply.

    ``message`` says what happened and what to do; ``details`` is JSON-serialisable.
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": dict(self.details)}

    def for_page(self) -> HostError:
        """What a page sees: the code, the code's fixed meaning as its message, and
        only the page-safe details (`PAGE_DETAILS`, `PAGE_ECHOED`)."""
        allowed = PAGE_DETAILS.get(self.code, frozenset()) | PAGE_ECHOED
        safe = {k: v for k, v in self.details.items() if k in allowed}
        return HostError(self.code, ERROR_CODES[self.code], **safe)

    def __repr__(self) -> str:
        return f"HostError({self.code!r}, {self.message!r})"
