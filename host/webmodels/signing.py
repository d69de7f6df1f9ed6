"""Signed JSON documents (the commons list, catalogs): one envelope, Ed25519.

On disk and on the wire a document is::

    {"format": "<kind>-v1",
     "key_id": "<first 16 hex of SHA-256 of the public key text>",
     "payload": "<base64 of the document's exact JSON bytes>",
     "signature": "<base64 Ed25519 signature over those bytes>"}

Signing the exact bytes (not a re-serialisation) means no canonical-JSON rules are
needed: any change to the payload breaks the signature. Pure: bytes and keys in,
values out; what a refusal says is prefixed with the document's kind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from webmodels.errors import HostError


@dataclass(frozen=True, slots=True)
class Envelope:
    payload: bytes  # the signed bytes
    signature: bytes
    key_id: str  # the key the envelope claims; only a trusted key with this id is tried


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key_text(key).encode("ascii")).hexdigest()[:16]


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32 bytes in base64: how keys appear in config files and data/."""
    # public_bytes_raw, not public_bytes(Encoding.Raw, ...): the serialization module
    # also loads the SSH key code (and bcrypt) at every host start
    return base64.b64encode(key.public_bytes_raw()).decode("ascii")


def parse_public_key(text: str, *, what: str = "a signing key") -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise HostError("bad_request", f"{what} must be 32 raw Ed25519 bytes in base64") from exc


def seal(payload: bytes, private_key: Ed25519PrivateKey, *, format: str) -> bytes:
    """The envelope of `payload`, signed with `private_key`."""
    envelope = {
        "format": format,
        "key_id": key_id(private_key.public_key()),
        "payload": base64.b64encode(payload).decode("ascii"),
        "signature": base64.b64encode(private_key.sign(payload)).decode("ascii"),
    }
    return (json.dumps(envelope, indent=2) + "\n").encode("utf-8")


def open_envelope(document: bytes, *, format: str, max_bytes: int, what: str) -> Envelope:
    """The parts of an envelope of `format` (signature not checked yet)."""
    if len(document) > max_bytes:
        raise refusal(what, f"it is larger than {max_bytes} bytes")
    try:
        envelope = json.loads(document)
        if not isinstance(envelope, Mapping) or envelope.get("format") != format:
            raise ValueError(f"not a {format} envelope")
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signature"], validate=True)
        claimed = envelope["key_id"]
        if not isinstance(claimed, str):
            raise ValueError("key_id must be a string")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise refusal(what, f"it is not a signed {what} ({exc})") from exc
    return Envelope(payload, signature, claimed)


def check_signature(envelope: Envelope, keys: Iterable[Ed25519PublicKey], *, what: str) -> None:
    """Refuse unless one of `keys` (the one the envelope names) signed its payload."""
    by_id = {key_id(k): k for k in keys}
    key = by_id.get(envelope.key_id)
    if key is None:
        raise refusal(
            what, f"it is signed with key {envelope.key_id}, which this host does not trust"
        )
    try:
        key.verify(envelope.signature, envelope.payload)
    except InvalidSignature as exc:
        raise refusal(what, "its signature does not match its contents") from exc


def load_json_object(payload: bytes, *, what: str) -> Mapping[str, object]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise refusal(what, "its payload is not JSON") from exc
    if not isinstance(data, Mapping):
        raise refusal(what, "its payload is not an object")
    return data


def parse_time(value: object, *, what: str) -> datetime:
    """An ISO 8601 time that names its zone (``expires``), in UTC."""
    if not isinstance(value, str):
        raise refusal(what, "expires must be an ISO 8601 UTC time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise refusal(what, "expires must be an ISO 8601 UTC time") from exc
    if moment.tzinfo is None:
        raise refusal(what, "expires must name its time zone (UTC, e.g. 2027-01-01T00:00:00Z)")
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal(what: str, why: str) -> HostError:
    return HostError("bad_request", f"{what} refused: {why}")
