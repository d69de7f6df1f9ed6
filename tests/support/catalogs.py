"""Throw-away catalog keys and signed catalogs for tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from webmodels.catalogs.documents import sign_catalog
from webmodels.signing import public_key_text


def entry(
    data: bytes,
    name: str,
    version: str,
    *,
    urls: tuple[str, ...] = (),
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    equivalents: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": name,
        "version": version,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "urls": list(urls),
        "format": "onnx",
        "equivalents": list(equivalents),
        **extra,
    }
    if inputs is not None:
        found["inputs"] = inputs
    if outputs is not None:
        found["outputs"] = outputs
    return found


class DocumentSigner:
    """A throw-away Ed25519 key that signs `{version, expires, models}` documents
    (commons lists, catalogs) with `seal`, adding `head` to every payload."""

    def __init__(self, seal: Callable[[bytes, Ed25519PrivateKey], bytes], **head: Any) -> None:
        self.seal, self.head = seal, head
        self.key = Ed25519PrivateKey.generate()
        self.public = public_key_text(self.key.public_key())

    def payload(
        self, version: int, models: list[dict[str, Any]], *, expires_in: timedelta | None = None
    ) -> bytes:
        expires = datetime.now(UTC) + (expires_in or timedelta(days=30))
        body = {
            **self.head,
            "version": version,
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "models": models,
        }
        return json.dumps(body).encode()

    def sign(self, version: int, models: list[dict[str, Any]], **kw: Any) -> bytes:
        return self.seal(self.payload(version, models, **kw), self.key)

    def write(self, path: Path, version: int, models: list[dict[str, Any]], **kw: Any) -> Path:
        path.write_bytes(self.sign(version, models, **kw))
        return path


class CatalogSigner(DocumentSigner):
    def __init__(self, name: str = "test-catalog") -> None:
        super().__init__(sign_catalog, catalog=name)
        self.name = name
