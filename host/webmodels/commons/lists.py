"""The signed commons list: parse, verify and sign. Pure: bytes and keys in, values out.

On disk and on the wire a list is a signed envelope (`webmodels.signing`) of format
``webmodels-commons-v1``. The payload is ``{"version": N, "expires": "<ISO 8601 UTC>",
"models": [{"sha256", "name", "version", "size"}...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.signing import (
    check_signature,
    iso,
    load_json_object,
    open_envelope,
    parse_time,
    refusal,
    seal,
)
from webmodels.signing import public_key_text as public_key_text  # for sign-list, tests

FORMAT = "webmodels-commons-v1"
WHAT = "commons list"
MAX_LIST_BYTES = 4 << 20  # STYLE habit 7: a list is a few KB; refuse anything huge
MAX_MODELS = 10_000


@dataclass(frozen=True, slots=True)
class CommonModel:
    digest: Digest
    name: str
    version: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.digest.hex,
            "name": self.name,
            "version": self.version,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class CommonsList:
    """A list whose signature checked out with one of the trusted keys."""

    version: int
    expires: datetime
    models: tuple[CommonModel, ...]
    key_id: str
    payload: bytes  # the signed bytes, kept to compare lists of equal version
    document: bytes  # the whole envelope, as stored

    @property
    def digests(self) -> frozenset[Digest]:
        return frozenset(m.digest for m in self.models)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    def summary(self, now: datetime) -> dict[str, Any]:
        return {
            "version": self.version,
            "expires": iso(self.expires),
            "expired": self.expired(now),
            "key_id": self.key_id,
            "models": [m.to_json() for m in self.models],
        }


def sign_list(payload: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The envelope for `payload` (which must already be a valid list)."""
    parse_payload(payload)
    return seal(payload, private_key, format=FORMAT)


def verify_list(document: bytes, keys: Iterable[Ed25519PublicKey], *, now: datetime) -> CommonsList:
    """The list in `document` if a trusted key signed it and it has not expired."""
    envelope = open_envelope(document, format=FORMAT, max_bytes=MAX_LIST_BYTES, what=WHAT)
    check_signature(envelope, keys, what=WHAT)
    version, expires, models = parse_payload(envelope.payload)
    listed = CommonsList(version, expires, models, envelope.key_id, envelope.payload, document)
    if listed.expired(now):
        raise _refuse(f"it expired on {iso(expires)}; get a newer list")
    return listed


def read_list(document: bytes) -> CommonsList:
    """A list this host already accepted (from its index): parsed, not re-verified."""
    envelope = open_envelope(document, format=FORMAT, max_bytes=MAX_LIST_BYTES, what=WHAT)
    version, expires, models = parse_payload(envelope.payload)
    return CommonsList(version, expires, models, envelope.key_id, envelope.payload, document)


def check_succession(new: CommonsList, last: CommonsList | None) -> None:
    """Rollback protection: never go back to an older list, nor swap one of a version."""
    if last is None:
        return
    if new.version < last.version:
        raise _refuse(f"its version {new.version} is older than the current {last.version}")
    if new.version == last.version and new.payload != last.payload:
        raise _refuse(f"version {new.version} is already installed with other contents")


def parse_payload(payload: bytes) -> tuple[int, datetime, tuple[CommonModel, ...]]:
    data = load_json_object(payload, what=WHAT)
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _refuse("version must be a positive integer")
    models = data.get("models")
    if not isinstance(models, list) or len(models) > MAX_MODELS:
        raise _refuse(f"models must be a list of at most {MAX_MODELS} entries")
    return version, parse_time(data.get("expires"), what=WHAT), tuple(_model(m) for m in models)


def _model(entry: object) -> CommonModel:
    if not isinstance(entry, Mapping):
        raise _refuse("every model must be an object")
    name, version, size = entry.get("name"), entry.get("version"), entry.get("size")
    if not isinstance(name, str) or not isinstance(version, str):
        raise _refuse("every model needs a name and a version (strings)")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _refuse(f"model {name} needs a size in bytes")
    try:
        digest = Digest.parse(entry.get("sha256"))
    except HostError as exc:
        raise _refuse(f"model {name} has no valid sha256") from exc
    return CommonModel(digest, name, version, size)


def _refuse(why: str) -> HostError:
    return refusal(WHAT, why)
