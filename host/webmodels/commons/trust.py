"""Which keys may sign commons lists, and what each may sign.

`commons_keys` in the config names the trusted keys; the word ``"project"`` (and the
default, when the setting is absent) stands for the project's keys shipped in data/:
the release key, trusted for any list, and the retired key that signed the first
shipped list, trusted only for that list (version 1) and only until it expires. The
retired key is lost, so nobody can sign with it again; the limit means that even a
copy found later could not put a newer or longer-lived list in force.
Pure: texts and keys in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from webmodels.commons.lists import CommonsList, verify_list
from webmodels.signing import iso, key_id, parse_public_key, refusal

PROJECT = "project"  # in `commons_keys`: the project's keys below


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A key that may sign commons lists; a retired one only up to a version and a
    time (its list must expire by then, and nothing it signed counts after it)."""

    key: Ed25519PublicKey
    project: bool = False
    max_version: int | None = None
    until: datetime | None = None

    @property
    def id(self) -> str:
        return key_id(self.key)


# The key of the first shipped list (version 1, expiring 2027-11-29): lost, retired.
RETIRED_PROJECT_KEY = "hCFqNNSEsD9h8B+IFMw+2cK3j9fCKkPRbHarFclS5oo="
RETIRED_UNTIL = datetime(2027, 11, 29, tzinfo=UTC)
RETIRED_MAX_VERSION = 1


def shipped_key_text() -> str:
    return (resources.files("webmodels") / "data" / "commons-public-key").read_text("ascii")


def project_keys() -> tuple[TrustedKey, ...]:
    release = parse_public_key(shipped_key_text(), what="the project's commons key")
    retired = parse_public_key(RETIRED_PROJECT_KEY, what="the retired commons key")
    return (
        TrustedKey(release, project=True),
        TrustedKey(retired, project=True, max_version=RETIRED_MAX_VERSION, until=RETIRED_UNTIL),
    )


class Trust:
    """The keys this host trusts for commons lists (one list per key)."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self.keys = tuple({k.id: k for k in keys}.values())

    @classmethod
    def from_config(cls, texts: Sequence[str] | None) -> Trust:
        """The configured keys; None (no setting) means the project's keys."""
        found: list[TrustedKey] = []
        for text in texts if texts is not None else [PROJECT]:
            if text.strip() == PROJECT:
                found += project_keys()
            else:
                found.append(TrustedKey(parse_public_key(text, what="a commons key")))
        return cls(found)

    @property
    def public_keys(self) -> tuple[Ed25519PublicKey, ...]:
        return tuple(k.key for k in self.keys)

    def get(self, key: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.id == key), None)

    def verify(self, document: bytes, *, now: datetime) -> CommonsList:
        """The list in `document` if a trusted key signed it, it has not expired, and
        its key may sign it (a retired key: its version and expiry within bounds)."""
        listed = verify_list(document, self.public_keys, now=now)
        trusted = self.get(listed.key_id)
        assert trusted is not None  # verify_list found it among public_keys
        check_limits(listed, trusted, now=now)
        return listed


def check_limits(listed: CommonsList, trusted: TrustedKey, *, now: datetime) -> None:
    what = "commons list"
    if trusted.max_version is not None and listed.version > trusted.max_version:
        raise refusal(
            what,
            f"key {trusted.id} is retired: it is trusted only for lists up to version "
            f"{trusted.max_version}",
        )
    if trusted.until is not None and (now >= trusted.until or listed.expires > trusted.until):
        raise refusal(
            what,
            f"key {trusted.id} is retired: nothing it signed counts after {iso(trusted.until)}",
        )
