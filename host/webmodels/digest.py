"""`Digest`: a validated SHA-256, built once at the boundary (parse, don't validate).

Inner code never handles a raw hash string: a `Digest` is always 64 lowercase hex
characters, so it is safe to turn into a path (Ollama validates digests before they
become paths for the same reason).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from webmodels.errors import HostError

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Digest:
    hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.hex, str) or not _HEX64.fullmatch(self.hex):
            raise ValueError(f"not a SHA-256 hex digest: {self.hex!r}")

    @classmethod
    def parse(cls, value: object, *, field: str = "sha256") -> Digest:
        """Accept 64 hex characters (any case) or ``sha256:<hex>``; else `bad_request`."""
        if isinstance(value, str):
            text = value.strip().lower()
            if text.startswith("sha256:"):
                text = text[len("sha256:") :]
            if _HEX64.fullmatch(text):
                return cls(text)
        raise HostError(
            "bad_request",
            f"{field} must be a SHA-256 digest of 64 hex characters",
            field=field,
        )

    @classmethod
    def from_integrity(cls, value: object) -> Digest:
        """Parse Subresource Integrity metadata ``sha256-<base64>``."""
        if isinstance(value, str) and value.startswith("sha256-"):
            try:
                raw = base64.b64decode(value[len("sha256-") :], validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) == 32:
                return cls(raw.hex())
        raise HostError(
            "bad_request", "integrity must be 'sha256-<base64 of 32 bytes>'", field="integrity"
        )

    @property
    def integrity(self) -> str:
        return "sha256-" + base64.b64encode(bytes.fromhex(self.hex)).decode("ascii")

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return self.hex
