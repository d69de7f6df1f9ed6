"""``oci://REGISTRY/REPOSITORY[:TAG][@sha256:HEX]`` references (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from webmodels.digest import Digest
from webmodels.errors import HostError

SCHEME = "oci://"
# The distribution spec's repository name grammar, and its tag grammar.
_REPOSITORY = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_REGISTRY = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str  # host[:port]
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def manifest_ref(self) -> str:
        """What `/v2/<repo>/manifests/<ref>` takes: the digest when given, else the tag."""
        if self.digest is not None:
            return f"sha256:{self.digest.hex}"
        return self.tag or "latest"

    @property
    def base_url(self) -> str:
        """Plain HTTP only on the loopback (as Docker treats localhost), else HTTPS."""
        host = urlsplit(f"//{self.registry}").hostname or ""
        scheme = "http" if host in _LOOPBACK else "https"
        return f"{scheme}://{self.registry}/v2/{self.repository}"

    def __str__(self) -> str:
        text = f"{SCHEME}{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@sha256:{self.digest.hex}"
        return text


def is_oci(text: str) -> bool:
    return text.lower().startswith(SCHEME)


def parse_reference(text: str) -> Reference:
    """Parse an ``oci://`` reference; a bad one is a `bad_request` saying the form."""
    if not is_oci(text):
        raise _bad(text, "it does not start with oci://")
    rest = text[len(SCHEME) :]
    digest: Digest | None = None
    if "@" in rest:
        rest, _, raw = rest.partition("@")
        if not raw.startswith("sha256:"):
            raise _bad(text, "only sha256: digests are supported")
        digest = Digest.parse(raw.removeprefix("sha256:"), field="digest")
    registry, slash, path = rest.partition("/")
    if not slash or not _REGISTRY.fullmatch(registry):
        raise _bad(text, "it names no registry host")
    tag: str | None = None
    name, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = name, maybe_tag
        if not _TAG.fullmatch(tag):
            raise _bad(text, f"{tag!r} is not a valid tag")
    if not _REPOSITORY.fullmatch(path):
        raise _bad(text, f"{path!r} is not a valid repository name")
    return Reference(registry, path, tag, digest)


def _bad(text: str, why: str) -> HostError:
    return HostError(
        "bad_request",
        f"{text}: not an OCI reference ({why}); "
        "give oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:HEX",
    )
