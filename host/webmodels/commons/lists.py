"""The signed commons list: parse, verify and sign. Pure: bytes and keys in, values out.

On disk and on the wire a list is one JSON envelope (format ``webmodels-commons-v1``)::

    {"format": "webmodels-commons-v1",
     "key_id": "<first 16 hex of SHA-256 of the raw public key>",
     "payload": "<base64 of the list's exact JSON bytes>",
     "signature": "<base64 Ed25519 signature over those bytes>"}

The payload is ``{"version": N, "expires": "<ISO 8601 UTC>", "models": [{"sha256",
"name", "version", "size"}...]}``. Signing the exact bytes (not a re-serialisation)
means no canonical-JSON rules are needed: any change to an entry breaks the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from webmodels.digest import Digest
from webmodels.errors import HostError

FORMAT = "webmodels-commons-v1"
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
            "expires": _iso(self.expires),
            "expired": self.expired(now),
            "key_id": self.key_id,
            "models": [m.to_json() for m in self.models],
        }


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key_text(key).encode("ascii")).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32 bytes in base64: how keys appear in config files and data/."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise HostError(
            "bad_request", "a commons key must be 32 raw Ed25519 bytes in base64"
        ) from exc


def sign_list(payload: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The envelope for `payload` (which must already be a valid list)."""
    parse_payload(payload)
    envelope = {
        "format": FORMAT,
        "key_id": key_id(private_key.public_key()),
        "payload": base64.b64encode(payload).decode("ascii"),
        "signature": base64.b64encode(private_key.sign(payload)).decode("ascii"),
    }
    return (json.dumps(envelope, indent=2) + "\n").encode("utf-8")


def verify_list(document: bytes, keys: Iterable[Ed25519PublicKey], *, now: datetime) -> CommonsList:
    """The list in `document` if a trusted key signed it and it has not expired."""
    payload, signature, claimed = _open_envelope(document)
    by_id = {key_id(k): k for k in keys}
    key = by_id.get(claimed)
    if key is None:
        raise _refuse(f"it is signed with key {claimed}, which this host does not trust")
    try:
        key.verify(signature, payload)
    except InvalidSignature as exc:
        raise _refuse("its signature does not match its contents") from exc
    version, expires, models = parse_payload(payload)
    listed = CommonsList(version, expires, models, claimed, payload, document)
    if listed.expired(now):
        raise _refuse(f"it expired on {_iso(expires)}; get a newer list")
    return listed


def read_list(document: bytes) -> CommonsList:
    """A list this host already accepted (from its index): parsed, not re-verified."""
    payload, _, claimed = _open_envelope(document)
    version, expires, models = parse_payload(payload)
    return CommonsList(version, expires, models, claimed, payload, document)


def check_succession(new: CommonsList, last: CommonsList | None) -> None:
    """Rollback protection: never go back to an older list, nor swap one of a version."""
    if last is None:
        return
    if new.version < last.version:
        raise _refuse(f"its version {new.version} is older than the current {last.version}")
    if new.version == last.version and new.payload != last.payload:
        raise _refuse(f"version {new.version} is already installed with other contents")


def parse_payload(payload: bytes) -> tuple[int, datetime, tuple[CommonModel, ...]]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse("its payload is not JSON") from exc
    if not isinstance(data, Mapping):
        raise _refuse("its payload is not an object")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _refuse("version must be a positive integer")
    models = data.get("models")
    if not isinstance(models, list) or len(models) > MAX_MODELS:
        raise _refuse(f"models must be a list of at most {MAX_MODELS} entries")
    return version, _parse_time(data.get("expires")), tuple(_model(m) for m in models)


def _open_envelope(document: bytes) -> tuple[bytes, bytes, str]:
    if len(document) > MAX_LIST_BYTES:
        raise _refuse(f"it is larger than {MAX_LIST_BYTES} bytes")
    try:
        envelope = json.loads(document)
        if not isinstance(envelope, Mapping) or envelope.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} envelope")
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signature"], validate=True)
        claimed = envelope["key_id"]
        if not isinstance(claimed, str):
            raise ValueError("key_id must be a string")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _refuse(f"it is not a signed commons list ({exc})") from exc
    return payload, signature, claimed


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


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise _refuse("expires must be an ISO 8601 UTC time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _refuse("expires must be an ISO 8601 UTC time") from exc
    if moment.tzinfo is None:
        raise _refuse("expires must name its time zone (UTC, e.g. 2027-01-01T00:00:00Z)")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refuse(why: str) -> HostError:
    return HostError("bad_request", f"commons list refused: {why}")
